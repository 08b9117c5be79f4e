//! The database is the truth: changes made to `elkservice` outside
//! elkservice (plain SQL, another program, a restore) reach the feed, and so
//! every read model, stream, page and notifier, within
//! `api.external_change_secs`.
//!
//! Every api process runs this loop. Four times per bound it records what
//! the table's triggers noted (`store::unannounced`); the notes are few and
//! the query on an empty table costs next to nothing. It also watches for
//! what the triggers cannot see: a table made afresh (a restore that drops
//! and re-creates it loads its rows before its triggers exist) or triggers
//! gone. Then, and every ten minutes in any case, a process with a read
//! model compares the whole table with what the feed says of it and notes
//! the differences, under a named lock so that one process does it.

use crate::live;
use crate::model::ReadModel;
use elkservice_core::db;
use elkservice_core::store::unannounced;
use sqlx::MySqlPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the whole table is compared with the feed, even with nothing
/// seen to make it necessary: a net under the triggers.
const COMPARE_EVERY: Duration = Duration::from_secs(600);
/// Most Ids recorded in one transaction.
const BATCH: u32 = 256;
/// How long a comparison waits for the model to reach its snapshot.
const MODEL_WAIT: Duration = Duration::from_secs(5);

/// What the loop remembers between passes.
struct Watch {
    /// Which making of the table was seen last.
    made: Option<unannounced::TableMade>,
    compared: Instant,
    /// Said once per spell, not on every pass.
    missing_said: bool,
    failing_said: bool,
}

pub async fn run(pool: MySqlPool, model: Option<Arc<ReadModel>>, bound: Duration) {
    let mut tick = tokio::time::interval(bound / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = Watch {
        made: None,
        compared: Instant::now(),
        missing_said: false,
        failing_said: false,
    };
    while !pool.is_closed() {
        tick.tick().await;
        match pass(&pool, model.as_deref(), &mut watch).await {
            Ok(()) => watch.failing_said = false,
            Err(e) => {
                if !std::mem::replace(&mut watch.failing_said, true) {
                    tracing::warn!(error = %e,
                        "cannot record changes made to the table outside elkservice");
                }
            }
        }
    }
}

async fn pass(
    pool: &MySqlPool,
    model: Option<&ReadModel>,
    watch: &mut Watch,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let made = unannounced::table_made(&mut conn).await?;
    let installed = unannounced::installed(&mut conn).await?;
    if !installed && !std::mem::replace(&mut watch.missing_said, true) {
        tracing::warn!(
            "the triggers on elkservice are missing (a restore without them?): \
             the table is compared with the feed on every pass until the api \
             restarts and puts them back"
        );
    }
    watch.missing_said &= !installed;
    let remade = watch.made.is_some_and(|was| was != made);
    watch.made = Some(made);
    if let Some(model) = model {
        if remade || !installed || watch.compared.elapsed() >= COMPARE_EVERY {
            compare(&mut conn, model).await?;
            watch.compared = Instant::now();
        }
    }
    loop {
        let ids = unannounced::pending(&mut conn, BATCH).await?;
        if ids.is_empty() {
            return Ok(());
        }
        let recorded = unannounced::absorb(&mut conn, &ids).await?;
        tracing::info!(
            services = ids.len(),
            entries = recorded,
            "recorded changes made to the table outside elkservice"
        );
    }
}

/// Note every difference between the table and the model (which is what
/// the feed says of it).
async fn compare(conn: &mut sqlx::MySqlConnection, model: &ReadModel) -> Result<(), sqlx::Error> {
    if !db::lock(conn, "compare", 0).await? {
        return Ok(()); // another process is at it
    }
    let result = async {
        let (seq, rows) = live::snapshot(conn).await?;
        let deadline = Instant::now() + MODEL_WAIT;
        while model.seq() < seq {
            if Instant::now() > deadline {
                return Ok(()); // the model is behind; the next pass tries again
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let found = model.unannounced(seq, &rows);
        if !found.is_empty() {
            tracing::info!(
                services = found.len(),
                "the table differs from the feed (a restore?); recording the differences"
            );
            unannounced::note(conn, &found).await?;
        }
        Ok(())
    }
    .await;
    db::unlock(conn, "compare").await?;
    result
}
