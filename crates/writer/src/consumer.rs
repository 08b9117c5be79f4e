//! The consumer loop: take what the broker has ready as one batch, apply it in
//! one transaction, and only then acknowledge it.
//!
//! - A lone event is applied at once. While the queue is busy (more than one
//!   message ready), the batch lingers up to `linger_ms` to fill (up to
//!   `max_batch`), so that the database sees fewer, larger transactions.
//! - The next batch gathers while one is applied, so the two overlap: a batch
//!   never waits for the broker after the one before it commits, and the
//!   linger costs no database time.
//! - Poison messages go to the dead-letter exchange with the reason in the
//!   `x-elkservice-error` header, published with a confirm before the original
//!   is acknowledged, so they are neither lost nor redelivered forever.
//! - Database errors keep the batch in hand and retry it with backoff; nothing
//!   is acknowledged until its transaction has committed.
//! - A lost broker connection ends the session; unacknowledged messages return
//!   to the queue, and a new session starts after a backoff. Applying the same
//!   event twice is harmless: the second time it is stale.

use crate::apply::{apply_batch, Outcome};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::selfcheck;
use crate::settings::{Settings, WriterSettings};
use anyhow::Context;
use chrono::Utc;
use elkservice_core::event::{ERROR_HEADER, ROUTING_KEY_HEADER};
use elkservice_core::retry::Retry;
use elkservice_core::shutdown::stopping;
use elkservice_core::store;
use elkservice_core::StatusEvent;
use elkservice_core::{amqp, db};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation};
use sqlx::{MySqlConnection, MySqlPool};
use std::ops::Range;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

pub struct Consumer {
    settings: Settings,
    pool: MySqlPool,
    metrics: Metrics,
    health: Health,
    /// The writer's own connection, outside the pool, with autocommit off:
    /// a batch's first statement opens its transaction, so there is no
    /// `BEGIN` round trip, nor the pool's check before it lends a
    /// connection. None until connected, and again once lost.
    conn: Mutex<Option<MySqlConnection>>,
}

/// What became of one event of a batch: an outcome, or the database's refusal.
type Result1 = Result<Outcome, String>;

struct Session {
    channel: Channel,
    dead: Channel,
}

impl Consumer {
    pub fn new(settings: Settings, pool: MySqlPool, metrics: Metrics, health: Health) -> Self {
        Consumer {
            settings,
            pool,
            metrics,
            health,
            conn: Mutex::new(None),
        }
    }

