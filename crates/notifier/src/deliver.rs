//! Delivering the outbox: per webhook and service, the oldest pending
//! notification goes first (a service's notifications arrive in order);
//! different services and webhooks do not wait for each other.

use crate::metrics::Metrics;
use crate::settings::{NotifierSettings, Webhook};
use chrono::{Duration, Utc};
use elkservice_core::glob::Glob;
use elkservice_core::store::notifications::{self, Attempt, Queued, State};
use elkservice_core::store::silences;
use sqlx::MySqlPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;

/// Pending notifications looked at per round.
const WINDOW: u32 = 1000;

/// Sends the outbox. Each delivery runs on a task of its own, so a slow or
/// failing webhook holds up nothing but its own next notifications; the
/// tasks end with the deliverer (when this process stops delivering).
pub struct Deliverer {
    pub pool: MySqlPool,
    pub client: reqwest::Client,
    pub webhooks: Arc<HashMap<String, Webhook>>,
    pub settings: Arc<NotifierSettings>,
    pub metrics: Metrics,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    tasks: JoinSet<()>,
}

impl Deliverer {
    pub fn new(
        pool: MySqlPool,
        client: reqwest::Client,
        webhooks: HashMap<String, Webhook>,
        settings: NotifierSettings,
        metrics: Metrics,
    ) -> Self {
        Deliverer {
            pool,
            client,
            webhooks: Arc::new(webhooks),
            settings: Arc::new(settings),
            metrics,
            in_flight: Arc::default(),
            tasks: JoinSet::new(),
        }
    }

    /// Start delivering what is due now.
    pub async fn round(&mut self) -> Result<(), sqlx::Error> {
        while self.tasks.try_join_next().is_some() {}
        let mut conn = self.pool.acquire().await?;
        let pending = notifications::pending(&mut conn, WINDOW).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let in_flight = self.in_flight.lock().expect("not poisoned").clone();
        let mut heads = HashSet::new();
        let ready: Vec<Queued> = pending
            .into_iter()
            // The first per webhook and service, if it is due and not on its way.
            .filter(|q| heads.insert((q.webhook.clone(), q.service.clone())))
            .filter(|q| q.due_at <= now && !in_flight.contains(&q.id))
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let silenced: Vec<Glob> = silences::active(&mut conn, now)
            .await?
            .into_iter()
            .map(|s| s.pattern)
            .collect();
        for q in ready {
            if !self.webhooks.contains_key(&q.webhook) {
                // A webhook no longer configured: nobody to tell.
                skip(
                    &mut conn,
                    &q,
                    "the webhook is no longer configured",
                    &self.metrics,
                )
                .await?;
                continue;
            }
            if let Some(problem) = &q.problem_key {
                // A resolution only for a problem that was told.
                let told = notifications::state_of(&mut conn, &q.webhook, problem).await?;
                if told.as_deref() != Some(State::Sent.as_str()) {
                    skip(&mut conn, &q, "its problem was not notified", &self.metrics).await?;
                    continue;
                }
            } else if silenced.iter().any(|g| g.matches(&q.service)) {
                skip(&mut conn, &q, "silenced", &self.metrics).await?;
                continue;
            }
            self.in_flight.lock().expect("not poisoned").insert(q.id);
            let (pool, client, webhooks, settings, metrics, in_flight) = (
                self.pool.clone(),
                self.client.clone(),
                self.webhooks.clone(),
                self.settings.clone(),
                self.metrics.clone(),
                self.in_flight.clone(),
            );
            self.tasks.spawn(async move {
                let id = q.id;
                let attempt = send(&client, &webhooks[&q.webhook], &q).await;
                if let Err(e) = settle(&pool, &settings, &metrics, &q, attempt).await {
                    // Still pending: the next round sends it again, same key.
                    tracing::warn!(error = %e, key = %q.key, "could not record a delivery");
                }
                in_flight.lock().expect("not poisoned").remove(&id);
            });
        }
        Ok(())
    }
}

/// Record how a delivery went: the attempt, and the notification's state.
async fn settle(
    pool: &MySqlPool,
    settings: &NotifierSettings,
    metrics: &Metrics,
    q: &Queued,
    attempt: Attempt,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.begin().await?;
    notifications::attempted(&mut conn, q.id, &attempt).await?;
    let attempts = q.attempts + 1;
    let result = match attempt.error {
        None => Ok(()),
        Some(e) => Err(e),
    };
    match result {
        Ok(()) => {
            notifications::settle(&mut conn, q.id, State::Sent, attempts, q.due_at, None).await?;
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
    conn.commit().await
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

/// One attempt at delivering `q`, and how it went.
async fn send(client: &reqwest::Client, webhook: &Webhook, q: &Queued) -> Attempt {
    let at = Utc::now();
    let started = std::time::Instant::now();
    let (status_code, error) = match post(client, webhook, q).await {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
        Ok(res) => (
            Some(res.status().as_u16()),
            Some(format!("HTTP {}", res.status().as_u16())),
        ),
        Err(e) => (None, Some(e)),
    };
    Attempt {
        at,
        status_code: status_code.map(|c| c as i16),
        latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
        error,
    }
}

async fn post(
    client: &reqwest::Client,
    webhook: &Webhook,
    q: &Queued,
) -> Result<reqwest::Response, String> {
    let mut request = client
        .post(webhook.delivery_url())
        .header("Idempotency-Key", &q.key)
        .header("Content-Type", "application/json");
    if let Some(secret) = &webhook.secret {
        // The message id is the notification's key, the same on every retry,
        // as the spec asks; the timestamp is this attempt's.
        let signer = standardwebhooks::Webhook::new(secret).map_err(|e| format!("secret: {e}"))?;
        let at = Utc::now().timestamp();
        let signature = signer
            .sign(&q.key, at, q.body.as_bytes())
            .map_err(|e| format!("signing: {e}"))?;
        request = request
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &q.key)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, at.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature);
    }
    request
        .body(q.body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())
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
