//! `GET /elkservice/stream`: the change feed as Server-Sent Events. Each
//! event's `id` is the entry's Seq, its `event` the kind, its `data` the
//! entry. A client that reconnects with `Last-Event-ID` (browsers do) or
//! `?since=` gets exactly the entries it missed, then the live ones: first
//! from the database, then from the process's broadcast, switching back to the
//! database whenever the broadcast would skip one.
//!
//! Memory stays bounded per client: frames are made only as the client's
//! socket takes them, and a client that falls further behind than the
//! broadcast holds is disconnected when it next takes one; it resumes from its
//! last id.

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::live::{sse_frame, Entry};
use crate::pacer::Pacer;
use crate::routes::changes::check_kept;
use crate::state::AppState;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use elkservice_core::store::feed::{self, Change};
use futures_util::StreamExt;
use serde::Deserialize;
use sqlx::MySqlPool;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::watch;
use utoipa::IntoParams;

/// A comment line at least this often keeps proxies from closing the stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
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
    // Listening from now, so the feed's reader (idle while nobody listens,
    // without the read model) is following by the time this client is live.
    let (live, last) = state.feed.subscribe();
    let pacer = state.feed.pacer();
    let follower = Follower {
        key: pacer.key(),
        pool: state.pool.clone(),
        live,
        last,
        pacer,
        cursor: since,
        page: VecDeque::new(),
        catching_up: true,
    };
    // Browsers reconnect after `retry` ms, sending the last id they saw.
    let greeting = Bytes::from_static(b"retry: 2000\n: connected\n\n");
    let body = futures_util::stream::once(std::future::ready(greeting))
        .chain(futures_util::stream::unfold(
            follower,
            |mut follower| async move {
                let frame = follower.next().await?;
                Some((frame, follower))
            },
        ))
        .map(Ok::<_, Infallible>);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// One client's place in the feed. Its frames are made as the connection
/// asks for them, i.e. as fast as the client's socket takes them, so nothing
/// queues for a client beyond that socket's buffers.
struct Follower {
    pool: MySqlPool,
    live: broadcast::Receiver<Arc<Entry>>,
    last: watch::Receiver<i64>,
    pacer: Rc<Pacer>,
    /// This stream's key with the pacer.
    key: u64,
    /// The last Seq sent.
    cursor: i64,
    /// Entries read from the database and not sent yet.
    page: VecDeque<Change>,
    /// Reading from the database until it has nothing newer.
    catching_up: bool,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.pacer.forget(self.key);
    }
}

impl Follower {
    /// The next frame; None ends the stream (the client then resumes from its
    /// last id).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(change) = self.page.pop_front() {
                self.cursor = change.seq;
                return Some(sse_frame(&change));
            }
            if self.catching_up {
                let mut conn = self.pool.acquire().await.ok()?;
                let page = feed::after(&mut conn, self.cursor, PAGE).await.ok()?;
                if page.is_empty() {
                    // Live from here. What was broadcast while this client
                    // read the database is behind it, and should not count
                    // as falling behind: listen afresh from the broadcast's
                    // end (a gap after that is read from the database).
                    self.catching_up = false;
                    self.live = self.live.resubscribe();
                }
                self.page = page.into();
                continue;
            }
            // Then live, as long as the broadcast goes on from the cursor.
            let generation = self.pacer.generation();
            match self.live.try_recv() {
                Ok(entry) if entry.seq <= self.cursor => {}
                Ok(entry) if entry.seq == self.cursor + 1 => {
                    self.cursor = entry.seq;
                    return Some(entry.frame.clone());
                }
                // A gap: read it from the database.
                Ok(_) => self.catching_up = true,
                // The last Seq past the cursor with nothing left to take:
                // entries that were not broadcast.
                Err(TryRecvError::Empty) if *self.last.borrow() > self.cursor => {
                    self.catching_up = true
                }
                Err(TryRecvError::Empty) => {
                    tokio::select! {
                        () = self.pacer.next(generation, self.key) => {}
                        () = tokio::time::sleep(KEEP_ALIVE) => {
                            return Some(Bytes::from_static(b": keep-alive\n\n"));
                        }
                    }
                }
                // More than the broadcast holds behind, or shutting down.
                Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => return None,
            }
        }
    }
}
