//! What a source saw of one service at one moment, and how it becomes the
//! status event on the wire.

use crate::container::Assessment;
use chrono::{DateTime, Utc};
use elkservice_core::domain::DETAIL_MAX_LEN;
use elkservice_core::{ServiceName, Status, StatusEvent};

/// What a source saw of one service at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    pub detail: String,
    pub observed_at: DateTime<Utc>,
    /// The service's container is gone: once this is published, the watcher
    /// forgets the service instead of reporting it again and again.
    pub removed: bool,
    /// A `down` the operator asked for (see [`StatusEvent::planned`]).
    pub planned: bool,
}

impl Observation {
    pub fn now(name: ServiceName, status: Status, running: bool, detail: String) -> Self {
        Observation {
            name,
            status,
            running,
            detail: bounded(detail),
            observed_at: Utc::now(),
            removed: false,
            planned: false,
        }
    }

    /// What a service's containers amount to, now.
    pub fn assessed(name: ServiceName, a: Assessment) -> Self {
        Observation {
            planned: a.planned,
            ..Self::now(name, a.status, a.running, a.detail)
        }
    }

    /// The service's container was removed: it is `down`, for the last time.
    pub fn removed(name: ServiceName) -> Self {
        Observation {
            removed: true,
            ..Self::now(name, Status::Down, false, "container removed".into())
        }
    }
}

impl Observation {
    /// The event that `watcher` publishes for this observation.
    pub fn to_event(&self, watcher: &str) -> StatusEvent {
        StatusEvent {
            planned: self.planned,
            ..StatusEvent::observed(
                self.name.clone(),
                self.status,
                self.running,
                self.observed_at,
                watcher,
                Some(self.detail.clone()),
            )
        }
    }
}

/// `detail` cut to what the writer accepts, on a character boundary, with an
/// ellipsis that shows it was cut. A failing probe whose answer is long (a
/// large JSON object, an engine's error text) must still be reported.
fn bounded(mut detail: String) -> String {
    if detail.chars().nth(DETAIL_MAX_LEN).is_some() {
        let (cut, _) = detail
            .char_indices()
            .nth(DETAIL_MAX_LEN - 1)
            .expect("longer than the limit");
        detail.truncate(cut);
        detail.push('…');
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_detail_is_cut_to_the_limit_on_a_character_boundary() {
        let name = ServiceName::parse("es").unwrap();
        let long = "é".repeat(5000);
        let o = Observation::now(name.clone(), Status::Down, false, long);
        assert_eq!(o.detail.chars().count(), DETAIL_MAX_LEN);
        assert!(o.detail.ends_with('…') && o.detail.starts_with("éé"));
        let event = StatusEvent::decode(&o.to_event("w").encode()).expect("the writer accepts it");
        assert_eq!(event.detail.as_deref(), Some(o.detail.as_str()));

        let exact = "x".repeat(DETAIL_MAX_LEN);
        assert_eq!(
            Observation::now(name, Status::Down, false, exact.clone()).detail,
            exact
        );
    }
}
