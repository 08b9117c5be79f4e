//! The writer's settings: `[writer]`, `[amqp]`, `[database]` and `[log]`.

use crate::apply::Counting;
use crate::quorum::Rule;
use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{self, ConfigError, DatabaseSettings, LogSettings};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub writer: WriterSettings,
    pub selfcheck: SelfcheckSettings,
    pub amqp: AmqpSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterSettings {
    /// Address of the `/healthz` and `/metrics` listener; port 0 picks one.
    pub listen: SocketAddr,
    /// Create a row for a service that has none; otherwise its events are dead-lettered.
    pub auto_register: bool,
    /// Most events applied in one transaction.
    pub max_batch: usize,
    /// While the queue is busy, how long a batch may wait to fill (milliseconds).
    /// A lone event is never delayed.
    pub linger_ms: u64,
    /// Unacknowledged deliveries the broker may send ahead: at least `max_batch`;
    /// twice that lets a whole batch gather while the previous one commits.
    pub prefetch: u16,
    /// A service fed by a watcher that has sent nothing about it for this long
    /// becomes `unknown` (0: never).
    pub stale_after_secs: u64,
    /// How many of the watchers reporting a service must agree:
    /// `"majority"`, `"any"`, `"all"` or a number.
    pub quorum: Rule,
    /// A watcher's vote on a service unrefreshed for this long is deleted, and
    /// the watcher leaves that service's quorum (0: never).
    pub forget_watcher_secs: u64,
}

/// The dead man's switch: `ping_url` is fetched every `interval_secs`, but
/// only when a selfcheck this writer published to the broker was applied in
/// the database within `deadline_secs`. An outside monitor that expects the
/// ping pages someone when elkservice itself is broken.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfcheckSettings {
    /// Where to ping (`http://` or `https://`); empty: no selfcheck.
    pub ping_url: String,
    pub interval_secs: u64,
    pub deadline_secs: u64,
}

impl WriterSettings {
    /// How this writer counts votes.
    pub fn counting(&self) -> Counting {
        Counting {
            rule: self.quorum,
            stale_after_ns: (self.stale_after_secs > 0)
                .then(|| self.stale_after_secs as i64 * 1_000_000_000),
        }
    }
}

/// A year: longer would mean off, which 0 says plainly.
const MAX_STALE_AFTER_SECS: u64 = 365 * 24 * 3600;

const WRITER_DEFAULTS: &str = r#"
[writer]
listen = "127.0.0.1:9187"
auto_register = true
max_batch = 2000
linger_ms = 100
prefetch = 4000
stale_after_secs = 90
quorum = "majority"
forget_watcher_secs = 3600

[selfcheck]
ping_url = ""
interval_secs = 60
deadline_secs = 30
"#;

impl Settings {
    /// Defaults < `file` < `ELK_*` variables < `DATABASE_URL`, `AMQP_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = [
            WRITER_DEFAULTS,
            AmqpSettings::DEFAULTS,
            DatabaseSettings::DEFAULTS,
            LogSettings::DEFAULTS,
        ]
        .concat();
        let s: Settings = config::load(&defaults, file, &[config::DATABASE_URL, config::AMQP_URL])?;
        if s.writer.max_batch == 0 {
            return Err(ConfigError::Message(
                "writer.max_batch must be at least 1".into(),
            ));
        }
        if s.writer.stale_after_secs > MAX_STALE_AFTER_SECS {
            return Err(ConfigError::Message(format!(
                "writer.stale_after_secs may be at most {MAX_STALE_AFTER_SECS} (0 turns it off)"
            )));
        }
        if s.writer.forget_watcher_secs > MAX_STALE_AFTER_SECS {
            return Err(ConfigError::Message(format!(
                "writer.forget_watcher_secs may be at most {MAX_STALE_AFTER_SECS} (0 turns it off)"
            )));
        }
        let c = &s.selfcheck;
        if !c.ping_url.is_empty() {
            let url = reqwest::Url::parse(&c.ping_url).map_err(|e| {
                ConfigError::Message(format!("selfcheck.ping_url {:?}: {e}", c.ping_url))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::Message(format!(
                    "selfcheck.ping_url must be http:// or https://, not {:?}",
                    c.ping_url
                )));
            }
            if c.interval_secs == 0 || c.deadline_secs == 0 {
                return Err(ConfigError::Message(
                    "selfcheck.interval_secs and deadline_secs must be at least 1".into(),
                ));
            }
        }
        if usize::from(s.writer.prefetch) < s.writer.max_batch {
            return Err(ConfigError::Message(
                "writer.prefetch must be at least writer.max_batch".into(),
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Settings, ConfigError> {
        let file = std::env::temp_dir().join(format!(
            "elkservice-writer-settings-{}-{}.toml",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&file, toml).unwrap();
        let loaded = Settings::load(Some(&file));
        std::fs::remove_file(&file).unwrap();
        loaded
    }

    #[test]
    fn a_selfcheck_needs_an_http_url_and_whole_seconds() {
        let s = load("[selfcheck]\nping_url = \"https://hc.example/ping/1\"\n").unwrap();
        assert_eq!(
            (s.selfcheck.interval_secs, s.selfcheck.deadline_secs),
            (60, 30)
        );
        for (toml, says) in [
            ("ping_url = \"ftp://hc.example/1\"", "http:// or https://"),
            ("ping_url = \"not a url\"", "selfcheck.ping_url"),
            (
                "ping_url = \"http://hc.example/1\"\ninterval_secs = 0",
                "at least 1",
            ),
        ] {
            let e = load(&format!("[selfcheck]\n{toml}\n")).unwrap_err();
            assert!(e.to_string().contains(says), "{toml}: {e}");
        }
        // Off, whatever the numbers.
        assert!(load("[selfcheck]\ninterval_secs = 0\n").is_ok());
    }
}
