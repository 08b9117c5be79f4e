//! Containers through the Docker Engine API (Docker or Podman's compatible
//! socket): containers labelled `elkservice.name=<Name>` are watched with no
//! configuration.
//!
//! Each session subscribes to the event stream with `since` set to just before
//! it lists and inspects the containers, so an event between the two is
//! replayed rather than lost; the list is reconciled at every session start and
//! every poll interval as a safety net. A stream silent for longer than the
//! watchdog is resubscribed (a client timeout does not cover a long-lived
//! stream). When the engine cannot be reached, every container service it
//! watched becomes `unknown`: the watcher cannot see, which is not `down`.

use crate::lifecycle::{Action, HealthEvent};
use crate::metrics::Metrics;
use crate::observation::Observation;
use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use chrono::Utc;
use elkservice_core::retry::Retry;
use elkservice_core::shutdown::stopping;
use elkservice_core::{ServiceName, Status};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod inspect;
mod known;

use inspect::Looked;
use known::{report, Known};

/// How long a `die` after a soft kill waits for Docker's `stop` before it is
/// taken for a failure. Docker sends `stop` milliseconds after `die`.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// A health event whose check the inspection has not shown yet is looked at
/// again after this, doubling up to [`HEALTH_RECHECK_MAX`]…
const HEALTH_RECHECK_FIRST: Duration = Duration::from_millis(20);
const HEALTH_RECHECK_MAX: Duration = Duration::from_millis(500);
/// …for this long (a check may run up to its timeout); then the inspection
/// is taken as it is and the next event or poll corrects it.
const HEALTH_RECHECK_FOR: Duration = Duration::from_secs(10);

/// A container whose report waits for a later event or a moment.
enum Pending {
    /// It died after a soft kill: a failure unless Docker's `stop` comes by `due`.
    Died { due: Instant },
    /// A health event the inspection had not caught up with.
    Health {
        due: Instant,
        event: HealthEvent,
        delay: Duration,
        until: Instant,
    },
}

impl Pending {
    fn due(&self) -> Instant {
        match self {
            Pending::Died { due } | Pending::Health { due, .. } => *due,
        }
    }
}

pub struct DockerSource {
    pub docker: Docker,
    /// Containers named in config (container name → service), watched without a label.
    pub by_container: HashMap<String, ServiceName>,
    pub label: String,
    pub poll: Duration,
    /// Follow the event stream; without it, changes are seen at the next poll.
    pub events: bool,
    pub idle_watchdog: Duration,
    /// What a running but unhealthy container counts as: `down` or `degraded`.
    pub unhealthy: Status,
    pub metrics: Metrics,
}

enum SessionEnd {
    Shutdown,
    Resubscribe,
}

impl DockerSource {
    pub async fn run(self, tx: mpsc::Sender<Observation>, shutdown: watch::Receiver<bool>) {
        // Container id → service name, for containers seen in this engine.
        let mut known = Known::default();
        let mut retry = Retry::new(
            "container engine unreachable",
            Duration::from_millis(200),
            Duration::from_secs(10),
            &shutdown,
        );
        loop {
            let started = tokio::time::Instant::now();
            let result = self
                .session(&tx, &mut known, &mut shutdown.clone(), &mut retry)
                .await;
            let e = match result {
                Ok(SessionEnd::Shutdown) => return,
                // A stream that the engine ends at once would otherwise be
                // resubscribed (a list and an inspection of every container
                // each time) in a tight loop.
                Ok(SessionEnd::Resubscribe) if started.elapsed() < Duration::from_secs(1) => {
                    if !retry
                        .wait_after(&"the engine ended the event stream at once")
                        .await
                    {
                        return;
                    }
                    continue;
                }
                Ok(SessionEnd::Resubscribe) => continue,
                Err(e) => e,
            };
            self.metrics.engine_connected.set(0);
            self.metrics.engine_errors.inc();
            let detail = format!("the watcher cannot reach the container engine: {e}");
            for name in known.names() {
                let _ = tx
                    .send(Observation::now(
                        name,
                        Status::Unknown,
                        false,
                        detail.clone(),
                    ))
                    .await;
            }
            if !retry.wait_after(&e).await {
                return;
            }
        }
    }

