//! What a source saw of one service at one moment, and how it becomes the
//! status event on the wire.

use chrono::{DateTime, Utc};
use elkservice_core::{ServiceName, Status, StatusEvent};

/// What a source saw of one service at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    pub detail: String,
    pub observed_at: DateTime<Utc>,
}

impl Observation {
    pub fn now(name: ServiceName, status: Status, running: bool, detail: String) -> Self {
        Observation {
            name,
            status,
            running,
            detail,
            observed_at: Utc::now(),
        }
    }
}

impl Observation {
    /// The event that `watcher` publishes for this observation.
    pub fn to_event(&self, watcher: &str) -> StatusEvent {
        StatusEvent::observed(
            self.name.clone(),
            self.status,
            self.running,
            self.observed_at,
            watcher,
            Some(self.detail.clone()),
        )
    }
}
