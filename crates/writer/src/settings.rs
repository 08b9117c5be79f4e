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
        if usize::from(s.writer.prefetch) < s.writer.max_batch {
            return Err(ConfigError::Message(
                "writer.prefetch must be at least writer.max_batch".into(),
            ));
        }
        Ok(s)
    }
}
