//! Publishing status changes with pipelined publisher confirms.
//!
//! The publisher keeps the latest observation of each service, so a broker
//! outage costs memory bounded by the number of services, never a backlog.
//! Only changes are marked for publishing; all services are published again at
//! every (re)connection and every resync interval, with their original
//! `observed_at`, so a lost message or a restarted writer heals itself (the
//! writer ignores what it has already applied). Every heartbeat interval, all
//! services go out again observed now, so that the writer sees the watcher
//! alive. A service stays marked until the broker confirms the message for
//! its latest observation; a removed container's service is then forgotten.

use crate::metrics::Metrics;
use crate::observation::Observation;
use chrono::Utc;
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
    pub heartbeat: Duration,
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
    fn merge(&mut self, mut o: Observation) {
        let Some(prev) = self.latest.get(&o.name) else {
            self.dirty.insert(o.name.clone());
            self.latest.insert(o.name.clone(), o);
            return;
        };
        if (
            prev.status,
            prev.running,
            &prev.detail,
            prev.removed,
            prev.planned,
        ) == (o.status, o.running, &o.detail, o.removed, o.planned)
        {
            return;
        }
        // A heartbeat may have stamped the previous state later than this
        // observation was made (it was on its way while the heartbeat went
        // out). It is the newer news all the same, so it must be later too,
        // or the writer would take it for stale.
        o.observed_at = o
            .observed_at
            .max(prev.observed_at + chrono::Duration::nanoseconds(1));
        self.dirty.insert(o.name.clone());
        self.latest.insert(o.name.clone(), o);
    }

    fn mark_all(&mut self) {
        self.dirty.extend(self.latest.keys().cloned());
    }

    /// Every followed service again, observed now: its state is what this
    /// watcher last saw, and the watcher still sees it. A removal keeps its
    /// own time, so that it never looks newer than a deletion after it.
    fn heartbeat(&mut self) {
        let now = Utc::now();
        for o in self.latest.values_mut().filter(|o| !o.removed) {
            o.observed_at = o.observed_at.max(now);
        }
        self.mark_all();
    }

    /// The broker confirmed `name`'s latest observation.
    fn confirmed(&mut self, name: &ServiceName) {
        self.dirty.remove(name);
        // A removed container's service is forgotten once that is published:
        // reporting it again later would bring back a row deleted since.
        if self.latest.get(name).is_some_and(|o| o.removed) {
            self.latest.remove(name);
        }
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
        amqp::declare_topology(&conn, &self.amqp).await?;
        self.metrics.broker_connected.set(1);
        retry.succeeded();
        tracing::info!("publishing to the broker");
        state.mark_all();
        let mut resync = tokio::time::interval(self.resync);
        resync.tick().await;
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        heartbeat.tick().await;
        loop {
            self.flush(&channel, state).await?;
            tokio::select! {
                _ = stopping(shutdown) => {
                    let _ = conn.close(200, "watcher shutting down".into()).await;
                    return Ok(());
                }
                _ = resync.tick() => state.mark_all(),
                _ = heartbeat.tick() => state.heartbeat(),
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
                    state.confirmed(&name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use elkservice_core::Status;

    fn seen(status: Status) -> Observation {
        Observation::now(
            ServiceName::parse("es").unwrap(),
            status,
            true,
            String::new(),
        )
    }

    #[test]
    fn a_change_that_crossed_a_heartbeat_is_still_the_newest() {
        let mut state = State::default();
        let made_before = seen(Status::Normal);
        let change = seen(Status::Down); // made now, delivered after the heartbeat
        state.merge(made_before);
        std::thread::sleep(std::time::Duration::from_millis(2));
        state.heartbeat();
        let beat = state.latest.values().next().unwrap().observed_at;
        assert!(beat > change.observed_at);
        state.merge(change);
        let latest = &state.latest[&ServiceName::parse("es").unwrap()];
        assert_eq!(latest.status, Status::Down);
        assert!(latest.observed_at > beat);
    }

    #[test]
    fn a_removed_service_is_forgotten_once_confirmed_and_never_restamped() {
        let mut state = State::default();
        let name = ServiceName::parse("es").unwrap();
        state.merge(seen(Status::Normal));
        let removal = Observation::removed(name.clone());
        let at = removal.observed_at;
        state.merge(removal);
        state.heartbeat();
        assert_eq!(
            state.latest[&name].observed_at, at,
            "a removal keeps its time"
        );
        state.confirmed(&name);
        assert!(state.latest.is_empty());
        state.mark_all();
        assert!(state.dirty.is_empty(), "nothing left to report again");
    }
}
