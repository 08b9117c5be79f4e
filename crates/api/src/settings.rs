//! The API's settings: `[api]`, `[database]` and `[log]`.

use crate::keys::KeyRing;
use elkservice_core::config::{self, ConfigError, DatabaseSettings, LogSettings};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub api: ApiSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// SHA-256 digests (lowercase hex) of the accepted API keys, as a
    /// comma-separated string or a TOML list. Never the keys themselves.
    pub keys: KeyRing,
    /// Require a key for reads too (writes always need one).
    pub auth_reads: bool,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Days the change feed keeps its entries (at least 1).
    pub feed_retention_days: u32,
    /// Reads are answered from this process's memory while it is at most
    /// this far behind the database (see `model`); 0 sends every read to
    /// the database.
    pub read_model_max_lag_ms: u64,
    /// A change made to the table outside elkservice (plain SQL, a restore)
    /// is in the feed, and so in every read, within this many seconds.
    pub external_change_secs: u64,
    /// PEM files of the certificate chain and its private key: both set,
    /// the api speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

const API_DEFAULTS: &str = r#"
[api]
listen = "127.0.0.1:8080"
keys = ""
auth_reads = false
shutdown_timeout_secs = 30
feed_retention_days = 30
read_model_max_lag_ms = 1000
external_change_secs = 2
"#;

impl Settings {
    /// Defaults < `file` < `ELK_*` variables < `DATABASE_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = [
            API_DEFAULTS,
            DatabaseSettings::DEFAULTS,
            LogSettings::DEFAULTS,
        ]
        .concat();
        let s: Settings = config::load(&defaults, file, &[config::DATABASE_URL])?;
        if !(1..=3650).contains(&s.api.feed_retention_days) {
            return Err(ConfigError::Message(
                "api.feed_retention_days must be from 1 to 3650".into(),
            ));
        }
        if s.api.read_model_max_lag_ms > 60_000 {
            return Err(ConfigError::Message(
                "api.read_model_max_lag_ms must be from 0 (off) to 60000".into(),
            ));
        }
        if !(1..=3600).contains(&s.api.external_change_secs) {
            return Err(ConfigError::Message(
                "api.external_change_secs must be from 1 to 3600".into(),
            ));
        }
        if s.api.tls_cert.is_some() != s.api.tls_key.is_some() {
            return Err(ConfigError::Message(
                "api.tls_cert and api.tls_key go together: set both for HTTPS, or neither".into(),
            ));
        }
        Ok(s)
    }
}
