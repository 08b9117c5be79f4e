//! A watcher that goes silent must not leave its services looking fine: a row
//! fed by a watcher with no observation for `writer.stale_after_secs` becomes
//! `unknown`, one transition with a detail that names the watcher and since
//! when. Watchers republish every service they follow at least every
//! heartbeat, so only a dead watcher (or host, or network) goes silent.
//!
//! Every writer runs this; the rows are locked and checked again before they
//! change, so several writers silence each row once.

use crate::metrics::Metrics;
use chrono::Utc;
use elkservice_core::store::feed::{self, ChangeKind, NewChange, Source};
use elkservice_core::store::observations;
use elkservice_core::store::{history, services, HistoryRow};
use elkservice_core::Status;
use sqlx::MySqlPool;
use std::time::Duration;

/// Check often enough that a silent service turns `unknown` within a few
/// seconds of its limit, and no more than every second.
fn check_every(stale_after: Duration) -> Duration {
    (stale_after / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

pub async fn run(pool: MySqlPool, stale_after: Duration, metrics: Metrics) {
    let mut tick = tokio::time::interval(check_every(stale_after));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match silence(&pool, stale_after).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.silenced.inc_by(n as u64);
                tracing::warn!(
                    services = n,
                    "services turned unknown: their watcher went silent"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot check for silent watchers"),
        }
    }
}

/// One pass: returns how many services were turned `unknown`.
pub async fn silence(pool: &MySqlPool, stale_after: Duration) -> Result<usize, sqlx::Error> {
    let cutoff = Utc::now() - chrono::Duration::from_std(stale_after).expect("at most a year");
    let mut tx = pool.begin().await?;
    let silenced = observations::silence_stale(&mut tx, cutoff).await?;
    let rows: Vec<HistoryRow> = silenced
        .iter()
        .map(|s| HistoryRow {
            service_id: s.id,
            from: Some(s.from),
            status: Status::Unknown,
            running: s.running,
            detail: Some(&s.detail),
            observed_at: None,
            source: "writer",
        })
        .collect();
    history::insert(&mut tx, &rows).await?;
    let ids: Vec<i64> = silenced.iter().map(|s| s.id).collect();
    let now = services::fetch_many(&mut tx, &ids).await?;
    let changes: Vec<NewChange> = silenced
        .iter()
        .map(|s| NewChange {
            kind: ChangeKind::Transition,
            service_id: s.id,
            name: s.name.clone(),
            at: Utc::now(),
            from: Some(s.from),
            service: now.get(&s.id).cloned(),
            source: Source::Writer,
        })
        .collect();
    feed::record(&mut tx, &changes).await?;
    tx.commit().await?;
    Ok(silenced.len())
}
