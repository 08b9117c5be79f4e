//! What the engine's events say about a container beyond what an inspection
//! shows: that the operator stopped it, and the health a check just reported.
//! Pure, so the engines' differences are tested here:
//!
//! - Docker: `docker stop` is `kill` (the stop signal) … `die` … `stop`, the
//!   last one milliseconds after `die`; `docker kill` is `kill` (SIGKILL),
//!   `die`. `health_status: <value>` carries the new health, set before the
//!   event is sent.
//! - Podman 4.3: no signal on `kill`, and `stop` only at times (when the stop
//!   outruns the container's cleanup), so a stop is mostly taken for a crash;
//!   `health_status` carries no value and is sent while the
//!   check is still running, before its result is in the inspect output.

use crate::container::{health, ContainerView, Health};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A container event, as far as the status is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Created, started or restarted: whatever stop was asked for is over.
    Started,
    /// A signal was sent; `soft` unless it was SIGKILL.
    Kill {
        soft: bool,
    },
    Died,
    /// Docker's `stop`: the operator stopped it.
    Stopped,
    /// A health check reported; Docker says the new health.
    Health(Option<Health>),
    /// Anything else that can change the state (pause, OOM, removal, …).
    Changed,
}

impl Action {
    /// None for an action that changes nothing about the status (exec, attach,
    /// …).
    pub fn parse(action: &str, attributes: &HashMap<String, String>) -> Option<Action> {
        let (verb, value) = match action.split_once(':') {
            Some((verb, value)) => (verb.trim(), Some(value.trim())),
            None => (action.trim(), None),
        };
        Some(match verb {
            "create" | "start" | "restart" => Action::Started,
            "kill" => Action::Kill {
                // Podman names no signal; what it kills with cannot be told.
                soft: attributes
                    .get("signal")
                    .is_some_and(|s| !matches!(s.as_str(), "9" | "KILL" | "SIGKILL")),
            },
            "die" => Action::Died,
            "stop" => Action::Stopped,
            "health_status" => Action::Health(value.and_then(health)),
            // Podman: `cleanup` after `died`, once the container is cleaned up
            // (an inspection at `died` may see the transient `stopped` state).
            "oom" | "pause" | "unpause" | "destroy" | "remove" | "cleanup" => Action::Changed,
            _ => return None,
        })
    }
}

/// Per container: what the events said that an inspection cannot show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// A signal other than SIGKILL was sent: the next `die` may be the first
    /// half of a `docker stop`.
    pub soft_killed: bool,
    /// The engine said the operator stopped it; until it starts again.
    pub stopped_on_request: bool,
}

impl Lifecycle {
    pub fn record(&mut self, action: &Action) {
        match action {
            Action::Started => *self = Lifecycle::default(),
            Action::Kill { soft: true } => self.soft_killed = true,
            Action::Stopped => {
                self.soft_killed = false;
                self.stopped_on_request = true;
            }
            _ => {}
        }
    }
}

/// A health event: when the engine sent it and, where it says, the new health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub at: DateTime<Utc>,
    pub value: Option<Health>,
}

/// Whether an inspection has caught up with a health event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    Up,
    /// The inspection predates the check the event is about: look again.
    Behind,
}

/// Bring an inspected health up to `event`. An inspection whose newest check
/// ended at or after the event has seen it (or a later one); otherwise the
/// event's own value is the newest word (Docker), and without one (Podman)
/// the inspection is behind.
pub fn catch_up(view: &mut ContainerView, event: &HealthEvent) -> Caught {
    if !view.running || view.health_checked_at.is_some_and(|end| end >= event.at) {
        return Caught::Up;
    }
    match event.value {
        Some(value) => {
            view.health = Some(value);
            Caught::Up
        }
        None => Caught::Behind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn parse(action: &str, signal: Option<&str>) -> Option<Action> {
        let attributes = signal
            .map(|s| HashMap::from([("signal".to_owned(), s.to_owned())]))
            .unwrap_or_default();
        Action::parse(action, &attributes)
    }

    #[test]
    fn engine_actions_are_read_as_docker_and_podman_send_them() {
        assert_eq!(parse("kill", Some("15")), Some(Action::Kill { soft: true }));
        assert_eq!(parse("kill", Some("9")), Some(Action::Kill { soft: false }));
        assert_eq!(parse("kill", None), Some(Action::Kill { soft: false }));
        assert_eq!(
            parse("health_status: unhealthy", None),
            Some(Action::Health(Some(Health::UNHEALTHY)))
        );
        assert_eq!(parse("health_status", None), Some(Action::Health(None)));
        assert_eq!(parse("cleanup", None), Some(Action::Changed));
        assert_eq!(parse("exec_start: sh -c true", None), None);
        assert_eq!(parse("exec_died", None), None);
    }

    #[test]
    fn a_stop_is_remembered_until_the_container_starts_again() {
        let mut l = Lifecycle::default();
        for a in [Action::Kill { soft: true }, Action::Kill { soft: false }] {
            l.record(&a);
        }
        assert!(l.soft_killed && !l.stopped_on_request);
        l.record(&Action::Died);
        l.record(&Action::Stopped);
        assert!(!l.soft_killed && l.stopped_on_request);
        l.record(&Action::Changed);
        assert!(l.stopped_on_request);
        l.record(&Action::Started);
        assert_eq!(l, Lifecycle::default());
    }

    #[test]
    fn health_comes_from_the_newest_of_the_event_and_the_inspection() {
        let at = |ms: i64| Utc.timestamp_millis_opt(1_800_000_000_000 + ms).unwrap();
        let inspected = |word: &str, checked| ContainerView {
            state: crate::container::State::RUNNING,
            running: true,
            health: health(word),
            health_checked_at: Some(at(checked)),
            ..Default::default()
        };
        let event = |ms, value: Option<&str>| HealthEvent {
            at: at(ms),
            value: value.and_then(health),
        };
        // Docker: the check ended just before the event; the event's value wins.
        let mut v = inspected("healthy", 95);
        assert_eq!(catch_up(&mut v, &event(100, Some("unhealthy"))), Caught::Up);
        assert_eq!(v.health, Some(Health::UNHEALTHY));
        // A replayed old event does not override a newer check.
        let mut v = inspected("healthy", 500);
        assert_eq!(catch_up(&mut v, &event(100, Some("unhealthy"))), Caught::Up);
        assert_eq!(v.health, Some(Health::HEALTHY));
        // Podman: the event comes while the check runs; until the inspection
        // shows a check that ended after it, it is behind.
        let mut v = inspected("healthy", 95);
        assert_eq!(catch_up(&mut v, &event(100, None)), Caught::Behind);
        let mut v = inspected("unhealthy", 130);
        assert_eq!(catch_up(&mut v, &event(100, None)), Caught::Up);
        assert_eq!(v.health, Some(Health::UNHEALTHY));
        // A container that stopped meanwhile has no health to wait for.
        let mut v = ContainerView {
            running: false,
            ..inspected("healthy", 95)
        };
        assert_eq!(catch_up(&mut v, &event(100, None)), Caught::Up);
    }
}
