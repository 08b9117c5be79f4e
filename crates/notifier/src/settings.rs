//! The notifier's settings: `[notifier]` with its `[[notifier.webhooks]]`,
//! `[database]` and `[log]`.

use elkservice_core::config::{self, ConfigError, DatabaseSettings, LogSettings};
use elkservice_core::glob::Glob;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub notifier: NotifierSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    /// `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    /// How often the feed and the outbox are read.
    pub poll_ms: u64,
    /// Attempts per notification before it is recorded as failed.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `retry_max_secs`.
    pub retry_initial_ms: u64,
    pub retry_max_secs: u64,
    /// Seconds a delivery may take.
    pub timeout_secs: u64,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// `[[notifier.webhooks]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub format: Format,
    /// Which services, by name.
    #[serde(default = "everything")]
    pub services: Glob,
    /// Notify a problem only once it has lasted this long.
    #[serde(default)]
    pub min_down_secs: u32,
    /// `degraded` is a problem too (else only `down` is).
    #[serde(default)]
    pub degraded: bool,
    /// More beginnings and ends of problems than this within
    /// `flap_window_secs` is flapping (0: never).
    #[serde(default = "flap_max_changes")]
    pub flap_max_changes: u32,
    #[serde(default = "flap_window_secs")]
    pub flap_window_secs: u32,
    /// Sign every delivery per the Standard Webhooks spec: `whsec_` and the
    /// base64 of 24 to 64 random bytes, shared with the receiver.
    #[serde(default)]
    pub secret: Option<String>,
    /// `format = "pagerduty"`: the integration key of the PagerDuty service
    /// the events go to.
    #[serde(default)]
    pub routing_key: Option<String>,
}

fn flap_max_changes() -> u32 {
    2
}

fn flap_window_secs() -> u32 {
    600
}

fn everything() -> Glob {
    Glob::parse("*").expect("a glob")
}

impl Webhook {
    /// What the outbox knows the webhook by: its URL, hashed (a URL may hold
    /// a secret, and is too long for a key).
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.url.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where deliveries are POSTed: the URL, except for ntfy, whose JSON
    /// publishing goes to the server's root (the topic is in the body).
    pub fn delivery_url(&self) -> String {
        let ntfy = self.format == Format::Ntfy;
        match reqwest::Url::parse(&self.url) {
            Ok(mut url) if ntfy => {
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.pop().push("");
                }
                url.to_string()
            }
            _ => self.url.clone(),
        }
    }

    /// ntfy's topic: the URL's last path segment (`https://ntfy.sh/alerts`).
    pub fn ntfy_topic(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.url).ok()?;
        let topic = url.path_segments()?.next_back()?;
        (!topic.is_empty()).then(|| topic.to_owned())
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(try_from = "String")]
pub enum Format {
    /// The feed entry, with `Notification` (its kind) and `Summary`.
    #[default]
    Json,
    /// Slack's incoming-webhook body: `{"text": …}`.
    Slack,
    /// A Discord webhook's message: `{"content": …}`.
    Discord,
    /// A Microsoft Teams workflow's message, with an Adaptive Card.
    Teams,
    /// ntfy's JSON publishing: `{"topic", "title", "message", "priority", "tags"}`.
    Ntfy,
    /// PagerDuty's Events API v2, with the webhook's `routing_key`.
    Pagerduty,
}

impl TryFrom<String> for Format {
    type Error = String;

    fn try_from(word: String) -> Result<Self, String> {
        config::one_of(
            &[
                ("json", Format::Json),
                ("slack", Format::Slack),
                ("discord", Format::Discord),
                ("teams", Format::Teams),
                ("ntfy", Format::Ntfy),
                ("pagerduty", Format::Pagerduty),
            ],
            &word,
        )
    }
}

const DEFAULTS: &str = r#"
[notifier]
listen = "127.0.0.1:9189"
poll_ms = 100
max_attempts = 8
retry_initial_ms = 500
retry_max_secs = 60
timeout_secs = 10
"#;

impl Settings {
    /// Defaults < `file` < `ELK_*` variables < `DATABASE_URL`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let defaults = [DEFAULTS, DatabaseSettings::DEFAULTS, LogSettings::DEFAULTS].concat();
        let s: Settings = config::load(&defaults, file, &[config::DATABASE_URL])?;
        s.validate().map_err(ConfigError::Message)?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        let n = &self.notifier;
        if n.poll_ms == 0 || n.max_attempts == 0 || n.timeout_secs == 0 || n.retry_max_secs == 0 {
            return Err(
                "notifier.poll_ms, max_attempts, timeout_secs and retry_max_secs must be at least 1"
                    .into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        for (i, w) in n.webhooks.iter().enumerate() {
            let url = reqwest::Url::parse(&w.url)
                .map_err(|e| format!("notifier.webhooks[{i}].url {:?}: {e}", w.url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "notifier.webhooks[{i}].url {:?} must be http:// or https://",
                    w.url
                ));
            }
            match w.format {
                Format::Pagerduty if w.routing_key.as_deref().is_none_or(str::is_empty) => {
                    return Err(format!(
                        "notifier.webhooks[{i}]: format \"pagerduty\" needs routing_key (the \
                         integration key of the PagerDuty service)"
                    ));
                }
                Format::Ntfy if w.ntfy_topic().is_none() => {
                    return Err(format!(
                        "notifier.webhooks[{i}].url {:?} must name the ntfy topic \
                         (https://ntfy.sh/<topic>)",
                        w.url
                    ));
                }
                _ => {}
            }
            if let Some(secret) = &w.secret {
                // The base64 of 24 bytes is 32 characters.
                let key = secret.strip_prefix("whsec_").unwrap_or(secret);
                if key.len() < 32 || standardwebhooks::Webhook::new(secret).is_err() {
                    return Err(format!(
                        "notifier.webhooks[{i}].secret must be whsec_ and the base64 of 24 to 64 \
                         random bytes (e.g. `echo whsec_$(head -c 32 /dev/urandom | base64)`)"
                    ));
                }
            }
            if !ids.insert(w.id()) {
                return Err(format!("notifier.webhooks[{i}]: {} is listed twice", w.url));
            }
        }
        Ok(())
    }
}
