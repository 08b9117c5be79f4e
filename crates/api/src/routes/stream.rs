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
//! last id. A stream that had taken everything and fell behind only while it
//! waited for its turn in a fan-out (see `pacer`) is not the client's fault:
//! it reads the gap from the database instead.

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::live::{sse_frame, Entry};
use crate::pacer::{Pacer, WorkerPacer};
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
#[utoipa::path(get, path = "/elkservice/stream", operation_id = "streamChanges", tag = "elkservice",
    params(StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last Seq received: resume after it")),
    responses(
        (status = 200, description = "`text/event-stream`: per entry `id: <Seq>`, `event: <Kind>`, `data: <the entry as JSON>`; a comment line at least every 15 s",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed `since` or `Last-Event-ID`", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 410, description = "The cursor is older than what retention keeps, or ahead of the feed's last Seq", body = ErrorBody),
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
        Some(raw) => {
            let since = crate::listing::number("the cursor (a Seq)", Some(&raw), 0, 0..=i64::MAX)
                .map_err(ApiError::BadRequest)?;
            check_kept(&mut conn, since).await?;
            since
        }
        // The last Seq is always one the feed can go on from.
        None => feed::last_seq(&mut conn).await?,
    };
    drop(conn);
    // Listening from now, so the feed's reader (idle while nobody listens,
    // without the read model) is following by the time this client is live.
    let (live, last) = state.feed.subscribe();
    let worker = req
        .app_data::<WorkerPacer>()
        .expect("the app registers each worker's pacer");
    let pacer = state.feed.pacer(worker);
    let follower = Follower {
        key: pacer.key(),
        pool: state.pool.clone(),
        live,
        last,
        pacer,
        cursor: since,
        page: VecDeque::new(),
        catching_up: true,
        had_its_turn: false,
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
    /// Woken by the pacer after it had taken every entry, and has not
    /// looked at the broadcast since.
    had_its_turn: bool,
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
            let had_its_turn = std::mem::take(&mut self.had_its_turn);
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
                        () = self.pacer.next(generation, self.key) => self.had_its_turn = true,
                        () = tokio::time::sleep(KEEP_ALIVE) => {
                            return Some(Bytes::from_static(b": keep-alive\n\n"));
                        }
                    }
                }
                // Behind only because its turn came late: not the client's doing.
                Err(TryRecvError::Lagged(_)) if had_its_turn => self.catching_up = true,
                // More than the broadcast holds behind while it was sending:
                // a client too slow to keep up. Or shutting down.
                Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::BROADCAST_CAPACITY;
    use elkservice_core::config::DatabaseSettings;
    use elkservice_core::store::feed::{ChangeKind, NewChange};
    use elkservice_core::ServiceName;
    use elkservice_testkit::TestDatabase;

    /// More entries than the broadcast holds.
    const FLOOD: usize = BROADCAST_CAPACITY + 500;

    /// A database whose feed holds Seq 1..=FLOOD, and those entries as the
    /// api broadcasts them.
    async fn flooded_feed() -> (TestDatabase, MySqlPool, Vec<Arc<Entry>>) {
        let db = TestDatabase::new();
        let pool = elkservice_core::db::connect_and_migrate(&DatabaseSettings {
            url: db.url.clone(),
            max_connections: 2,
            acquire_timeout_secs: 5,
        })
        .await
        .unwrap();
        let entry = NewChange {
            kind: ChangeKind::Deleted,
            service_id: 1,
            name: ServiceName::parse("gone").unwrap(),
            at: chrono::Utc::now(),
            from: None,
            service: None,
            source: feed::Source::Api,
        };
        let mut tx = pool.begin().await.unwrap();
        feed::record(&mut tx, &vec![entry; FLOOD]).await.unwrap();
        tx.commit().await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let changes = feed::after(&mut conn, 0, FLOOD as u32).await.unwrap();
        let entries = changes.iter().map(|c| Arc::new(Entry::new(c))).collect();
        (db, pool, entries)
    }

    fn follower(
        pool: MySqlPool,
        live: broadcast::Receiver<Arc<Entry>>,
        last: watch::Receiver<i64>,
        pacer: Rc<Pacer>,
    ) -> Follower {
        Follower {
            key: pacer.key(),
            pool,
            live,
            last,
            pacer,
            cursor: 0,
            page: VecDeque::new(),
            catching_up: false,
            had_its_turn: false,
        }
    }

    fn seq_of(frame: &Bytes) -> i64 {
        let text = std::str::from_utf8(frame).unwrap();
        text.strip_prefix("id: ")
            .unwrap()
            .split('\n')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// A stream that had sent everything and waited for its turn while more
    /// than the broadcast holds went past (a fan-out to many streams, paced)
    /// gets every entry, from the database, and is not cut off.
    #[tokio::test]
    async fn a_stream_behind_only_because_its_turn_came_late_reads_the_gap_from_the_database() {
        let (_db, pool, entries) = flooded_feed().await;
        let (send, live) = broadcast::channel(BROADCAST_CAPACITY);
        let (set_last, last) = watch::channel(0);
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                let pacer = Pacer::start(set_last.subscribe());
                let mut stream = follower(pool, live, last, pacer);
                let sent = tokio::task::spawn_local(async move {
                    let mut sent = Vec::new();
                    while sent.len() < FLOOD {
                        let frame = stream.next().await.expect("the stream goes on");
                        sent.push(seq_of(&frame));
                    }
                    sent
                });
                // The stream has taken everything and waits for its turn ...
                tokio::task::yield_now().await;
                // ... while the whole flood is broadcast.
                for entry in entries {
                    send.send(entry).unwrap();
                }
                set_last.send(FLOOD as i64).unwrap();
                let sent = tokio::time::timeout(Duration::from_secs(30), sent)
                    .await
                    .expect("the stream sends the flood")
                    .unwrap();
                assert_eq!(sent, (1..=FLOOD as i64).collect::<Vec<_>>());
            })
            .await;
    }

    /// A stream that falls further behind than the broadcast holds between
    /// two frames (its client does not take them) is cut off.
    #[tokio::test]
    async fn a_stream_that_falls_behind_while_sending_is_cut_off() {
        let (_db, pool, entries) = flooded_feed().await;
        let (send, live) = broadcast::channel(BROADCAST_CAPACITY);
        let (set_last, last) = watch::channel(0);
        let mut stream = follower(pool, live, last, Rc::new(Pacer::default()));
        send.send(entries[0].clone()).unwrap();
        set_last.send(1).unwrap();
        assert_eq!(seq_of(&stream.next().await.unwrap()), 1);
        // The client takes nothing more while the rest go past.
        for entry in &entries[1..] {
            send.send(entry.clone()).unwrap();
        }
        set_last.send(FLOOD as i64).unwrap();
        assert!(stream.next().await.is_none(), "the slow stream ends");
    }
}
