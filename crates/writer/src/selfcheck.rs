//! The dead man's switch ([`SelfcheckSettings`]). Every interval the writer
//! publishes a selfcheck to the status exchange, as a watcher publishes an
//! observation; whichever writer takes it off the queue records its nonce in
//! the database once the batch it came in is applied, before acking it. Only
//! when the nonce is there
//! within the deadline is `ping_url` fetched. So the pings stop when the
//! broker is down, when no writer applies (stopped, stuck, or its database
//! read-only), and when the database cannot be written; an outside monitor
//! that expects them then pages someone. A selfcheck touches no service.

use crate::metrics::Metrics;
use crate::settings::SelfcheckSettings;
use elkservice_core::amqp::{self, AmqpSettings};
use elkservice_core::shutdown::stopping;
use elkservice_core::store::selfcheck;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use sqlx::MySqlPool;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{interval, sleep, timeout_at, Instant, MissedTickBehavior};

/// The AMQP `type` of a selfcheck message; its body is the nonce in decimal.
pub const KIND: &str = "elkservice.selfcheck";
/// Under the queue's binding (`status.#`).
const ROUTING_KEY: &str = "status.selfcheck";
/// How often the database is asked whether the nonce has arrived.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// The nonce a selfcheck message carries; None if it is not one.
pub fn nonce(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body).ok()?.trim().parse().ok()
}

/// Run until `shutdown`.
pub async fn run(
    check: SelfcheckSettings,
    amqp: AmqpSettings,
    pool: MySqlPool,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut tick = interval(Duration::from_secs(check.interval_secs));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut broker: Option<(Connection, Channel)> = None;
    loop {
        tokio::select! {
            _ = stopping(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let deadline = Instant::now() + Duration::from_secs(check.deadline_secs);
        let went_through = timeout_at(deadline, round(&amqp, &pool, &mut broker)).await;
        let failed = match went_through {
            Ok(Ok(())) => match http.get(&check.ping_url).send().await {
                Ok(res) if res.status().is_success() => {
                    metrics.selfcheck_pings.inc();
                    continue;
                }
                Ok(res) => format!("the ping was answered {}", res.status()),
                Err(e) => format!("the ping failed: {e}"),
            },
            Ok(Err(e)) => e,
            Err(_) => format!(
                "not applied within selfcheck.deadline_secs ({} s): not pinging",
                check.deadline_secs
            ),
        };
        metrics.selfcheck_failures.inc();
        tracing::warn!(reason = %failed, "selfcheck failed");
    }
}

/// Publish one selfcheck, confirmed by the broker, then wait for it to
/// arrive in the database.
async fn round(
    amqp: &AmqpSettings,
    pool: &MySqlPool,
    broker: &mut Option<(Connection, Channel)>,
) -> Result<(), String> {
    let nonce: u64 = rand::random();
    if let Err(e) = publish(amqp, broker, nonce).await {
        // A new connection next time.
        *broker = None;
        return Err(e);
    }
    loop {
        match selfcheck::take(pool, nonce).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "selfcheck: the database did not answer"),
        }
        sleep(LOOK_EVERY).await;
    }
}

async fn publish(
    amqp: &AmqpSettings,
    broker: &mut Option<(Connection, Channel)>,
    nonce: u64,
) -> Result<(), String> {
    let failed = |e: lapin::Error| format!("cannot publish to the broker: {e}");
    if broker
        .as_ref()
        .is_none_or(|(_, ch)| !ch.status().connected())
    {
        let conn = amqp::connect(&amqp.url, "elkservice-writer selfcheck")
            .await
            .map_err(failed)?;
        let channel = conn.create_channel().await.map_err(failed)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(failed)?;
        *broker = Some((conn, channel));
    }
    let (_, channel) = broker.as_ref().expect("connected above");
    let properties = BasicProperties::default()
        .with_type(KIND.into())
        .with_delivery_mode(2);
    let confirmation = channel
        .basic_publish(
            amqp.exchange.as_str().into(),
            ROUTING_KEY.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            nonce.to_string().as_bytes(),
            properties,
        )
        .await
        .map_err(failed)?
        .await
        .map_err(failed)?;
    // Mandatory, so an exchange with no queue bound to it returns it: no
    // writer would ever see it.
    let confirm_was_nack = confirmation.is_nack();
    match confirmation.take_message() {
        Some(_) => Err("the broker has no queue for it".into()),
        None if confirm_was_nack => Err("the broker refused it".into()),
        None => Ok(()),
    }
}
