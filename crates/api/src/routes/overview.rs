//! `GET /status/overview`: what the status page shows first, over every
//! service ([`crate::overview`]), with each listed service's last 24 hours,
//! in one request however many services there are.

use super::services::from_model;
use super::watchers;
use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::listing::page;
use crate::overview::{self, Ask, Overview};
use crate::state::AppState;
use crate::uptime;
use actix_web::{web, HttpResponse};
use chrono::{Duration, Utc};
use elkservice_core::store::services as rows;
use elkservice_core::store::{feed, history};
use elkservice_core::Service;
use serde::Deserialize;
use utoipa::IntoParams;

/// Longest `q` or `group`: longer than any name.
const MAX_TEXT: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewParams {
    /// Only services whose name holds this, in any case, or whose status is this.
    #[param(example = "kib")]
    pub q: Option<String>,
    /// Only the services of this group: names up to their first `-`, `.` or `_`.
    #[param(example = "es")]
    pub group: Option<String>,
    /// Page size, 0–1000 (default 10; 0 means the maximum, 1000).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000)]
    pub limit: Option<String>,
    /// Services to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
}

fn text(name: &str, value: &Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT => Err(ApiError::BadRequest(format!(
            "{name} may be at most {MAX_TEXT} characters"
        ))),
        v => Ok(v.clone()),
    }
}

/// Counts and groups over every service, and a page of them, problems first.
#[utoipa::path(get, path = "/status/overview", operation_id = "getStatusOverview", tag = "status", params(OverviewParams),
    responses(
        (status = 200, description = "Counts per status and groups over every service; the services that match, problems first then by name, each with its last 24 hours",
            body = Overview, headers(("X-Last-Seq" = i64, description = "The change feed's last Seq reflected: follow `/elkservice/stream?since=` it to keep the page current"))),
        (status = 400, description = "A malformed limit or offset, or a q or group over 200 characters", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn overview(
    _: ReadAccess,
    state: web::Data<AppState>,
    params: web::Query<OverviewParams>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page(&params.limit, &params.offset).map_err(ApiError::BadRequest)?;
    let ask = Ask {
        q: text("q", &params.q)?,
        group: text("group", &params.group)?,
        limit: limit as usize,
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
    };
    let answer = from_model(&state, |m| m.overview(&ask)).await;
    state.metrics.read(answer.is_some());
    let mut conn = state.pool.acquire().await?;
    let (seq, mut overview) = match answer {
        Some(answer) => answer,
        None => {
            // Read before the rows: following the feed from here misses nothing.
            let seq = feed::last_seq(&mut conn).await?;
            let all: Vec<Service> = rows::select()
                .build_query_as()
                .fetch_all(&mut *conn)
                .await?;
            (seq, overview::compute(all.iter(), &ask))
        }
    };
    overview.watchers = watchers::shown(&state, &mut conn).await?;
    let to = Utc::now();
    let from = to - Duration::hours(24);
    let ids: Vec<i64> = overview.services.iter().map(|c| c.service.id).collect();
    let mut windows = history::windows(&mut conn, &ids, from, to).await?;
    for card in &mut overview.services {
        let s = &card.service;
        let (before, inside) = windows.remove(&s.id).unwrap_or_default();
        card.segments =
            uptime::compute(s.id, from, to, s.created_at, before.as_ref(), &inside).segments;
    }
    Ok(HttpResponse::Ok()
        .insert_header(("X-Last-Seq", seq.to_string()))
        .json(overview))
}
