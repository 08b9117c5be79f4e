//! The containers one engine has shown, and what each service's amount to.

use crate::container::{combine, Assessment};
use crate::lifecycle::Lifecycle;
use crate::observation::Observation;
use elkservice_core::ServiceName;
use std::collections::HashMap;
use tokio::sync::mpsc;

/// One container seen in this engine.
pub(super) struct Seen {
    pub(super) name: ServiceName,
    pub(super) assessment: Assessment,
    pub(super) lifecycle: Lifecycle,
}

/// The containers seen in this engine, by id.
#[derive(Default)]
pub(super) struct Known(pub(super) HashMap<String, Seen>);

impl Known {
    pub(super) fn names(&self) -> Vec<ServiceName> {
        let mut names: Vec<_> = self.0.values().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    pub(super) fn name_of(&self, id: &str) -> Option<ServiceName> {
        self.0.get(id).map(|s| s.name.clone())
    }

    pub(super) fn ids(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// What all of a service's containers say together; None if it has none.
    pub(super) fn observation(&self, name: &ServiceName) -> Option<Observation> {
        let mut parts: Vec<_> = self.0.iter().filter(|(_, s)| s.name == *name).collect();
        parts.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<_> = parts
            .into_iter()
            .map(|(_, s)| s.assessment.clone())
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(Observation::assessed(name.clone(), combine(&parts)))
    }
}

/// Send what a service's containers say now; a service with none left was removed.
pub(super) async fn report(tx: &mpsc::Sender<Observation>, known: &Known, name: &ServiceName) {
    let observation = known
        .observation(name)
        .unwrap_or_else(|| Observation::removed(name.clone()));
    let _ = tx.send(observation).await;
}
