//! The watcher's settings: `[watcher]`, `[docker]`, `[amqp]` and `[log]`.

use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{self, ConfigError, LogSettings};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub watcher: WatcherSettings,
    pub docker: DockerSettings,
    pub amqp: AmqpSettings,
    pub log: LogSettings,
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
    /// Full list-and-inspect, as a safety net under the event stream.
    pub poll_interval_secs: u64,
    /// A stream silent this long is resubscribed.
    pub idle_watchdog_secs: u64,
    /// Publish every service again this often, so lost messages heal.
    pub resync_interval_secs: u64,
    /// Report a running but unhealthy container as `down` instead of `degraded`.
    pub unhealthy_is_down: bool,
}

impl WatcherSettings {
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
poll_interval_secs = 30
idle_watchdog_secs = 60
resync_interval_secs = 300
unhealthy_is_down = false

[docker]
host = "unix:///var/run/docker.sock"
"#;

impl Settings {
    /// Defaults < `file` < `ELK_*` variables < `DOCKER_HOST`, `AMQP_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = [DEFAULTS, AmqpSettings::DEFAULTS, LogSettings::DEFAULTS].concat();
        let s: Settings = config::load(&defaults, file, &[config::DOCKER_HOST, config::AMQP_URL])?;
        for (key, v) in [
            ("watcher.poll_interval_secs", s.watcher.poll_interval_secs),
            ("watcher.idle_watchdog_secs", s.watcher.idle_watchdog_secs),
            (
                "watcher.resync_interval_secs",
                s.watcher.resync_interval_secs,
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Message(format!("{key} must be at least 1")));
            }
        }
        Ok(s)
    }
}
