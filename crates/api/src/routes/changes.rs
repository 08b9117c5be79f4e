//! The change feed over HTTP: `GET /elkservice/changes` answers the entries
//! after a cursor, oldest first, and with `wait` holds an empty answer until
//! an entry arrives (woken by [`crate::live::FeedHub`]); `GET
//! /elkservice/stream` sends them as Server-Sent Events ([`super::stream`]).

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::listing;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use elkservice_core::store::feed::{self, Change};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;
use utoipa::IntoParams;

/// The most entries one answer holds.
pub const MAX_LIMIT: u32 = 1000;
/// The longest `wait`.
pub const MAX_WAIT_SECS: u64 = 60;

/// `since`, `limit` and `wait` for `GET /elkservice/changes`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// Entries after this Seq (default 0: from the oldest kept).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub since: Option<String>,
    /// Most entries to return, 1–1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Seconds to hold an empty answer for an entry to arrive, 0–60 (default 0).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 60)]
    pub wait: Option<String>,
}

fn number<T>(
    name: &str,
    raw: &Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    listing::number(name, raw.as_deref(), default, range).map_err(ApiError::BadRequest)
}

/// 410 Gone when the feed cannot go on from `since`: entries after it have
/// been pruned, or it is ahead of every entry committed (a cursor kept across
/// a database made afresh, which would otherwise wait, silently, for Seqs that
/// mean other changes). Either way the reader lists again. Shared by the long
/// poll and the stream.
pub async fn check_kept(conn: &mut sqlx::MySqlConnection, since: i64) -> Result<(), ApiError> {
    let (pruned, last) = feed::cursors(conn).await?;
    if since < pruned {
        return Err(ApiError::Gone(format!(
            "entries up to Seq {pruned} are no longer kept; list the services, then follow from X-Last-Seq"
        )));
    }
    if since > last {
        return Err(ApiError::Gone(format!(
            "Seq {since} is ahead of this feed, whose last is {last}: the cursor is not from this database; list the services, then follow from X-Last-Seq"
        )));
    }
    Ok(())
}

/// Feed entries after a cursor, oldest first.
#[utoipa::path(get, path = "/elkservice/changes", operation_id = "listChanges", tag = "elkservice", params(ChangesParams),
    responses(
        (status = 200, description = "Entries after `since`, oldest first (`[]` if none came within `wait`)",
            body = [Change], headers(("X-Last-Seq" = i64, description = "The highest Seq committed"))),
        (status = 400, description = "A malformed or out-of-range parameter", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 410, description = "`since` is older than what retention keeps, or ahead of the feed's last Seq: list the services again, then follow from `X-Last-Seq`", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn changes(
    _: ReadAccess,
    state: web::Data<AppState>,
    params: web::Query<ChangesParams>,
) -> Result<HttpResponse, ApiError> {
    let since = number("since", &params.since, 0_i64, 0..=i64::MAX)?;
    let limit = number("limit", &params.limit, 100_u32, 1..=MAX_LIMIT)?;
    let wait = number("wait", &params.wait, 0_u64, 0..=MAX_WAIT_SECS)?;
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let mut conn = state.pool.acquire().await?;
        check_kept(&mut conn, since).await?;
        let entries = feed::after(&mut conn, since, limit).await?;
        // Read after the entries, so that it is at least the last of them.
        let last = feed::last_seq(&mut conn).await?;
        drop(conn);
        let now = Instant::now();
        if !entries.is_empty() || now >= deadline {
            return Ok(HttpResponse::Ok()
                .insert_header(("X-Last-Seq", last.to_string()))
                .json(entries));
        }
        // No connection is held while waiting.
        state.feed.wait_past(since, deadline - now).await;
    }
}
