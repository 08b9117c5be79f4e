//! From what the engine says about a container to a status. Pure: the engine's
//! view is taken as it stands (a dead container is `down` at once; `unhealthy`
//! already includes the engine's own retries).

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use elkservice_core::Status;

/// What matters of a container's inspect output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerView {
    pub state: String,
    pub running: bool,
    pub restarting: bool,
    /// `starting`, `healthy`, `unhealthy`, or empty when there is no healthcheck.
    pub health: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
}

impl From<&ContainerInspectResponse> for ContainerView {
    fn from(c: &ContainerInspectResponse) -> Self {
        let state = c.state.clone().unwrap_or_default();
        let health = state
            .health
            .as_ref()
            .and_then(|h| h.status)
            .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE))
            .map(|s| s.to_string())
            .unwrap_or_default();
        ContainerView {
            state: state
                .status
                .unwrap_or(ContainerStateStatusEnum::EMPTY)
                .to_string(),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            health,
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: c.restart_count.unwrap_or(0),
        }
    }
}

/// The status, `running`, and a detail that keeps exit code, OOM and restarts.
pub fn assess(c: &ContainerView, unhealthy_is_down: bool) -> (Status, bool, String) {
    let status = if c.restarting || c.state == "restarting" {
        Status::Degraded
    } else if c.running {
        match c.health.as_str() {
            "starting" => Status::Starting,
            "unhealthy" if unhealthy_is_down => Status::Down,
            "unhealthy" => Status::Degraded,
            _ => Status::Normal,
        }
    } else {
        Status::Down
    };
    let mut detail = vec![format!(
        "container {}",
        if c.state.is_empty() {
            "unknown"
        } else {
            &c.state
        }
    )];
    if !c.health.is_empty() {
        detail.push(c.health.clone());
    }
    if !c.running {
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
    (status, c.running, detail.join(", "))
}

/// One status for a service whose name several containers claim (replicas, or
/// a container started twice with the same label): all running and healthy is
/// `normal`; none running is `down`; anything between is `degraded`, with a
/// detail that says how many of how many are healthy. One container is
/// reported as it is. Claims are taken as they come: whoever can start a
/// labelled container on a watched host speaks for that name.
pub fn combine(parts: &[(Status, bool, String)]) -> (Status, bool, String) {
    match parts {
        [] => (Status::Unknown, false, "no container".into()),
        [one] => one.clone(),
        _ => {
            let n = parts.len();
            let healthy = parts.iter().filter(|p| p.0 == Status::Normal).count();
            let running = parts.iter().filter(|p| p.1).count();
            if healthy == n {
                (
                    Status::Normal,
                    true,
                    format!("{n} of {n} containers healthy"),
                )
            } else if running == 0 {
                let first = &parts[0].2;
                (
                    Status::Down,
                    false,
                    format!("none of {n} containers running ({first})"),
                )
            } else {
                (
                    Status::Degraded,
                    true,
                    format!("{healthy} of {n} containers healthy"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: &str, running: bool, health: &str) -> ContainerView {
        ContainerView {
            state: state.into(),
            running,
            health: health.into(),
            ..Default::default()
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
            (view("created", false, ""), Status::Down),
        ];
        for (v, want) in cases {
            assert_eq!(assess(&v, false).0, want, "{v:?}");
        }
        assert_eq!(
            assess(&view("running", true, "unhealthy"), true).0,
            Status::Down
        );
    }

    #[test]
    fn detail_keeps_exit_code_oom_and_restarts() {
        let v = ContainerView {
            exit_code: Some(137),
            oom_killed: true,
            restart_count: 2,
            ..view("exited", false, "")
        };
        assert_eq!(
            assess(&v, false).2,
            "container exited, exit code 137, OOM killed, restarts 2"
        );
        assert_eq!(
            assess(&view("running", true, "healthy"), false).2,
            "container running, healthy"
        );
    }

    #[test]
    fn containers_sharing_a_name_make_one_status() {
        let part = |status, running| (status, running, format!("{status}"));
        assert_eq!(
            combine(&[part(Status::Down, false)]),
            part(Status::Down, false)
        );
        let all = combine(&[part(Status::Normal, true), part(Status::Normal, true)]);
        assert_eq!(
            (all.0, all.2.as_str()),
            (Status::Normal, "2 of 2 containers healthy")
        );
        let some = combine(&[
            part(Status::Normal, true),
            part(Status::Down, false),
            part(Status::Degraded, true),
        ]);
        assert_eq!((some.0, some.1), (Status::Degraded, true));
        assert_eq!(some.2, "1 of 3 containers healthy");
        let none = combine(&[part(Status::Down, false), part(Status::Down, false)]);
        assert_eq!((none.0, none.1), (Status::Down, false));
        assert!(none.2.starts_with("none of 2 containers running"));
    }
}
