//! Delivering the outbox: per webhook and service, the oldest pending
//! notification goes first (a service's notifications arrive in order);
//! different services and webhooks do not wait for each other.

use crate::metrics::Metrics;
use crate::settings::{NotifierSettings, Webhook};
use chrono::{Duration, Utc};
use elkservice_core::glob::Glob;
use elkservice_core::store::notifications::{self, Queued, State};
use elkservice_core::store::silences;
use sqlx::MySqlPool;
use std::collections::{HashMap, HashSet};

/// Pending notifications looked at per round.
const WINDOW: u32 = 1000;

/// Deliver what is due now.
pub async fn due(
    pool: &MySqlPool,
    client: &reqwest::Client,
    webhooks: &HashMap<String, Webhook>,
    settings: &NotifierSettings,
    metrics: &Metrics,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let pending = notifications::pending(&mut conn, WINDOW).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut heads = HashSet::new();
    let ready: Vec<Queued> = pending
        .into_iter()
        // The first per webhook and service, if it is due.
        .filter(|q| heads.insert((q.webhook.clone(), q.service.clone())))
        .filter(|q| q.due_at <= now)
        .collect();
    if ready.is_empty() {
        return Ok(());
    }
    let silenced: Vec<Glob> = silences::active(&mut conn, now)
        .await?
        .into_iter()
        .map(|s| s.pattern)
        .collect();
    let mut sends = Vec::new();
    for q in ready {
        let Some(webhook) = webhooks.get(&q.webhook) else {
            // A webhook no longer configured: nobody to tell.
            skip(
                &mut conn,
                &q,
                "the webhook is no longer configured",
                metrics,
            )
            .await?;
            continue;
        };
        if let Some(problem) = &q.problem_key {
            // A resolution only for a problem that was told.
            let told = notifications::state_of(&mut conn, &q.webhook, problem).await?;
            if told.as_deref() != Some(State::Sent.as_str()) {
                skip(&mut conn, &q, "its problem was not notified", metrics).await?;
                continue;
            }
        } else if silenced.iter().any(|g| g.matches(&q.service)) {
            skip(&mut conn, &q, "silenced", metrics).await?;
            continue;
        }
        sends.push(send(client, webhook, q));
    }
    drop(conn);
    for (q, result) in futures_util::future::join_all(sends).await {
        let mut conn = pool.acquire().await?;
        let attempts = q.attempts + 1;
        match result {
            Ok(()) => {
                notifications::settle(&mut conn, q.id, State::Sent, attempts, q.due_at, None)
                    .await?;
                metrics.deliveries.with_label_values(&["sent"]).inc();
            }
            Err(e) if attempts >= settings.max_attempts as i32 => {
                tracing::warn!(service = %q.service, key = %q.key, error = %e, attempts, "giving up a notification");
                notifications::settle(&mut conn, q.id, State::Failed, attempts, q.due_at, Some(&e))
                    .await?;
                metrics.deliveries.with_label_values(&["failed"]).inc();
            }
            Err(e) => {
                let delay = backoff(settings, attempts);
                tracing::info!(service = %q.service, key = %q.key, error = %e, attempts, retry_in_ms = delay.num_milliseconds(), "a delivery failed");
                let next = Utc::now() + delay;
                notifications::settle(&mut conn, q.id, State::Pending, attempts, next, Some(&e))
                    .await?;
                metrics.deliveries.with_label_values(&["retried"]).inc();
            }
        }
    }
    Ok(())
}

async fn skip(
    conn: &mut sqlx::MySqlConnection,
    q: &Queued,
    why: &str,
    metrics: &Metrics,
) -> Result<(), sqlx::Error> {
    notifications::settle(conn, q.id, State::Skipped, q.attempts, q.due_at, Some(why)).await?;
    metrics.deliveries.with_label_values(&["skipped"]).inc();
    Ok(())
}

/// The delay before attempt `attempts + 1`: doubling from the first.
fn backoff(settings: &NotifierSettings, attempts: i32) -> Duration {
    let first = settings.retry_initial_ms.max(1) as f64;
    let ms = first * 2f64.powi((attempts - 1).clamp(0, 30));
    Duration::milliseconds(ms.min(settings.retry_max_secs as f64 * 1000.0) as i64)
}

async fn send(
    client: &reqwest::Client,
    webhook: &Webhook,
    q: Queued,
) -> (Queued, Result<(), String>) {
    let result = client
        .post(&webhook.url)
        .header("Idempotency-Key", &q.key)
        .header("Content-Type", "application/json")
        .body(q.body.clone())
        .send()
        .await;
    let outcome = match result {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => Err(format!("HTTP {}", res.status().as_u16())),
        Err(e) => Err(e.to_string()),
    };
    (q, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_by_doubling_up_to_the_cap() {
        let s = NotifierSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            poll_ms: 100,
            max_attempts: 8,
            retry_initial_ms: 500,
            retry_max_secs: 3,
            timeout_secs: 10,
            webhooks: vec![],
        };
        let ms: Vec<i64> = (1..=5).map(|a| backoff(&s, a).num_milliseconds()).collect();
        assert_eq!(ms, [500, 1000, 2000, 3000, 3000]);
    }
}
