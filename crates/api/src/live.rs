//! This process's view of the change feed, shared by the long polls and the
//! streams: one task follows the feed with one small query per tick, and only
//! while someone listens, so listeners learn of a commit within a few tens of
//! milliseconds, whichever process or writer made it, however many there are.
//! Retention runs here too.

use crate::model::ReadModel;
use crate::pacer::{Pacer, WorkerPacer};
use actix_web::web::Bytes;
use elkservice_core::store::feed::{self, Change};
use elkservice_core::store::services::{self, CheckTimes};
use elkservice_core::store::votes;
use elkservice_core::{db, Service, Vote};
use sqlx::MySqlPool;
use sqlx::{Acquire, MySqlConnection};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

/// How often the feed is read while someone listens.
const TICK: Duration = Duration::from_millis(20);
/// Most entries read per tick.
const READ: u32 = 1000;
/// How often the read model takes in `LastCheckedAt` and `UpdatedAt`.
const REFRESH: Duration = Duration::from_secs(1);

/// This process's view of the feed: its last committed Seq, and each new
/// entry broadcast to the streams. One task reads the feed (one small query
/// per tick) and only while someone listens, however many clients there are.
#[derive(Clone)]
pub struct FeedHub {
    last: watch::Sender<i64>,
    entries: broadcast::Sender<Arc<Entry>>,
    /// Rung by a new listener, in case the reader sleeps.
    wake: Arc<Notify>,
}

/// A new entry as the streams send it: rendered once, for every client.
#[derive(Debug)]
pub struct Entry {
    pub seq: i64,
    /// Its Server-Sent Events frame.
    pub frame: Bytes,
}

impl Entry {
    pub fn new(change: &Change) -> Self {
        Entry {
            seq: change.seq,
            frame: sse_frame(change),
        }
    }
}

/// One Server-Sent Events frame for an entry: `id` its Seq, `event` its kind,
/// `data` the entry.
pub fn sse_frame(change: &Change) -> Bytes {
    let data = serde_json::to_string(change).expect("an entry serialises");
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        change.seq,
        change.kind.as_str()
    ))
}

/// New entries a stream may fall behind by before it is cut off (it then
/// resumes from its last id, reading the database).
pub(crate) const BROADCAST_CAPACITY: usize = 1024;

impl FeedHub {
    /// Start following the feed on `pool`; with a read model, always (the
    /// model listens), and the model is loaded and kept current. The reader
    /// runs until its handle is aborted.
    pub fn start(pool: MySqlPool, model: Option<Arc<ReadModel>>) -> (Self, JoinHandle<()>) {
        let hub = FeedHub {
            last: watch::channel(0).0,
            entries: broadcast::channel(BROADCAST_CAPACITY).0,
            wake: Arc::new(Notify::new()),
        };
        let reader = tokio::spawn(hub.clone().read(pool, model));
        (hub, reader)
    }

