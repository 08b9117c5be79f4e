//! The watcher's own probes: HTTP (status code, JSON conditions, presets for
//! Elasticsearch `_cluster/health` and Kibana `/api/status`) and TCP connect.
//! Each configured service runs its probe on its own interval, starting after a
//! random jitter so probes do not all fire together, and feeds a [`Tracker`].

use crate::metrics::Metrics;
use crate::observation::Observation;
use crate::tracker::{ProbeResult, Thresholds, Tracker};
use elkservice_core::shutdown::stopping;
use elkservice_core::{ServiceName, Status};
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// `http = { url = "…", preset = "elasticsearch" }` in a service's config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    /// Reads the answer the way the service means it.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Conditions on the JSON body, all of which must hold.
    #[serde(default)]
    pub json: Vec<JsonCondition>,
    /// PEM file of the authorities that an `https://` server's certificate
    /// may chain to, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a self-signed test cluster): logged as a warning.
    #[serde(default)]
    pub insecure: bool,
}

impl HttpCheck {
    /// The client for this probe: `shared`, unless it needs TLS settings of
    /// its own. Errors say what is wrong with `ca_file`.
    pub fn client(&self, shared: &reqwest::Client) -> Result<reqwest::Client, String> {
        if self.ca_file.is_none() && !self.insecure {
            return Ok(shared.clone());
        }
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &self.ca_file {
            let pem =
                std::fs::read(path).map_err(|e| format!("http.ca_file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("http.ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "http.ca_file {}: no certificate in it",
                    path.display()
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        if self.insecure {
            tracing::warn!(url = %self.url, "http.insecure: this probe accepts any certificate");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder.build().map_err(|e| format!("http: {e}"))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `_cluster/health`: green is healthy, yellow degraded, red failed.
    Elasticsearch,
    /// `/api/status`: `status.overall.level` (8.x) or `status.overall.state` (7.x).
    Kibana,
}

/// `{ path = "status.overall.level", equals = "available" }`: a dotted path into the body.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonCondition {
    pub path: String,
    pub equals: Value,
}

fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |v, key| v.get(key))
}

fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Read a preset's answer.
pub fn read_preset(preset: Preset, body: &Value) -> ProbeResult {
    let word = match preset {
        Preset::Elasticsearch => lookup(body, "status"),
        Preset::Kibana => {
            lookup(body, "status.overall.level").or_else(|| lookup(body, "status.overall.state"))
        }
    }
    .and_then(Value::as_str)
    .unwrap_or("");
    match word {
        "green" | "available" => ProbeResult::Healthy(word.to_owned()),
        "yellow" | "degraded" => ProbeResult::Degraded(word.to_owned()),
        "" => ProbeResult::Failed("no status in the answer".into()),
        other => ProbeResult::Failed(other.to_owned()),
    }
}

pub async fn http(client: &reqwest::Client, check: &HttpCheck, timeout: Duration) -> ProbeResult {
    let res = match client.get(&check.url).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return ProbeResult::Failed(format!("no answer within {} ms", timeout.as_millis()))
        }
        // With its causes: "error sending request" alone does not say that
        // the certificate was refused, or the connection.
        Err(e) => return ProbeResult::Failed(with_causes(&e)),
    };
    let code = res.status().as_u16();
    let accepted = if check.expect_status.is_empty() {
        (200..300).contains(&code)
    } else {
        check.expect_status.contains(&code)
    };
    if !accepted {
        return ProbeResult::Failed(format!("HTTP {code}"));
    }
    if check.preset.is_none() && check.json.is_empty() {
        return ProbeResult::Healthy(format!("HTTP {code}"));
    }
    let body: Value = match res.json().await {
        Ok(v) => v,
        Err(e) => return ProbeResult::Failed(format!("HTTP {code}, body is not JSON: {e}")),
    };
    for c in &check.json {
        match lookup(&body, &c.path) {
            Some(v) if *v == c.equals => {}
            found => {
                return ProbeResult::Failed(format!(
                    "{} is {}, expected {}",
                    c.path,
                    found.map_or("missing".into(), Value::to_string),
                    c.equals
                ))
            }
        }
    }
    match check.preset {
        Some(p) => read_preset(p, &body),
        None => ProbeResult::Healthy(format!("HTTP {code}")),
    }
}

pub async fn tcp(address: &str, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => ProbeResult::Healthy(format!("{address} accepts connections")),
        Ok(Err(e)) => ProbeResult::Failed(format!("{address}: {e}")),
        Err(_) => ProbeResult::Failed(format!(
            "{address}: no connection within {} ms",
            timeout.as_millis()
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http(HttpCheck),
    Tcp(String),
}

/// One configured service probed by the watcher itself.
pub struct ProbedService {
    pub name: ServiceName,
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    pub thresholds: Thresholds,
    pub metrics: Metrics,
}

impl ProbedService {
    pub async fn run(
        self,
        client: reqwest::Client,
        tx: mpsc::Sender<Observation>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tracker = Tracker::new(self.thresholds, Instant::now());
        let _ = tx
            .send(Observation::now(
                self.name.clone(),
                Status::Starting,
                false,
                "start grace".into(),
            ))
            .await;
        let jitter = self.interval.mul_f64(rand::rng().random::<f64>());
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + jitter, self.interval);
        loop {
            tokio::select! {
                _ = stopping(&mut shutdown) => return,
                _ = ticker.tick() => {}
            }
            let result = match &self.check {
                Check::Http(c) => http(&client, c, self.timeout).await,
                Check::Tcp(a) => tcp(a, self.timeout).await,
            };
            self.metrics.probes.inc();
            if matches!(result, ProbeResult::Failed(_)) {
                self.metrics.probe_failures.inc();
            }
            let status = tracker.observe(&result, Instant::now());
            // Whether the last probe reached it, whatever the thresholds say yet.
            let running = !matches!(result, ProbeResult::Failed(_));
            let observation = Observation::now(
                self.name.clone(),
                status,
                running,
                result.detail().to_owned(),
            );
            if tx.send(observation).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn presets_read_elasticsearch_and_both_kibana_formats() {
        let es = |s: &str| {
            read_preset(
                Preset::Elasticsearch,
                &json!({"cluster_name": "c", "status": s}),
            )
        };
        assert!(matches!(es("green"), ProbeResult::Healthy(_)));
        assert!(matches!(es("yellow"), ProbeResult::Degraded(_)));
        assert!(matches!(es("red"), ProbeResult::Failed(_)));
        let k8 = |l: &str| {
            read_preset(
                Preset::Kibana,
                &json!({"status": {"overall": {"level": l}}}),
            )
        };
        assert!(matches!(k8("available"), ProbeResult::Healthy(_)));
        assert!(matches!(k8("degraded"), ProbeResult::Degraded(_)));
        assert!(matches!(k8("critical"), ProbeResult::Failed(_)));
        let k7 = read_preset(
            Preset::Kibana,
            &json!({"status": {"overall": {"state": "yellow"}}}),
        );
        assert!(matches!(k7, ProbeResult::Degraded(_)));
        assert!(matches!(
            read_preset(Preset::Kibana, &json!({})),
            ProbeResult::Failed(_)
        ));
    }

    #[test]
    fn json_paths_are_dotted() {
        let body = json!({"a": {"b": {"c": 3}}});
        assert_eq!(lookup(&body, "a.b.c"), Some(&json!(3)));
        assert_eq!(lookup(&body, "a.x"), None);
    }
}
