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

use crate::container::{assess, combine, ContainerView};
use crate::metrics::Metrics;
use crate::observation::Observation;
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use bollard::Docker;
use chrono::Utc;
use elkservice_core::retry::Retry;
use elkservice_core::shutdown::stopping;
use elkservice_core::{ServiceName, Status};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Container events that can change what a container's state means.
const ACTIONS: [&str; 13] = [
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "oom",
    "pause",
    "unpause",
    "destroy",
    "remove",
    "health_status",
    // Podman: after `died`, once the container is cleaned up (inspect may have
    // seen the transient `stopped` state at `died`).
    "cleanup",
];

/// The containers seen in this engine: id → the service it stands for, and
/// what its last inspection said.
#[derive(Default)]
struct Known(HashMap<String, (ServiceName, (Status, bool, String))>);

impl Known {
    fn names(&self) -> Vec<ServiceName> {
        let mut names: Vec<_> = self.0.values().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn name_of(&self, id: &str) -> Option<ServiceName> {
        self.0.get(id).map(|(n, _)| n.clone())
    }

    fn ids(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// What all of a service's containers say together; None if it has none.
    fn observation(&self, name: &ServiceName) -> Option<Observation> {
        let mut parts: Vec<_> = self.0.iter().filter(|(_, (n, _))| n == name).collect();
        parts.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<_> = parts.into_iter().map(|(_, (_, p))| p.clone()).collect();
        if parts.is_empty() {
            return None;
        }
        let (status, running, detail) = combine(&parts);
        Some(Observation::now(name.clone(), status, running, detail))
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
    pub unhealthy_is_down: bool,
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
        self.reconcile(tx, known).await?;
        self.metrics.engine_connected.set(1);
        let mut poll = tokio::time::interval(self.poll);
        poll.tick().await;
        if !self.events {
            retry.succeeded();
            // The stream is never polled, so it is never requested.
            loop {
                tokio::select! {
                    _ = stopping(shutdown) => return Ok(SessionEnd::Shutdown),
                    _ = poll.tick() => self.reconcile(tx, known).await?,
                }
            }
        }
        loop {
            tokio::select! {
                _ = stopping(shutdown) => return Ok(SessionEnd::Shutdown),
                _ = poll.tick() => {
                    self.reconcile(tx, known).await?;
                    retry.succeeded();
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
                        let action = event.action.unwrap_or_default();
                        // Docker says `health_status: healthy`; Podman `health_status`.
                        let action = action.split(':').next().unwrap_or_default().trim();
                        if !ACTIONS.contains(&action) {
                            continue;
                        }
                        let actor = event.actor.unwrap_or_default();
                        let id = actor.id.unwrap_or_default();
                        let attributes = actor.attributes.unwrap_or_default();
                        let name = self
                            .service_of(attributes.get(&self.label), attributes.get("name").map(String::as_str))
                            .or_else(|| known.name_of(&id));
                        if let Some(name) = name {
                            self.inspect(tx, known, &id, name).await?;
                        }
                    }
                }
            }
        }
    }

    /// The service a container stands for: its label, else its name in config.
    fn service_of(
        &self,
        label: Option<&String>,
        container_name: Option<&str>,
    ) -> Option<ServiceName> {
        if let Some(raw) = label {
            match ServiceName::parse(raw) {
                Ok(name) => return Some(name),
                Err(e) => tracing::warn!(label = %raw, "ignoring a label: the name {e}"),
            }
        }
        container_name.and_then(|n| self.by_container.get(n.trim_start_matches('/')).cloned())
    }

    /// Inspect one container and report it; a container that is gone is `down`.
    async fn inspect(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
        id: &str,
        name: ServiceName,
    ) -> Result<(), bollard::errors::Error> {
        self.metrics.inspections.inc();
        let observation = match self.docker.inspect_container(id, None).await {
            Ok(c) => {
                let assessed = assess(&ContainerView::from(&c), self.unhealthy_is_down);
                known.0.insert(id.to_owned(), (name.clone(), assessed));
                known.observation(&name).expect("just inserted")
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                // Reported once: later events of a removed container (Podman's
                // `cleanup`, say) must not report it again, after the service
                // may have been deleted.
                if known.0.remove(id).is_none() {
                    return Ok(());
                }
                known
                    .observation(&name)
                    .unwrap_or_else(|| Observation::removed(name))
            }
            // The engine answered, but with an error about this container, or with
            // a state the client does not know (Podman's transient `stopped`). The
            // engine is reachable, so nothing becomes unknown: the container's next
            // event, or the next poll, reports it.
            Err(
                e @ (bollard::errors::Error::DockerResponseServerError { .. }
                | bollard::errors::Error::JsonDataError { .. }),
            ) => {
                tracing::warn!(container = %id, error = %e, "inspect gave no usable state; skipping this container for now");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let _ = tx.send(observation).await;
        Ok(())
    }

    /// List the labelled containers, inspect each, and report the ones that vanished.
    async fn reconcile(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
    ) -> Result<(), bollard::errors::Error> {
        // Unfiltered when containers are also named in config; else only the labelled.
        let filters = self
            .by_container
            .is_empty()
            .then(|| HashMap::from([("label".to_owned(), vec![self.label.clone()])]));
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters,
                ..Default::default()
            }))
            .await?;
        let mut listed = HashMap::new();
        for c in list {
            let label = c.labels.as_ref().and_then(|l| l.get(&self.label));
            let container_name = c.names.as_ref().and_then(|n| n.first()).map(String::as_str);
            if let (Some(id), Some(name)) = (c.id.clone(), self.service_of(label, container_name)) {
                listed.insert(id, name);
            }
        }
        for id in known.ids() {
            if listed.contains_key(&id) {
                continue;
            }
            if let Some((name, _)) = known.0.remove(&id) {
                // A service with containers left is reported by their inspection below.
                if !listed.values().any(|n| *n == name) && known.observation(&name).is_none() {
                    let _ = tx.send(Observation::removed(name)).await;
                }
            }
        }
        for (id, name) in listed {
            self.inspect(tx, known, &id, name).await?;
        }
        Ok(())
    }
}
