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
}
