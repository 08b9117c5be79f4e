//! `GET /elkservice/stream`: the change feed as Server-Sent Events. Each
//! event's `id` is the entry's Seq, its `event` the kind, its `data` the
//! entry. A client that reconnects with `Last-Event-ID` (browsers do) or
//! `?since=` gets exactly the entries it missed, then the live ones: first
//! from the database, then from the process's broadcast, switching back to the
//! database whenever the broadcast would skip one.
//!
//! Memory stays bounded per client: a client too slow to take what it is sent
//! (for [`SLOW_CLIENT`], or by more than the broadcast holds) is disconnected,
//! and resumes from its last id.

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::live::{sse_frame, Entry};
use crate::routes::changes::check_kept;
use crate::state::AppState;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use elkservice_core::store::feed;
use serde::Deserialize;
use sqlx::MySqlPool;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use utoipa::IntoParams;

/// A comment line at least this often keeps proxies from closing the stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a client may leave a frame untaken before it is disconnected.
pub const SLOW_CLIENT: Duration = Duration::from_secs(10);
/// Frames waiting for one client.
const CLIENT_BUFFER: usize = 64;
/// Entries read from the database at a time while catching up.
const PAGE: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this Seq (default: from now on). `Last-Event-ID` wins.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub since: Option<String>,
}

/// Server-Sent Events of the change feed.
#[utoipa::path(get, path = "/elkservice/stream", tag = "elkservice",
    params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last Seq received: resume after it")),
    responses(
        (status = 200, description = "`text/event-stream`: per entry `id: <Seq>`, `event: <Kind>`, `data: <the entry as JSON>`; a comment line at least every 15 s",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed `since` or `Last-Event-ID`", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 410, description = "The cursor is older than what retention keeps", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn stream(
    _: ReadAccess,
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let resume = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("-").to_owned())
        .or_else(|| params.since.clone());
    let mut conn = state.pool.acquire().await?;
    let since = match resume {
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "the cursor must be a Seq (an integer >= 0), got {raw:?}"
                ))
            })?,
        None => feed::last_seq(&mut conn).await?,
    };
    check_kept(&mut conn, since).await?;
    drop(conn);
    // Subscribed before catching up, so nothing falls between the two.
    let (live, last) = state.feed.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
    tokio::spawn(follow(state.pool.clone(), live, last, since, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, Infallible>(frame), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Hand a frame to the client; false when it is gone or too slow.
async fn send(tx: &mpsc::Sender<Bytes>, frame: Bytes) -> bool {
    matches!(
        tokio::time::timeout(SLOW_CLIENT, tx.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Feed one client from `cursor` on, until it goes away or falls behind.
async fn follow(
    pool: MySqlPool,
    mut live: broadcast::Receiver<Arc<Entry>>,
    mut last: watch::Receiver<i64>,
    mut cursor: i64,
    tx: mpsc::Sender<Bytes>,
) {
    // Browsers reconnect after `retry` ms, sending the last id they saw.
    if !send(&tx, Bytes::from_static(b"retry: 2000\n: connected\n\n")).await {
        return;
    }
    loop {
        // From the database until it has nothing newer.
        loop {
            let page = match pool.acquire().await {
                Ok(mut conn) => feed::after(&mut conn, cursor, PAGE).await,
                Err(e) => Err(e),
            };
            let Ok(page) = page else { return };
            if page.is_empty() {
                break;
            }
            for change in &page {
                if !send(&tx, sse_frame(change)).await {
                    return;
                }
                cursor = change.seq;
            }
        }
        // Then live, as long as the broadcast goes on from the cursor. What is
        // broadcast is taken first; the last Seq passing the cursor with
        // nothing left to take means entries that were not broadcast.
        loop {
            tokio::select! {
                biased;
                next = live.recv() => match next {
                    Ok(entry) if entry.seq <= cursor => {}
                    Ok(entry) if entry.seq == cursor + 1 => {
                        if !send(&tx, entry.frame.clone()).await {
                            return;
                        }
                        cursor = entry.seq;
                    }
                    // A gap: read it from the database.
                    Ok(_) => break,
                    // Too far behind, or shutting down: the client resumes from its last id.
                    Err(_) => return,
                },
                changed = last.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if *last.borrow_and_update() > cursor && live.is_empty() {
                        break;
                    }
                }
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    if !send(&tx, Bytes::from_static(b": keep-alive\n\n")).await {
                        return;
                    }
                }
            }
        }
    }
}
