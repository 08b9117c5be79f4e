//! Listing and inspecting containers: the poll's safety net, and the look
//! behind every event.

use super::known::{report, Known, Seen};
use super::{DockerSource, Pending};
use crate::container::{assess, combine, ContainerView};
use crate::lifecycle::{catch_up, Caught, HealthEvent, Lifecycle};
use crate::observation::Observation;
use bollard::query_parameters::ListContainersOptions;
use elkservice_core::ServiceName;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// What an inspection found.
pub(super) enum Looked {
    /// The container's assessment in `known` is fresh: report its service.
    Seen,
    /// The container is gone (first time): report its service.
    Gone,
    /// Nothing to report now.
    Nothing,
    /// The inspection predates the health event it was for.
    Behind,
}

impl DockerSource {
    /// The service a container stands for: its label, else its name in config.
    pub(super) fn service_of(
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

    /// Inspect one container into `known`, brought up to `health` if given.
    pub(super) async fn look(
        &self,
        known: &mut Known,
        id: &str,
        name: ServiceName,
        health: Option<&HealthEvent>,
    ) -> Result<Looked, bollard::errors::Error> {
        self.metrics.inspections.inc();
        match self.docker.inspect_container(id, None).await {
            Ok(c) => {
                let mut view = ContainerView::from(&c);
                if health.is_some_and(|h| catch_up(&mut view, h) == Caught::Behind) {
                    return Ok(Looked::Behind);
                }
                let seen = known.0.entry(id.to_owned()).or_insert_with(|| Seen {
                    name: name.clone(),
                    assessment: combine(&[]),
                    lifecycle: Lifecycle::default(),
                });
                seen.name = name;
                seen.assessment = assess(&view, self.unhealthy, &seen.lifecycle);
                Ok(Looked::Seen)
            }
            // Reported once: later events of a removed container (Podman's
            // `cleanup`, say) must not report it again, after the service may
            // have been deleted.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(match known.0.remove(id) {
                Some(_) => Looked::Gone,
                None => Looked::Nothing,
            }),
            // The engine answered, but with an error about this container, or with
            // a state the client does not know (Podman's transient `stopped`). The
            // engine is reachable, so nothing becomes unknown: the container's next
            // event, or the next poll, reports it.
            Err(
                e @ (bollard::errors::Error::DockerResponseServerError { .. }
                | bollard::errors::Error::JsonDataError { .. }),
            ) => {
                tracing::warn!(container = %id, error = %e, "inspect gave no usable state; skipping this container for now");
                Ok(Looked::Nothing)
            }
            Err(e) => Err(e),
        }
    }

    /// List the labelled containers, inspect each, and report the ones that
    /// vanished. A container whose report waits for an event is inspected,
    /// not reported.
    pub(super) async fn reconcile(
        &self,
        tx: &mpsc::Sender<Observation>,
        known: &mut Known,
        pending: &HashMap<String, Pending>,
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
            if let Some(seen) = known.0.remove(&id) {
                // A service with containers left is reported by their inspection below.
                if !listed.values().any(|n| *n == seen.name)
                    && known.observation(&seen.name).is_none()
                {
                    let _ = tx.send(Observation::removed(seen.name)).await;
                }
            }
        }
        for (id, name) in listed {
            let looked = self.look(known, &id, name.clone(), None).await?;
            if matches!(looked, Looked::Seen | Looked::Gone) && !pending.contains_key(&id) {
                report(tx, known, &name).await;
            }
        }
        Ok(())
    }
}
