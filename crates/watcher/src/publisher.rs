//! Publishing status changes with pipelined publisher confirms.
//!
//! The publisher keeps the latest observation of each service, so a broker
//! outage costs memory bounded by the number of services, never a backlog.
//! Only changes are marked for publishing; all services are published again at
//! every (re)connection and every resync interval, with their original
//! `observed_at`, so a lost message or a restarted writer heals itself (the
//! writer ignores what it has already applied). A service stays marked until
//! the broker confirms the message for its latest observation.

use crate::metrics::Metrics;
use crate::observation::Observation;
use elkservice_core::amqp::{self, AmqpSettings};
use elkservice_core::event::publish_properties;
use elkservice_core::retry::Retry;
use elkservice_core::shutdown::stopping;
use elkservice_core::ServiceName;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub struct Publisher {
    pub amqp: AmqpSettings,
    pub watcher_id: String,
    pub resync: Duration,
    pub metrics: Metrics,
}

#[derive(Default)]
struct State {
    latest: HashMap<ServiceName, Observation>,
    /// Services whose latest observation is not confirmed by the broker yet.
    dirty: BTreeSet<ServiceName>,
}

impl State {
    /// Keep `o` if it says something new about its service.
    fn merge(&mut self, o: Observation) {
        let changed = self.latest.get(&o.name).is_none_or(|prev| {
            (prev.status, prev.running, &prev.detail) != (o.status, o.running, &o.detail)
        });
        if changed {
            self.dirty.insert(o.name.clone());
            self.latest.insert(o.name.clone(), o);
        }
    }

    fn mark_all(&mut self) {
        self.dirty.extend(self.latest.keys().cloned());
    }
}

impl Publisher {
    pub async fn run(self, mut rx: mpsc::Receiver<Observation>, shutdown: watch::Receiver<bool>) {
        let mut state = State::default();
        let mut retry = Retry::new(
            "broker unavailable",
            Duration::from_millis(200),
            Duration::from_secs(10),
            &shutdown,
        );
        loop {
            let result = self
                .session(&mut rx, &mut state, &mut shutdown.clone(), &mut retry)
                .await;
            let Err(e) = result else { return };
            self.metrics.broker_connected.set(0);
            // Keep taking observations while waiting: only the latest counts.
            let keep_merging = async {
                while let Some(o) = rx.recv().await {
                    state.merge(o);
                }
            };
            if !retry
                .wait_after_doing(&format!("{e:#}"), keep_merging)
                .await
            {
                return;
            }
        }
    }

    async fn session(
        &self,
        rx: &mut mpsc::Receiver<Observation>,
        state: &mut State,
        shutdown: &mut watch::Receiver<bool>,
        retry: &mut Retry,
    ) -> anyhow::Result<()> {
        let conn = amqp::connect(&self.amqp.url, "elkservice-watcher").await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        // The whole topology, not just the exchange: events published before the
        // writer's first start then wait in its queue instead of being unroutable.
        amqp::declare_topology(&channel, &self.amqp).await?;
        self.metrics.broker_connected.set(1);
        retry.succeeded();
        tracing::info!("publishing to the broker");
        state.mark_all();
        let mut resync = tokio::time::interval(self.resync);
        resync.tick().await;
        loop {
            self.flush(&channel, state).await?;
            tokio::select! {
                _ = stopping(shutdown) => {
                    let _ = conn.close(200, "watcher shutting down".into()).await;
                    return Ok(());
                }
                _ = resync.tick() => state.mark_all(),
                o = rx.recv() => match o {
                    Some(o) => {
                        state.merge(o);
                        // Take whatever else is waiting, so it goes out in the same flush.
                        while let Ok(o) = rx.try_recv() {
                            state.merge(o);
                        }
                    }
                    None => return Ok(()),
                },
            }
        }
    }

    /// Publish every marked service, then wait for all the confirms together.
    async fn flush(&self, channel: &Channel, state: &mut State) -> anyhow::Result<()> {
        if state.dirty.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut pending = Vec::with_capacity(state.dirty.len());
        for name in &state.dirty {
            let event = state.latest[name].to_event(&self.watcher_id);
            let confirm = channel
                .basic_publish(
                    self.amqp.exchange.as_str().into(),
                    event.routing_key().as_str().into(),
                    BasicPublishOptions::default(),
                    &event.encode(),
                    publish_properties(),
                )
                .await?;
            pending.push((name.clone(), confirm));
        }
        // Nothing merges while we hold the state, so a confirm covers the latest.
        for (name, confirm) in pending {
            match confirm.await? {
                Confirmation::Ack(_) => {
                    self.metrics.published.inc();
                    state.dirty.remove(&name);
                }
                other => anyhow::bail!("the broker did not confirm an event for {name}: {other:?}"),
            }
        }
        self.metrics
            .confirm_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }
}
