//! The change feed over HTTP: `GET /elkservice/changes` answers the entries
//! after a cursor, oldest first, and with `wait` holds an empty answer until
//! an entry arrives; `GET /elkservice/stream` sends them as Server-Sent Events
//! ([`stream`]). Every api process follows the feed with one small query per
//! tick while anyone listens ([`FeedHub`]), so listeners learn of a commit
//! within a few tens of milliseconds, whichever process or writer made it.

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use elkservice_core::store::feed::{self, Change};
use serde::Deserialize;
use sqlx::MySqlPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;
use utoipa::IntoParams;

/// The most entries one answer holds.
pub const MAX_LIMIT: u32 = 1000;
/// The longest `wait`.
pub const MAX_WAIT_SECS: u64 = 60;
/// How often the last Seq is read while someone waits.
const TICK: Duration = Duration::from_millis(20);

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

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    name: &str,
    raw: &Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be an integer from {} to {}, got {raw:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// This process's view of the feed: its last committed Seq, and each new
/// entry broadcast to the streams. One task reads the feed (one small query
/// per tick) and only while someone listens, however many clients there are.
#[derive(Clone)]
pub struct FeedHub {
    last: watch::Sender<i64>,
    entries: broadcast::Sender<Arc<Change>>,
    /// Rung by a new listener, in case the reader sleeps.
    wake: Arc<Notify>,
}

/// New entries a stream may fall behind by before it is cut off (it then
/// resumes from its last id, reading the database).
const BROADCAST_CAPACITY: usize = 1024;

impl FeedHub {
    /// Start following the feed on `pool`.
    pub fn start(pool: MySqlPool) -> Self {
        let hub = FeedHub {
            last: watch::channel(0).0,
            entries: broadcast::channel(BROADCAST_CAPACITY).0,
            wake: Arc::new(Notify::new()),
        };
        tokio::spawn(hub.clone().read(pool));
        hub
    }

    async fn read(self, pool: MySqlPool) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The last Seq broadcast; None until read afresh after an idle spell.
        let mut cursor: Option<i64> = None;
        loop {
            if self.last.receiver_count() == 0 && self.entries.receiver_count() == 0 {
                cursor = None;
                self.wake.notified().await;
            }
            tick.tick().await;
            let Ok(mut conn) = pool.acquire().await else {
                continue;
            };
            let seq = match cursor {
                // Listeners read what came before from the database themselves.
                None => match feed::last_seq(&mut conn).await {
                    Ok(seq) => seq,
                    Err(_) => continue,
                },
                Some(from) => {
                    let Ok(batch) = feed::after(&mut conn, from, MAX_LIMIT).await else {
                        continue;
                    };
                    let mut seq = from;
                    for entry in batch {
                        seq = entry.seq;
                        let _ = self.entries.send(Arc::new(entry));
                    }
                    seq
                }
            };
            cursor = Some(seq);
            self.last.send_if_modified(|known| {
                let newer = seq > *known;
                *known = seq.max(*known);
                newer
            });
        }
    }

    /// Wait until the feed's last Seq passes `since`, or `timeout` ends.
    pub async fn wait_past(&self, since: i64, timeout: Duration) {
        let mut rx = self.last.subscribe();
        self.wake.notify_one();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|last| *last > since)).await;
    }

    /// New entries from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        let rx = self.entries.subscribe();
        self.wake.notify_one();
        rx
    }
}

/// Feed entries after a cursor, oldest first.
#[utoipa::path(get, path = "/elkservice/changes", tag = "elkservice", params(ChangesParams),
    responses(
        (status = 200, description = "Entries after `since`, oldest first (`[]` if none came within `wait`)",
            body = [Change], headers(("X-Last-Seq" = i64, description = "The highest Seq committed"))),
        (status = 400, description = "A malformed or out-of-range parameter", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 410, description = "`since` is older than what retention keeps: list the services again, then follow from `X-Last-Seq`", body = ErrorBody),
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
        let pruned = feed::pruned_through(&mut conn).await?;
        if since < pruned {
            return Err(ApiError::Gone(format!(
                "entries up to Seq {pruned} are no longer kept; list the services, then follow from X-Last-Seq"
            )));
        }
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

/// Retention: entries older than `api.feed_retention_days` are deleted in the
/// background; a reader whose cursor is older gets 410 and lists again.
pub mod retention {
    use elkservice_core::store::feed;
    use sqlx::MySqlPool;
    use std::time::Duration;

    /// How often old entries are looked for.
    const EVERY: Duration = Duration::from_secs(600);
    /// Most entries deleted in one statement, so no transaction grows large.
    const BATCH: u32 = 10_000;

    pub async fn run(pool: MySqlPool, days: u32) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let cutoff = chrono::Utc::now() - chrono::Duration::days(days.into());
            loop {
                let pruned = match pool.acquire().await {
                    Ok(mut conn) => feed::prune(&mut conn, cutoff, BATCH).await,
                    Err(e) => Err(e),
                };
                match pruned {
                    Ok(n) if n == u64::from(BATCH) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prune the change feed");
                        break;
                    }
                }
            }
        }
    }
}
