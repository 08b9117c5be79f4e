//! A watcher that goes silent must not leave its services looking fine: its
//! vote on a service abstains once it is `writer.stale_after_secs` old, and
//! the service is decided again without it. With one watcher, or too few
//! fresh ones for the quorum, the row becomes `unknown`: one transition with a
//! detail that names the watchers and since when. Watchers republish every
//! service they follow at least every heartbeat, so only a dead watcher (or
//! host, or network) goes silent. A vote older than
//! `writer.forget_watcher_secs` is deleted: its watcher leaves the base.
//!
//! Every writer runs this; the rows are locked and decided again before they
//! change, so several writers silence each row once.

use crate::apply::Counting;
use crate::metrics::Metrics;
use crate::quorum::{self, Present};
use chrono::Utc;
use elkservice_core::store::feed::{self, ChangeKind, NewChange, Source};
use elkservice_core::store::observations;
use elkservice_core::store::{history, services, votes, HistoryRow};
use sqlx::MySqlPool;
use std::time::Duration;

/// Check often enough that a silent service turns `unknown` within a few
/// seconds of its limit, and no more than every second.
fn check_every(stale_after: Duration) -> Duration {
    (stale_after / 10).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

pub async fn run(
    pool: MySqlPool,
    stale_after: Duration,
    counting: Counting,
    forget_after: Option<Duration>,
    metrics: Metrics,
) {
    let mut tick = tokio::time::interval(check_every(stale_after));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match silence(&pool, counting, forget_after).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.silenced.inc_by(n as u64);
                tracing::warn!(
                    services = n,
                    "services decided again without a watcher that went silent"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot check for silent watchers"),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One pass: returns how many services changed status.
pub async fn silence(
    pool: &MySqlPool,
    counting: Counting,
    forget_after: Option<Duration>,
) -> Result<usize, sqlx::Error> {
    let Some(stale_after_ns) = counting.stale_after_ns else {
        return Ok(0);
    };
    let now_ns = Utc::now().timestamp_nanos_opt().expect("before 2262");
    let mut tx = pool.begin().await?;
    if let Some(forget) = forget_after {
        votes::forget_before(&mut tx, now_ns.saturating_sub(nanos(forget))).await?;
    }
    let cutoff_ns = now_ns - stale_after_ns;
    let names = votes::aging(&mut tx, cutoff_ns).await?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if names.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let (current, _) = observations::lock(&mut tx, &names).await?;
    let ids: Vec<i64> = current.values().map(|r| r.id).collect();
    let cast = votes::load(&mut tx, &ids).await?;
    votes::mark_stale(&mut tx, &ids, cutoff_ns).await?;
    let mut changed = Vec::new();
    for name in &names {
        let Some(row) = current.get(*name) else {
            continue;
        };
        let present = Present {
            status: row.status,
            running: row.running,
            detail: row.detail.as_deref(),
        };
        let ballot = cast.get(&row.id).map(Vec::as_slice).unwrap_or_default();
        let d = quorum::decide(
            counting.rule,
            ballot,
            now_ns,
            Some(stale_after_ns),
            &present,
        );
        if d.status != row.status {
            observations::set_decided(&mut tx, row.id, d.status, d.running, d.detail.as_deref())
                .await?;
            changed.push((row, d));
        }
    }
    let rows: Vec<HistoryRow> = changed
        .iter()
        .map(|(row, d)| HistoryRow {
            service_id: row.id,
            from: Some(row.status),
            status: d.status,
            running: d.running,
            detail: d.detail.as_deref(),
            observed_at: None,
            source: "writer",
        })
        .collect();
    history::insert(&mut tx, &rows).await?;
    let ids: Vec<i64> = changed.iter().map(|(row, _)| row.id).collect();
    let now = services::fetch_many(&mut tx, &ids).await?;
    let entries: Vec<NewChange> = changed
        .iter()
        .map(|(row, _)| NewChange {
            kind: ChangeKind::Transition,
            service_id: row.id,
            name: row.name.clone(),
            at: Utc::now(),
            from: Some(row.status),
            service: now.get(&row.id).cloned(),
            source: Source::Writer,
        })
        .collect();
    feed::record(&mut tx, &entries).await?;
    tx.commit().await?;
    Ok(changed.len())
}
