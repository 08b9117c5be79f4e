//! `GET /elkservice/{Id}/uptime`: seconds in each status inside a window
//! (default: the last 24 hours), computed exactly by [`crate::uptime`].

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::uptime::{self, Uptime};
use crate::writes::not_found;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use elkservice_core::store::history;
use elkservice_core::store::services as rows;
use serde::Deserialize;
use utoipa::IntoParams;

/// The longest window.
const MAX_WINDOW_DAYS: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UptimeParams {
    /// Start of the window, RFC 3339 (default: 24 hours before `to`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// End of the window, RFC 3339 (default: now).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
}

fn time(name: &str, raw: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::BadRequest(format!("{name} must be an RFC 3339 time, got {s:?}"))
                })
        })
        .transpose()
}

/// Seconds spent in each status inside a window, and the share of `normal`.
#[utoipa::path(get, path = "/elkservice/{Id}/uptime", operation_id = "getServiceUptime", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id"), UptimeParams),
    responses(
        (status = 200, description = "Seconds per status, the ratio of normal, and the segments", body = Uptime),
        (status = 400, description = "A malformed time, or `from` not before `to`, or a window over 366 days", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn uptime(
    _: ReadAccess,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    params: web::Query<UptimeParams>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let to = time("to", &params.to)?.unwrap_or_else(Utc::now);
    let from = time("from", &params.from)?.unwrap_or(to - Duration::hours(24));
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    if to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "the window may be at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let mut conn = state.pool.acquire().await?;
    let service = rows::fetch(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let (before, inside) = history::window(&mut conn, id, from, to).await?;
    Ok(HttpResponse::Ok().json(uptime::compute(
        id,
        from,
        to,
        service.created_at,
        before.as_ref(),
        &inside,
    )))
}
