//! The watcher's settings: `[watcher]`, `[docker]`, `[amqp]` and `[log]`.

use crate::probe::{Check, HttpCheck};
use crate::tracker::Thresholds;
use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{self, ConfigError, LogSettings};
use elkservice_core::{ServiceName, Status};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub watcher: WatcherSettings,
    pub docker: DockerSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
    /// Services listed explicitly: `[[services]]` tables.
    #[serde(default)]
    pub services: Vec<ServiceSettings>,
}

/// A service the watcher finds by container name, or probes itself.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub name: ServiceName,
    /// Watch this container (by its name) through the engine.
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub http: Option<HttpCheck>,
    /// `host:port` to connect to.
    #[serde(default)]
    pub tcp: Option<String>,
    #[serde(default = "defaults::interval")]
    pub interval_secs: f64,
    #[serde(default = "defaults::timeout")]
    pub timeout_secs: f64,
    #[serde(default = "defaults::fall")]
    pub fall: u32,
    #[serde(default = "defaults::rise")]
    pub rise: u32,
    #[serde(default = "defaults::start_grace")]
    pub start_grace_secs: f64,
}

mod defaults {
    pub fn interval() -> f64 {
        10.0
    }
    pub fn timeout() -> f64 {
        3.0
    }
    pub fn fall() -> u32 {
        3
    }
    pub fn rise() -> u32 {
        2
    }
    pub fn start_grace() -> f64 {
        30.0
    }
}

impl ServiceSettings {
    /// The probe, for services the watcher probes itself.
    pub fn check(&self) -> Option<Check> {
        match (&self.http, &self.tcp) {
            (Some(h), _) => Some(Check::Http(h.clone())),
            (_, Some(t)) => Some(Check::Tcp(t.clone())),
            _ => None,
        }
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            fall: self.fall,
            rise: self.rise,
            start_grace: Duration::from_secs_f64(self.start_grace_secs),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let kinds = [
            self.container.is_some(),
            self.http.is_some(),
            self.tcp.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("give exactly one of container, http, tcp".into());
        }
        // Finite too: a Duration cannot hold infinity, and a probe that never runs is no probe.
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(positive(self.interval_secs) && positive(self.timeout_secs)) {
            return Err(
                "interval_secs and timeout_secs must be positive numbers of seconds".into(),
            );
        }
        if self.timeout_secs >= self.interval_secs {
            return Err("timeout_secs must be shorter than interval_secs".into());
        }
        if self.fall == 0 || self.rise == 0 {
            return Err("fall and rise must be at least 1".into());
        }
        if !(self.start_grace_secs >= 0.0 && self.start_grace_secs.is_finite()) {
            return Err("start_grace_secs must be zero or more".into());
        }
        if let Some(h) = &self.http {
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                return Err(format!(
                    "http.url {:?} must start with http:// or https://",
                    h.url
                ));
            }
            h.client(&reqwest::Client::new())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherSettings {
    /// Goes into every event; empty means the host name.
    pub id: String,
    /// Address of the `/healthz` and `/metrics` listener; port 0 picks one.
    pub listen: SocketAddr,
    /// The container label that names a service.
    pub label: String,
    /// Follow the engine's event stream (else rely on polling alone).
    pub events: bool,
    /// Full list-and-inspect, as a safety net under the event stream.
    pub poll_interval_secs: f64,
    /// A stream silent this long is resubscribed.
    pub idle_watchdog_secs: u64,
    /// Publish every service again this often, so lost messages heal.
    pub resync_interval_secs: u64,
    /// Publish every service again, observed now, at least this often, so the
    /// writer can tell a live watcher from a silent one (`LastCheckedAt` moves).
    pub heartbeat_secs: u64,
    /// Report a running but unhealthy container as `down` instead of `degraded`.
    pub unhealthy_is_down: bool,
}

impl WatcherSettings {
    /// What a running but unhealthy container counts as.
    pub fn unhealthy(&self) -> Status {
        if self.unhealthy_is_down {
            Status::Down
        } else {
            Status::Degraded
        }
    }

    pub fn id(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "watcher".into())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSettings {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
}

const DEFAULTS: &str = r#"
[watcher]
id = ""
listen = "127.0.0.1:9188"
label = "elkservice.name"
events = true
poll_interval_secs = 30
idle_watchdog_secs = 60
resync_interval_secs = 300
heartbeat_secs = 30
unhealthy_is_down = false

[docker]
host = "unix:///var/run/docker.sock"
"#;

impl Settings {
    /// Defaults < `file` < `ELK_*` variables < `DOCKER_HOST`, `AMQP_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = [DEFAULTS, AmqpSettings::DEFAULTS, LogSettings::DEFAULTS].concat();
        let s: Settings = config::load(&defaults, file, &[config::DOCKER_HOST, config::AMQP_URL])?;
        let mut names = std::collections::HashSet::new();
        for (i, svc) in s.services.iter().enumerate() {
            svc.validate()
                .map_err(|e| ConfigError::Message(format!("services[{i}] ({}): {e}", svc.name)))?;
            if !names.insert(&svc.name) {
                return Err(ConfigError::Message(format!(
                    "services[{i}]: {} is listed twice",
                    svc.name
                )));
            }
        }
        if !(s.watcher.poll_interval_secs > 0.0 && s.watcher.poll_interval_secs.is_finite()) {
            return Err(ConfigError::Message(
                "watcher.poll_interval_secs must be positive".into(),
            ));
        }
        for (key, v) in [
            ("watcher.idle_watchdog_secs", s.watcher.idle_watchdog_secs),
            (
                "watcher.resync_interval_secs",
                s.watcher.resync_interval_secs,
            ),
            ("watcher.heartbeat_secs", s.watcher.heartbeat_secs),
        ] {
            if v == 0 {
                return Err(ConfigError::Message(format!("{key} must be at least 1")));
            }
        }
        Ok(s)
    }
}
