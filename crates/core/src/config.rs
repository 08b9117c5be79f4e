//! Configuration loading shared by the programs: built-in defaults, then an
//! optional TOML file, then `ELK_<SECTION>__<KEY>` variables, then the usual
//! well-known variables (`DATABASE_URL`, …) for the sections a program has.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

pub use config::ConfigError;

/// Well-known variables and the key each one sets, for programs that have that key.
pub const DATABASE_URL: (&str, &str) = ("DATABASE_URL", "database.url");
pub const AMQP_URL: (&str, &str) = ("AMQP_URL", "amqp.url");
pub const DOCKER_HOST: (&str, &str) = ("DOCKER_HOST", "docker.host");

/// Load settings of type `T`. `defaults` is TOML holding every key's default,
/// `well_known` the variables that this program honours directly.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    well_known: &[(&str, &str)],
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("ELK")
            .prefix_separator("_")
            .separator("__"),
    );
    for (var, key) in well_known {
        if let Ok(value) = std::env::var(var) {
            builder = builder.set_override(*key, value)?;
        }
    }
    builder.build()?.try_deserialize()
}

/// Deserialise TOML text alone (no file, no environment).
pub fn load_str<T: DeserializeOwned>(toml: &str) -> Result<T, ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()?
        .try_deserialize()
}

/// `[database]`: where MySQL/MariaDB is and how many connections to keep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `mysql://user:password@host:port/database`; the database is created if missing.
    pub url: String,
    pub max_connections: u32,
    /// Seconds to wait for a free connection (and for the first connection at start).
    pub acquire_timeout_secs: u64,
}

impl DatabaseSettings {
    pub const DEFAULTS: &'static str = r#"
[database]
url = "mysql://root@127.0.0.1:3306/elkservice"
max_connections = 10
acquire_timeout_secs = 5
"#;
}

/// `[log]`: `format = "json"` (one JSON object per line, ready for Logstash) or `"pretty"`.
/// The level comes from `RUST_LOG` (default `info`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogSettings {
    pub const DEFAULTS: &'static str = r#"
[log]
format = "json"
"#;
}