    async fn read(self, pool: MySqlPool, model: Option<Arc<ReadModel>>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The last Seq read; None until read afresh after an idle spell.
        let mut cursor: Option<i64> = None;
        let mut refreshed = Instant::now();
        // Said once per spell of failures, not on every tick.
        let mut load_failed = false;
        // A connection of the reader's own, not the pool's: while the model
        // is behind, reads go to the database through the pool, and the
        // reader, which brings the model back, must not queue behind them.
        // Dropped after a failure (the next tick connects again) and while
        // nobody listens.
        let mut own: Option<MySqlConnection> = None;
        loop {
            let idle = self.last.receiver_count() == 0 && self.entries.receiver_count() == 0;
            if model.is_none() && idle {
                cursor = None;
                own = None;
                self.wake.notified().await;
            }
            tick.tick().await;
            let started = Instant::now();
            if own.is_none() {
                own = db::connect_like(&pool).await.ok();
            }
            let Some(conn) = own.as_mut() else {
                continue;
            };
            let seq = match (cursor, &model) {
                // Listeners read what came before from the database themselves.
                (None, None) => match feed::last_seq(conn).await {
                    Ok(seq) => seq,
                    Err(_) => {
                        own = None;
                        continue;
                    }
                },
                (None, Some(model)) => match snapshot(conn).await {
                    Ok((seq, rows)) => {
                        model.load(seq, rows, started);
                        load_failed = false;
                        seq
                    }
                    Err(e) => {
                        if !std::mem::replace(&mut load_failed, true) {
                            tracing::warn!(error = %e,
                                "cannot load the read model; reads go to the database");
                        }
                        own = None;
                        continue;
                    }
                },
                (Some(from), _) => {
                    let refresh = model.is_some() && refreshed.elapsed() >= REFRESH;
                    let Ok((batch, checked)) = follow(conn, from, refresh).await else {
                        own = None;
                        continue;
                    };
                    if let Some((_, last)) = checked.as_ref().filter(|(_, last)| *last < from) {
                        // The feed was made afresh under us (the whole database
                        // restored): its Seqs mean other changes now. Load anew.
                        tracing::warn!(
                            cursor = from,
                            last_seq = last,
                            "the change feed went back; loading the rows again"
                        );
                        if let Some(model) = &model {
                            model.forget();
                        }
                        cursor = None;
                        continue;
                    }
                    let checked = checked.map(|(checked, _)| checked);
                    let complete = batch.len() < READ as usize;
                    if let Some(model) = &model {
                        model.apply(&batch, complete.then_some(started));
                        if let Some((checked, cast)) = checked.filter(|_| complete) {
                            model.refresh(checked, cast);
                            refreshed = started;
                        }
                    }
                    let mut seq = from;
                    for entry in batch {
                        seq = entry.seq;
                        let _ = self.entries.send(Arc::new(Entry::new(&entry)));
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

    /// Server-Sent Events streams open on this process: each holds one
    /// receiver of the broadcast, and nothing else does.
    pub fn streams(&self) -> usize {
        self.entries.receiver_count()
    }

    /// This worker's [`Pacer`] for this feed, which wakes its streams.
    pub fn pacer(&self, worker: &WorkerPacer) -> Rc<Pacer> {
        worker.get(|| self.last.subscribe())
    }

    /// New entries from now on, and the last Seq as this process knows it.
    /// The last Seq can pass entries that were never broadcast (those
    /// committed while the reader was idle, before it took up the feed
    /// again): a listener that sees it pass its cursor with nothing left to
    /// receive reads those from the database.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Entry>>, watch::Receiver<i64>) {
        let entries = self.entries.subscribe();
        let last = self.last.subscribe();
        self.wake.notify_one();
        (entries, last)
    }
}

/// A transaction that reads one snapshot throughout (InnoDB takes it at the
/// first read), whatever isolation the server defaults to.
async fn snapshot_tx(
    conn: &mut MySqlConnection,
) -> Result<sqlx::Transaction<'_, sqlx::MySql>, sqlx::Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *conn)
        .await?;
    conn.begin().await
}

/// The feed's last Seq and every row, read in one snapshot.
pub(crate) async fn snapshot(
    conn: &mut MySqlConnection,
) -> Result<(i64, Vec<Service>), sqlx::Error> {
    let mut tx = snapshot_tx(conn).await?;
    let seq = feed::last_seq(&mut tx).await?;
    let rows = services::select()
        .build_query_as()
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((seq, rows))
}

/// The entries after `from`; with `refresh`, also every row's check times
/// and the feed's last Seq, in the same snapshot.
/// What moves without a feed entry: every row's check times, and the votes.
type Refresh = (Vec<CheckTimes>, HashMap<i64, Vec<Vote>>);

async fn follow(
    conn: &mut MySqlConnection,
    from: i64,
    refresh: bool,
) -> Result<(Vec<Change>, Option<(Refresh, i64)>), sqlx::Error> {
    if !refresh {
        return Ok((feed::after(conn, from, READ).await?, None));
    }
    let mut tx = snapshot_tx(conn).await?;
    let batch = feed::after(&mut tx, from, READ).await?;
    let checked = services::check_times(&mut tx).await?;
    let cast = votes::all(&mut tx).await?;
    let last = feed::last_seq(&mut tx).await?;
    tx.commit().await?;
    Ok((batch, Some(((checked, cast), last))))
}

/// Retention: entries older than `api.feed_retention_days` are deleted in the
/// background; a reader whose cursor is older gets 410 and lists again.
pub mod retention {
    use elkservice_core::store::feed;
    use sqlx::MySqlPool;
    use std::time::Duration;

    /// How often old entries are looked for.
    const EVERY: Duration = Duration::from_secs(600);
    /// Most pages deleted in one statement (each of up to 256 entries, most
    /// far fewer), so no transaction grows large.
    const BATCH: u32 = 1_000;

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
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prune the change feed");
                        break;
                    }
                }
            }
        }
    }
}
