//! From what the engine says about a container to a status. Pure: the engine's
//! view is taken as it stands (a dead container is `down` at once; `unhealthy`
//! already includes the engine's own retries).

use crate::lifecycle::Lifecycle;
use bollard::models::ContainerInspectResponse;
pub use bollard::models::{ContainerStateStatusEnum as State, HealthStatusEnum as Health};
use chrono::{DateTime, Utc};
use elkservice_core::Status;

/// A health as the engine words it; `none` (no healthcheck) is no health.
pub fn health(word: &str) -> Option<Health> {
    word.parse()
        .ok()
        .filter(|h| !matches!(h, Health::EMPTY | Health::NONE))
}

/// What matters of a container's inspect output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    pub state: State,
    pub running: bool,
    pub restarting: bool,
    /// Frozen by `docker pause`: the engine still counts it as running.
    pub paused: bool,
    /// None when there is no healthcheck.
    pub health: Option<Health>,
    /// When the newest health check in the engine's log ended: how far this
    /// view of the health reaches.
    pub health_checked_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
}

impl Default for ContainerView {
    fn default() -> Self {
        ContainerView {
            state: State::EMPTY,
            running: false,
            restarting: false,
            paused: false,
            health: None,
            health_checked_at: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
        }
    }
}

impl From<&ContainerInspectResponse> for ContainerView {
    fn from(c: &ContainerInspectResponse) -> Self {
        let state = c.state.clone().unwrap_or_default();
        let health = state
            .health
            .as_ref()
            .and_then(|h| h.status)
            .filter(|s| !matches!(s, Health::EMPTY | Health::NONE));
        let health_checked_at = state
            .health
            .as_ref()
            .and_then(|h| h.log.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|check| check.end.as_deref())
            .filter_map(|end| DateTime::parse_from_rfc3339(end).ok())
            .map(|end| end.with_timezone(&Utc))
            .max();
        ContainerView {
            state: state.status.unwrap_or(State::EMPTY),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            health,
            health_checked_at,
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: c.restart_count.unwrap_or(0),
        }
    }
}

/// What one container, or all of a service's containers together, amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub status: Status,
    pub running: bool,
    pub detail: String,
    /// `down` because the operator stopped it: no failure.
    pub planned: bool,
}

/// The status, `running`, and a detail that describes the container as it is
/// now (exit code, OOM and restarts included). `unhealthy` is what a running
/// but unhealthy container counts as (`down` or `degraded`); `lifecycle` says
/// whether the engine told us the operator stopped it.
pub fn assess(c: &ContainerView, unhealthy: Status, lifecycle: &Lifecycle) -> Assessment {
    let stopped_on_request = lifecycle.stopped_on_request;
    // A paused container's processes are frozen: it answers nothing, though
    // the engine's compatible API says it is running. It is `down`, and, as
    // only an operator pauses one, no failure.
    let paused = c.paused || c.state == State::PAUSED;
    let running = c.running && !paused;
    let status = if c.restarting || c.state == State::RESTARTING {
        Status::Degraded
    } else if paused {
        Status::Down
    } else if running {
        match c.health {
            Some(Health::STARTING) => Status::Starting,
            Some(Health::UNHEALTHY) => unhealthy,
            _ => Status::Normal,
        }
    } else if c.state == State::CREATED {
        // Being created or about to start: nothing has failed yet.
        Status::Starting
    } else {
        Status::Down
    };
    let mut detail = vec![format!(
        "container {}",
        match &c.state {
            State::EMPTY => "unknown",
            state => state.as_ref(),
        }
    )];
    // The health of a container that is not running is its last one before it
    // stopped: not the current state.
    if let Some(health) = c.health.filter(|_| running) {
        detail.push(health.to_string());
    }
    let planned = status == Status::Down && (stopped_on_request || paused);
    // A paused container has not stopped: "container paused" says it all.
    if status == Status::Down && !paused {
        if stopped_on_request {
            detail.push("stopped on request".into());
        }
        if let Some(code) = c.exit_code {
            detail.push(format!("exit code {code}"));
        }
    }
    if c.oom_killed {
        detail.push("OOM killed".into());
    }
    if c.restart_count > 0 {
        detail.push(format!("restarts {}", c.restart_count));
    }
    Assessment {
        status,
        running,
        detail: detail.join(", "),
        planned,
    }
}

