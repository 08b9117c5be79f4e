//! Configuration loading shared by the programs: built-in defaults, then an
//! optional TOML file, then `ELK_<SECTION>__<KEY>` variables, then the usual
//! well-known variables (`DATABASE_URL`, …) for the sections a program has.

use config::Source;
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
///
/// `T` denies unknown fields, so a section of the file that the program does
/// not have (a typo, or another program's) is an error naming it. The
/// environment is another matter: it is often shared by several programs, so
/// an `ELK_<SECTION>__<KEY>` variable counts only where `<SECTION>` is one of
/// the sections in `defaults`, and the others are left to their programs.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    well_known: &[(&str, &str)],
) -> Result<T, ConfigError> {
    // A variable that is not Unicode is no setting of ours; `vars` would panic.
    let env = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    load_from(defaults, file, well_known, env)
}

fn load_from<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    well_known: &[(&str, &str)],
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let defaults = config::File::from_str(defaults, config::FileFormat::Toml);
    let sections = defaults.collect()?;
    let env: Vec<(String, String)> = env.into_iter().collect();
    let ours: config::Map<String, String> = env
        .iter()
        .filter(|(name, _)| {
            let name = name.to_lowercase();
            name.strip_prefix("elk_")
                .and_then(|rest| rest.split_once("__"))
                .is_some_and(|(section, _)| sections.contains_key(section))
        })
        .cloned()
        .collect();
    let mut builder = config::Config::builder().add_source(defaults);
    if let Some(path) = file {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("ELK")
            .prefix_separator("_")
            .separator("__")
            .source(Some(ours)),
    );
    for (var, key) in well_known {
        if let Some((_, value)) = env.iter().find(|(name, _)| name == var) {
            builder = builder.set_override(*key, value.as_str())?;
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
#[serde(try_from = "String")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl TryFrom<String> for LogFormat {
    type Error = String;

    fn try_from(word: String) -> Result<Self, String> {
        one_of(
            &[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)],
            &word,
        )
    }
}

/// The value a setting that takes one of a few `words` stands for. Such a
/// setting reads a string through this rather than serde's derive for enums,
/// for which the config crate would say "enum LogFormat does not have variant
/// constructor text": this names the words instead.
pub fn one_of<T: Copy>(words: &[(&str, T)], word: &str) -> Result<T, String> {
    match words.iter().find(|(w, _)| *w == word) {
        Some(&(_, value)) => Ok(value),
        None => {
            let names: Vec<String> = words.iter().map(|(w, _)| format!("\"{w}\"")).collect();
            Err(format!("must be {}, got {word:?}", names.join(" or ")))
        }
    }
}

impl LogSettings {
    pub const DEFAULTS: &'static str = r#"
[log]
format = "json"
"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Program {
        database: DatabaseSettings,
        log: LogSettings,
    }

    fn load_with(file: Option<&str>, env: &[(&str, &str)]) -> Result<Program, ConfigError> {
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("elk-config-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("program.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let defaults = [DatabaseSettings::DEFAULTS, LogSettings::DEFAULTS].concat();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let loaded = load_from(
            &defaults,
            file.map(|_| path.as_path()),
            &[DATABASE_URL],
            env,
        );
        std::fs::remove_dir_all(dir).unwrap();
        loaded
    }

    #[test]
    fn a_section_the_program_does_not_have_is_an_error_in_the_file() {
        let err = load_with(Some("[databse]\nmax_connections = 3\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("unknown field `databse`"), "{err}");
        let s = load_with(Some("[database]\nmax_connections = 3\n"), &[]).unwrap();
        assert_eq!(s.database.max_connections, 3);
    }

    #[test]
    fn only_this_programs_sections_are_read_from_the_environment() {
        let s = load_with(
            None,
            &[
                // Another program's, and one that names no section at all.
                ("ELK_WRITER__MAX_BATCH", "5"),
                ("ELK_DOCKERD_HOST", "unix:///run/elk-docker.sock"),
                ("ELK_DATABASE__MAX_CONNECTIONS", "4"),
                ("DATABASE_URL", "mysql://u@db:3306/x"),
            ],
        )
        .unwrap();
        assert_eq!(s.database.max_connections, 4);
        assert_eq!(s.database.url, "mysql://u@db:3306/x");
        // Within its sections, the keys are still checked.
        let err = load_with(None, &[("ELK_DATABASE__MAX_CONECTIONS", "4")]).unwrap_err();
        assert!(err.to_string().contains("max_conections"), "{err}");
    }

    #[test]
    fn a_word_setting_names_the_words_it_takes() {
        let s = load_with(Some("[log]\nformat = \"pretty\"\n"), &[]).unwrap();
        assert_eq!(s.log.format, LogFormat::Pretty);
        let err = load_with(None, &[("ELK_LOG__FORMAT", "text")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"must be "json" or "pretty", got "text" for key `log.format`"#
        );
    }
}