    /// Consume until shutdown, reconnecting to the broker whenever it goes away.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        let mut retry = Retry::new(
            "broker session ended",
            Duration::from_millis(100),
            Duration::from_secs(10),
            &shutdown,
        );
        loop {
            let result = self.session(&mut shutdown.clone(), &mut retry).await;
            self.health.set_broker(false);
            let Err(e) = result else { return };
            if *shutdown.borrow() {
                // Unacknowledged messages stay in the queue for the next start.
                tracing::warn!(
                    error = format!("{e:#}"),
                    "stopped before the batch in hand was applied"
                );
                return;
            }
            self.metrics.broker_reconnects.inc();
            if !retry.wait_after(&format!("{e:#}")).await {
                return;
            }
        }
    }

    async fn session(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        retry: &mut Retry,
    ) -> anyhow::Result<()> {
        let s = &self.settings;
        let conn = amqp::connect(&s.amqp.url, "elkservice-writer")
            .await
            .context("cannot connect to the broker")?;
        let channel = conn.create_channel().await?;
        amqp::declare_topology(&conn, &s.amqp)
            .await
            .context("declaring the topology")?;
        channel
            .basic_qos(s.writer.prefetch, BasicQosOptions::default())
            .await?;
        let dead = conn.create_channel().await?;
        dead.confirm_select(ConfirmSelectOptions::default()).await?;
        let mut deliveries = channel
            .basic_consume(
                s.amqp.queue.as_str().into(),
                "elkservice-writer".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let session = Session { channel, dead };
        self.health.set_broker(true);
        retry.succeeded();
        tracing::info!(queue = %s.amqp.queue, "consuming");

        // Each batch gathers while the one before it is applied, so that the
        // database and the broker each work while the other does.
        let mut in_hand: Option<Vec<Delivery>> = None;
        // Gathering watches for shutdown on a receiver of its own; applying uses `shutdown`.
        let mut stop = shutdown.clone();
        loop {
            let batch = in_hand.take();
            let apply = async {
                match batch {
                    Some(batch) => self.handle(&session, batch, shutdown).await,
                    None => Ok(()),
                }
            };
            let gather = gather(&mut deliveries, &s.writer, &mut stop);
            tokio::pin!(apply, gather);
            // A failed apply ends the session at once; gathering is only reading,
            // and what it held returns to the queue. A batch being applied is
            // never cut short: a dropped transaction would leave its outcome unknown.
            let next = tokio::select! {
                applied = &mut apply => {
                    applied?;
                    gather.await?
                }
                next = &mut gather => {
                    apply.await?;
                    next?
                }
            };
            match next {
                Some(batch) => in_hand = Some(batch),
                None => {
                    // The batch in hand is done; what was prefetched beyond it
                    // is unacknowledged and goes back to the queue.
                    let _ = conn.close(200, "writer shutting down".into()).await;
                    return Ok(());
                }
            }
        }
    }

    /// Apply one batch, dead-letter what cannot be applied, then ack it all.
    async fn handle(
        &self,
        session: &Session,
        batch: Vec<Delivery>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.metrics.batch_size.observe(batch.len() as f64);
        let mut events = Vec::with_capacity(batch.len());
        let mut event_deliveries = Vec::with_capacity(batch.len());
        let mut selfchecks = Vec::new();
        for delivery in &batch {
            let kind = delivery.properties.kind().as_ref().map(|k| k.as_str());
            if kind == Some(selfcheck::KIND) {
                match selfcheck::nonce(&delivery.data) {
                    Some(nonce) => selfchecks.push(nonce),
                    None => {
                        let reason = "a selfcheck whose body is not a nonce";
                        self.dead_letter(session, delivery, "invalid", reason)
                            .await?
                    }
                }
                continue;
            }
            match StatusEvent::decode(&delivery.data) {
                Ok(event) => {
                    events.push(event);
                    event_deliveries.push(delivery);
                }
                Err(e) => {
                    self.dead_letter(session, delivery, "invalid", &e.to_string())
                        .await?
                }
            }
        }
        if !events.is_empty() {
            let started = Instant::now();
            let outcomes = self.apply_isolating(&events, shutdown).await?;
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            let now = Utc::now();
            for ((event, delivery), outcome) in events.iter().zip(event_deliveries).zip(outcomes) {
                match outcome {
                    Ok(Outcome::Applied { transition }) => {
                        self.metrics.applied.inc();
                        if transition {
                            self.metrics.transitions.inc();
                        }
                        let lag = (now - event.observed_at)
                            .num_microseconds()
                            .unwrap_or(i64::MAX);
                        self.metrics.lag_seconds.observe(lag.max(0) as f64 / 1e6);
                    }
                    Ok(Outcome::Stale) => self.metrics.stale.inc(),
                    Err(reason) => {
                        let reason = format!("the database refused the event: {reason}");
                        self.dead_letter(session, delivery, "refused", &reason)
                            .await?;
                    }
                    Ok(Outcome::UnknownService) => {
                        let reason = format!(
                            "no service named {:?} and writer.auto_register is off",
                            event.service.as_str()
                        );
                        self.dead_letter(session, delivery, "unknown_service", &reason)
                            .await?;
                    }
                }
            }
        }
        if !selfchecks.is_empty() {
            let mut conn = self.pool.acquire().await?;
            store::selfcheck::arrived(&mut conn, &selfchecks).await?;
        }
        // Everything in the batch is now committed or dead-lettered: one ack for all.
        let last = batch.last().expect("a batch is never empty").delivery_tag;
        session
            .channel
            .basic_ack(last, BasicAckOptions { multiple: true })
            .await?;
        Ok(())
    }

    /// Apply the batch, one outcome per event. While the database is away or
    /// busy (a lost connection, a deadlock, a lock wait), the batch is retried
    /// whole, with backoff, until it commits. A batch the database refuses for
    /// what an event holds is split in halves, each its own transaction, until
    /// the refused event stands alone: it alone is refused, and the others
    /// apply, so one bad event never stops the queue. Gives up only when asked
    /// to stop; the batch then stays unacknowledged and is delivered again later.
    async fn apply_isolating(
        &self,
        events: &[StatusEvent],
        shutdown: &watch::Receiver<bool>,
    ) -> anyhow::Result<Vec<Result1>> {
        let mut retry = Retry::new(
            "batch not applied; retrying",
            Duration::from_millis(50),
            Duration::from_secs(5),
            shutdown,
        );
        let mut results: Vec<Option<Result1>> = vec![None; events.len()];
        // Ranges still to apply, the next on top; halves go back in order.
        let mut todo: Vec<Range<usize>> = Vec::new();
        todo.push(0..events.len());
        while let Some(range) = todo.pop() {
            let part = &events[range.clone()];
            match self.apply(part).await {
                Ok(outcomes) => {
                    self.health.batch_committed();
                    retry.succeeded();
                    for (i, outcome) in range.zip(outcomes) {
                        results[i] = Some(Ok(outcome));
                    }
                }
                Err(e) if refused_for_content(&e) => {
                    self.metrics.db_errors.inc();
                    if range.len() == 1 {
                        tracing::warn!(error = %e, service = %part[0].service, "the database refused an event");
                        results[range.start] = Some(Err(e.to_string()));
                    } else {
                        let mid = range.start + range.len() / 2;
                        todo.push(mid..range.end);
                        todo.push(range.start..mid);
                    }
                }
                Err(e) => {
                    self.metrics.db_errors.inc();
                    self.health.batch_failed();
                    let error = format!("{e} ({} events)", part.len());
                    todo.push(range);
                    if !retry.wait_after(&error).await {
                        anyhow::bail!("stopping with a batch not applied: {e}");
                    }
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every range was applied or refused"))
            .collect())
    }

    /// Apply `events` in one transaction on the writer's own connection,
    /// connecting first if it has none; a connection that cannot even roll
    /// back is dropped, and the next batch connects afresh.
    async fn apply(&self, events: &[StatusEvent]) -> Result<Vec<Outcome>, sqlx::Error> {
        let mut conn = self.conn.lock().await;
        let c = db::own_connection(&mut conn, &self.pool).await?;
        let result = apply_batch(
            c,
            events,
            self.settings.writer.auto_register,
            self.settings.writer.counting(),
        )
        .await;
        if result.is_err() {
            db::roll_back_or_drop(&mut conn).await;
        }
        result
    }

    /// Publish a copy to the dead-letter exchange with the reason, and wait for
    /// the broker's confirm. The caller acks the original afterwards.
    async fn dead_letter(
        &self,
        session: &Session,
        delivery: &Delivery,
        label: &str,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::warn!(routing_key = %delivery.routing_key, reason, "dead-lettering a message");
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(
            ROUTING_KEY_HEADER.into(),
            AMQPValue::LongString(delivery.routing_key.as_str().into()),
        );
        let properties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        let confirm = session
            .dead
            .basic_publish(
                self.settings.amqp.dead_exchange.as_str().into(),
                delivery.routing_key.clone(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(
            matches!(confirm, Confirmation::Ack(_)),
            "the broker refused the dead-lettered copy"
        );
        self.metrics.dead_lettered.with_label_values(&[label]).inc();
        Ok(())
    }
}

/// Whether the database refused a statement for the values in it, so that the
/// same events would be refused again: SQLSTATE class 22 (data exception:
/// out of range, too long) or 23 (integrity constraint: a CHECK, a foreign
/// key). Anything else (connection, deadlock, lock wait, privileges) may pass
/// on a retry.
fn refused_for_content(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|state| state.starts_with("22") || state.starts_with("23")),
        _ => false,
    }
}

/// The next batch: wait for a delivery, add whatever else is ready, and, if
/// more than one was, linger up to `linger_ms` for the batch to fill (up to
/// `max_batch`). Fewer, larger transactions cost the database less per event;
/// a lone event never waits. `None` once shutdown is asked for.
pub async fn gather(
    deliveries: &mut lapin::Consumer,
    settings: &WriterSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Vec<Delivery>>> {
    let first = tokio::select! {
        biased;
        _ = stopping(shutdown) => return Ok(None),
        next = deliveries.next() => next,
    };
    let mut batch = vec![first.context("the broker cancelled the consumer")??];
    while batch.len() < settings.max_batch {
        match deliveries.next().now_or_never() {
            Some(Some(delivery)) => batch.push(delivery?),
            _ => break,
        }
    }
    if batch.len() > 1 {
        let until = tokio::time::Instant::now() + Duration::from_millis(settings.linger_ms);
        while batch.len() < settings.max_batch {
            match tokio::time::timeout_at(until, deliveries.next()).await {
                Ok(Some(delivery)) => batch.push(delivery?),
                _ => break,
            }
        }
    }
    Ok(Some(batch))
}