/// One status for a service whose name several containers claim (replicas, or
/// a container started twice with the same label): all running and healthy is
/// `normal`; none running is `down` (planned only if every one was stopped on
/// request); anything between is `degraded`, with a detail that says how many
/// of how many are healthy. One container is reported as it is. Claims are
/// taken as they come: whoever can start a labelled container on a watched
/// host speaks for that name.
pub fn combine(parts: &[Assessment]) -> Assessment {
    let n = parts.len();
    let healthy = parts.iter().filter(|p| p.status == Status::Normal).count();
    let running = parts.iter().filter(|p| p.running).count();
    let (status, running, detail) = match parts {
        [] => (Status::Unknown, false, "no container".into()),
        [one] => return one.clone(),
        _ if healthy == n => (
            Status::Normal,
            true,
            format!("{n} of {n} containers healthy"),
        ),
        _ if running == 0 => (
            Status::Down,
            false,
            format!("none of {n} containers running ({})", parts[0].detail),
        ),
        _ => (
            Status::Degraded,
            true,
            format!("{healthy} of {n} containers healthy"),
        ),
    };
    Assessment {
        status,
        running,
        detail,
        planned: status == Status::Down && parts.iter().all(|p| p.planned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: &str, running: bool, health_word: &str) -> ContainerView {
        ContainerView {
            state: state.parse().unwrap(),
            running,
            health: health(health_word),
            ..Default::default()
        }
    }

    fn on_request() -> Lifecycle {
        Lifecycle {
            stopped_on_request: true,
            ..Lifecycle::default()
        }
    }

    #[test]
    fn states_map_as_the_contract_says() {
        let cases = [
            (view("running", true, ""), Status::Normal),
            (view("running", true, "healthy"), Status::Normal),
            (view("running", true, "starting"), Status::Starting),
            (view("running", true, "unhealthy"), Status::Degraded),
            (view("restarting", false, ""), Status::Degraded),
            (view("exited", false, ""), Status::Down),
            (view("dead", false, ""), Status::Down),
            // Docker's `create` event comes before `start`: no failure there.
            (view("created", false, ""), Status::Starting),
        ];
        for (v, want) in cases {
            assert_eq!(
                assess(&v, Status::Degraded, &Lifecycle::default()).status,
                want,
                "{v:?}"
            );
        }
        assert_eq!(
            assess(
                &view("running", true, "unhealthy"),
                Status::Down,
                &Lifecycle::default()
            )
            .status,
            Status::Down
        );
    }

    #[test]
    fn detail_describes_the_container_as_it_is_now() {
        let v = ContainerView {
            exit_code: Some(137),
            oom_killed: true,
            restart_count: 2,
            ..view("exited", false, "unhealthy")
        };
        assert_eq!(
            assess(&v, Status::Degraded, &Lifecycle::default()).detail,
            "container exited, exit code 137, OOM killed, restarts 2",
            "no health once it has stopped"
        );
        assert_eq!(
            assess(
                &view("running", true, "healthy"),
                Status::Degraded,
                &Lifecycle::default()
            )
            .detail,
            "container running, healthy"
        );
        let created = ContainerView {
            exit_code: Some(0),
            ..view("created", false, "")
        };
        assert_eq!(
            assess(&created, Status::Degraded, &Lifecycle::default()).detail,
            "container created"
        );
    }

    #[test]
    fn a_stop_on_request_is_down_and_planned_until_it_runs_again() {
        let stopped = ContainerView {
            exit_code: Some(143),
            ..view("exited", false, "")
        };
        let a = assess(&stopped, Status::Degraded, &on_request());
        assert_eq!((a.status, a.planned), (Status::Down, true));
        assert_eq!(
            a.detail,
            "container exited, stopped on request, exit code 143"
        );
        // The flag only qualifies a `down`.
        let a = assess(&view("running", true, ""), Status::Degraded, &on_request());
        assert_eq!((a.status, a.planned), (Status::Normal, false));
    }

    #[test]
    fn a_paused_container_is_down_not_running_and_no_failure() {
        // As both engines' compatible API describe one: running, and paused.
        let paused = ContainerView {
            paused: true,
            exit_code: Some(0),
            ..view("paused", true, "healthy")
        };
        let a = assess(&paused, Status::Degraded, &Lifecycle::default());
        assert_eq!(
            (a.status, a.running, a.planned, a.detail.as_str()),
            (Status::Down, false, true, "container paused")
        );
    }

    #[test]
    fn containers_sharing_a_name_make_one_status() {
        let part = |status, running| Assessment {
            status,
            running,
            detail: format!("{status}"),
            planned: false,
        };
        assert_eq!(
            combine(&[part(Status::Down, false)]),
            part(Status::Down, false)
        );
        let all = combine(&[part(Status::Normal, true), part(Status::Normal, true)]);
        assert_eq!(
            (all.status, all.detail.as_str()),
            (Status::Normal, "2 of 2 containers healthy")
        );
        let some = combine(&[
            part(Status::Normal, true),
            part(Status::Down, false),
            part(Status::Degraded, true),
        ]);
        assert_eq!((some.status, some.running), (Status::Degraded, true));
        assert_eq!(some.detail, "1 of 3 containers healthy");
        let none = combine(&[part(Status::Down, false), part(Status::Down, false)]);
        assert_eq!(
            (none.status, none.running, none.planned),
            (Status::Down, false, false)
        );
        assert!(none.detail.starts_with("none of 2 containers running"));
        let stopped = Assessment {
            planned: true,
            ..part(Status::Down, false)
        };
        assert!(combine(&[stopped.clone(), stopped.clone()]).planned);
        assert!(!combine(&[stopped, part(Status::Down, false)]).planned);
    }
}
