//! Badges to embed in a README or a wiki: `GET /badge/{Name}/status.svg`
//! and `GET /badge/{Name}/uptime.svg?window=24h|7d|30d|90d`, in the flat
//! look people know from shields.io. Each carries an `ETag`, and a client
//! that sends it back as `If-None-Match` gets 304 until the badge changes.

use crate::auth::ReadAccess;
use crate::error::ApiError;
use crate::model::etag_of;
use crate::state::AppState;
use crate::uptime;
use actix_web::http::header::{self, Header, IfNoneMatch};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use elkservice_core::store::{history, services as rows};
use elkservice_core::{ServiceName, Status};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BadgeParams {
    /// The window the uptime is over: `24h` (default), `7d`, `30d` or `90d`.
    pub window: Option<String>,
}

/// The service's status, as a badge.
#[utoipa::path(get, path = "/badge/{Name}/status.svg", operation_id = "getStatusBadge", tag = "status",
    params(("Name" = String, Path, description = "The service's Name")),
    responses(
        (status = 200, description = "An SVG badge", content_type = "image/svg+xml", body = String),
        (status = 304, description = "Unchanged since the `ETag` sent as `If-None-Match`"),
        (status = 404, description = "No such service (a grey badge that says so)", content_type = "image/svg+xml", body = String),
    ))]
pub async fn status(
    _: ReadAccess,
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let Some(service) = find(&mut conn, &name).await? else {
        return Ok(missing("status"));
    };
    Ok(answer(
        &req,
        badge(
            "status",
            service.status.as_str(),
            status_color(service.status),
        ),
    ))
}

/// The share of the window the service was `normal`, as a badge.
#[utoipa::path(get, path = "/badge/{Name}/uptime.svg", operation_id = "getUptimeBadge", tag = "status",
    params(("Name" = String, Path, description = "The service's Name"), BadgeParams),
    responses(
        (status = 200, description = "An SVG badge", content_type = "image/svg+xml", body = String),
        (status = 304, description = "Unchanged since the `ETag` sent as `If-None-Match`"),
        (status = 400, description = "A window other than 24h, 7d, 30d or 90d", body = crate::error::ErrorBody),
        (status = 404, description = "No such service (a grey badge that says so)", content_type = "image/svg+xml", body = String),
    ))]
pub async fn uptime(
    _: ReadAccess,
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    params: web::Query<BadgeParams>,
) -> Result<HttpResponse, ApiError> {
    let window = params.window.as_deref().unwrap_or("24h");
    let days = match window {
        "24h" => 1,
        "7d" => 7,
        "30d" => 30,
        "90d" => 90,
        other => {
            return Err(ApiError::BadRequest(format!(
                "window must be 24h, 7d, 30d or 90d, got {other:?}"
            )))
        }
    };
    let label = format!("uptime {window}");
    let mut conn = state.pool.acquire().await?;
    let Some(service) = find(&mut conn, &name).await? else {
        return Ok(missing(&label));
    };
    let to = Utc::now();
    let from = to - Duration::days(days);
    let (before, inside) = history::window(&mut conn, service.id, from, to).await?;
    let figures = uptime::compute(
        service.id,
        from,
        to,
        service.created_at,
        before.as_ref(),
        &inside,
    );
    let (value, color) = match figures.normal_ratio {
        None => ("no data".to_owned(), GREY),
        Some(ratio) => (percent(ratio), uptime_color(ratio)),
    };
    Ok(answer(&req, badge(&label, &value, color)))
}

async fn find(
    conn: &mut sqlx::MySqlConnection,
    name: &str,
) -> Result<Option<elkservice_core::Service>, sqlx::Error> {
    let Ok(name) = ServiceName::parse(name) else {
        return Ok(None);
    };
    rows::fetch_by_name(conn, &name).await
}

const GREY: &str = "#9f9f9f";

fn status_color(status: Status) -> &'static str {
    match status {
        Status::Normal => "#44cc11",
        Status::Degraded => "#dfb317",
        Status::Down => "#e05d44",
        Status::Starting => "#007ec6",
        Status::Unknown => GREY,
    }
}

fn uptime_color(ratio: f64) -> &'static str {
    match ratio {
        r if r >= 0.999 => "#44cc11",
        r if r >= 0.99 => "#97ca00",
        r if r >= 0.95 => "#dfb317",
        _ => "#e05d44",
    }
}

/// `99.95%`: two decimals, none at a whole hundred, never rounded up to it.
fn percent(ratio: f64) -> String {
    if ratio >= 1.0 {
        return "100%".into();
    }
    let hundredths = (ratio * 10_000.0).floor() / 100.0;
    format!("{hundredths:.2}%")
}

/// A grey badge that says the service is not known, with 404.
fn missing(label: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(badge(label, "not found", GREY))
}

/// The badge, or 304 when the client has it already.
fn answer(req: &HttpRequest, svg: String) -> HttpResponse {
    let tag = etag_of(svg.as_bytes());
    let fresh = req.headers().contains_key(header::IF_NONE_MATCH)
        && match IfNoneMatch::parse(req) {
            Ok(IfNoneMatch::Any) => true,
            Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&tag)),
            Err(_) => false,
        };
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag.to_string()))
        // Cached, but asked again each time: a badge shows what is true now.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh {
        return response.finish();
    }
    response.content_type("image/svg+xml").body(svg)
}

/// Roughly how wide `text` is at 11 px Verdana, the badges' font: wide
/// letters take more, narrow ones less.
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | '!' | '|' | ' ' => 4,
            'f' | 't' | 'r' | 'I' | '(' | ')' => 5,
            'm' | 'w' | 'M' | 'W' | '%' => 10,
            _ => 7,
        })
        .sum()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A flat badge: `label` on grey, `value` on `color`.
fn badge(label: &str, value: &str, color: &str) -> String {
    let (lw, vw) = (text_width(label) + 10, text_width(value) + 10);
    let width = lw + vw;
    let (label, value) = (escape(label), escape(value));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{color}"/><rect width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="15" fill="#010101" fill-opacity=".3">{label}</text><text x="{lx}" y="14">{label}</text><text x="{vx}" y="15" fill="#010101" fill-opacity=".3">{value}</text><text x="{vx}" y="14">{value}</text></g></svg>"##,
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_badge_is_svg_that_says_what_it_shows() {
        let svg = badge("status", "down", status_color(Status::Down));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("<title>status: down</title>") && svg.contains("#e05d44"));
        let svg = badge("a<b", "\"x\"", GREY);
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
    }

    #[test]
    fn uptime_is_never_rounded_up_to_a_hundred() {
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.99999), "99.99%");
        assert_eq!(percent(0.9995), "99.95%");
        assert_eq!(percent(0.5), "50.00%");
    }
}