    async fn session(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
        shutdown: &mut watch::Receiver<bool>,
        retry: &mut Retry,
    ) -> Result<SessionEnd, bollard::errors::Error> {
        let since = (Utc::now().timestamp() - 1).to_string();
        // No label filter on the stream: Podman matches a key-only label filter
        // against nothing. Events carry the labels; they are matched below.
        let filters = HashMap::from([("type".to_owned(), vec!["container".to_owned()])]);
        let mut events = self.docker.events(Some(EventsOptions {
            since: Some(since),
            until: None,
            filters: Some(filters),
        }));
        let mut pending: HashMap<String, Pending> = HashMap::new();
        self.reconcile(tx, known, &pending).await?;
        self.metrics.engine_connected.set(1);
        let mut poll = tokio::time::interval(self.poll);
        poll.tick().await;
        if !self.events {
            retry.succeeded();
            // The stream is never polled, so it is never requested.
            loop {
                tokio::select! {
                    _ = stopping(shutdown) => return Ok(SessionEnd::Shutdown),
                    _ = poll.tick() => self.reconcile(tx, known, &pending).await?,
                }
            }
        }
        loop {
            let next_due = pending.values().map(Pending::due).min();
            tokio::select! {
                _ = stopping(shutdown) => return Ok(SessionEnd::Shutdown),
                _ = poll.tick() => {
                    self.reconcile(tx, known, &pending).await?;
                    retry.succeeded();
                }
                _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    self.settle_due(tx, known, &mut pending).await?;
                }
                next = tokio::time::timeout(self.idle_watchdog, events.next()) => match next {
                    Err(_idle) => {
                        self.docker.ping().await?;
                        return Ok(SessionEnd::Resubscribe);
                    }
                    Ok(None) => return Ok(SessionEnd::Resubscribe),
                    // One event the client cannot read says nothing about the
                    // engine or the containers: skip it, keep the stream.
                    Ok(Some(Err(e @ (bollard::errors::Error::JsonDataError { .. }
                    | bollard::errors::Error::JsonSerdeError { .. })))) => {
                        tracing::warn!(error = %e, "skipping an engine event that cannot be read");
                    }
                    Ok(Some(Err(e))) => return Err(e),
                    Ok(Some(Ok(event))) => {
                        // The stream works: the next outage starts from the first delay.
                        retry.succeeded();
                        self.on_event(tx, known, &mut pending, event).await?;
                    }
                }
            }
        }
    }

    /// One engine event: inspect the container it is about, unless the event
    /// says what the status needs to wait for.
    async fn on_event(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
        pending: &mut HashMap<String, Pending>,
        event: bollard::models::EventMessage,
    ) -> Result<(), bollard::errors::Error> {
        let actor = event.actor.unwrap_or_default();
        let attributes = actor.attributes.unwrap_or_default();
        let Some(action) = Action::parse(event.action.as_deref().unwrap_or_default(), &attributes)
        else {
            return Ok(());
        };
        let id = actor.id.unwrap_or_default();
        let Some(name) = self
            .service_of(
                attributes.get(&self.label),
                attributes.get("name").map(String::as_str),
            )
            .or_else(|| known.name_of(&id))
        else {
            return Ok(());
        };
        if let Some(seen) = known.0.get_mut(&id) {
            seen.lifecycle.record(&action);
        }
        if matches!(pending.get(&id), Some(Pending::Died { .. })) {
            match action {
                // A dead container's health, or a signal to it, says nothing
                // about whether the operator stopped it.
                Action::Health(_) | Action::Kill { .. } => return Ok(()),
                Action::Stopped => {}
                // Anything else that follows the death (a restart, say) would
                // hide it: it is reported as it is first.
                _ => {
                    pending.remove(&id);
                    report(tx, known, &name).await;
                }
            }
        }
        let health = match &action {
            // A signal changes nothing until the container dies.
            Action::Kill { .. } => return Ok(()),
            Action::Stopped => {
                pending.remove(&id);
                None
            }
            Action::Health(value) => Some(HealthEvent {
                at: event
                    .time_nano
                    .map(chrono::DateTime::from_timestamp_nanos)
                    .unwrap_or_else(Utc::now),
                value: *value,
            }),
            _ => None,
        };
        let soft_killed = known.0.get(&id).is_some_and(|s| s.lifecycle.soft_killed);
        match self.look(known, &id, name.clone(), health.as_ref()).await? {
            Looked::Seen if action == Action::Died && soft_killed => {
                let due = Instant::now() + STOP_GRACE;
                pending.insert(id, Pending::Died { due });
            }
            Looked::Seen | Looked::Gone => report(tx, known, &name).await,
            Looked::Nothing => {}
            Looked::Behind => {
                let event = health.expect("only a health event can be behind");
                pending.insert(
                    id,
                    Pending::Health {
                        due: Instant::now() + HEALTH_RECHECK_FIRST,
                        event,
                        delay: HEALTH_RECHECK_FIRST,
                        until: Instant::now() + HEALTH_RECHECK_FOR,
                    },
                );
            }
        }
        Ok(())
    }

    /// Report what has waited long enough: a death with no `stop` after it
    /// is a failure; a health event is looked at again.
    async fn settle_due(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
        pending: &mut HashMap<String, Pending>,
    ) -> Result<(), bollard::errors::Error> {
        let now = Instant::now();
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, p)| p.due() <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(name) = known.name_of(&id) else {
                pending.remove(&id);
                continue;
            };
            match pending.remove(&id) {
                Some(Pending::Died { .. }) => report(tx, known, &name).await,
                Some(Pending::Health {
                    event,
                    delay,
                    until,
                    ..
                }) => {
                    // Past the bound, the inspection is taken as it is.
                    let health = (now < until).then_some(&event);
                    match self.look(known, &id, name.clone(), health).await? {
                        Looked::Seen | Looked::Gone => report(tx, known, &name).await,
                        Looked::Nothing => {}
                        Looked::Behind => {
                            let delay = (delay * 2).min(HEALTH_RECHECK_MAX);
                            let due = now + delay;
                            pending.insert(
                                id,
                                Pending::Health {
                                    due,
                                    event,
                                    delay,
                                    until,
                                },
                            );
                        }
                    }
                }
                None => {}
            }
        }
        Ok(())
    }
}
