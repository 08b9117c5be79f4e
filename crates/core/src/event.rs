//! The status event: what a watcher observed about one service, as it travels
//! through RabbitMQ to the writer. An observation, not a command: the writer
//! decides whether it is newer than what it already applied.

use crate::domain::{ServiceName, Status, DETAIL_MAX_LEN};
use crate::json::Object;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the event schema this code reads and writes.
pub const SCHEMA_VERSION: u64 = 1;
/// Longest watcher id kept (the history table's `source` column).
pub const WATCHER_MAX_LEN: usize = 255;
/// How far ahead of the writer's clock an observation may be. An event from a
/// watcher whose clock runs far ahead would otherwise win over every real
/// observation after it.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// Schema 1 of the body published to `elkservice.status` with routing key
/// `status.<service>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub schema: u64,
    pub service: ServiceName,
    pub status: Status,
    pub running: bool,
    /// RFC 3339 with nanoseconds; the writer's ordering key.
    pub observed_at: DateTime<Utc>,
    /// The id of the watcher that observed it.
    pub watcher: String,
    #[serde(default)]
    pub detail: Option<String>,
    /// Part of schema 1 for senders that describe the service further; the
    /// writer keeps nothing of it, and this watcher sends it empty.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A `down` that the operator asked for (`docker stop`): the service is
    /// down, but it did not fail, so `FailedCount` stays. Optional within
    /// schema 1 (absent means false), so a writer that predates it reads such
    /// an event as an ordinary `down`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub planned: bool,
}

/// The header of a dead-lettered message that says why it was refused.
pub const ERROR_HEADER: &str = "x-elkservice-error";
/// The header of a dead-lettered message that keeps its original routing key.
pub const ROUTING_KEY_HEADER: &str = "x-elkservice-routing-key";

/// The properties every status event is published with: persistent JSON.
pub fn publish_properties() -> lapin::BasicProperties {
    lapin::BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

/// Why a message is not a usable event. The text goes into the dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("unsupported schema version {0} (this program reads version {SCHEMA_VERSION})")]
    UnsupportedVersion(String),
    #[error("invalid event: {0}")]
    Invalid(String),
}

impl StatusEvent {
    /// An observation made now, with no detail.
    pub fn new(service: ServiceName, status: Status, running: bool, watcher: &str) -> Self {
        Self::observed(service, status, running, Utc::now(), watcher, None)
    }

    /// What `watcher` saw of `service` at `observed_at`.
    pub fn observed(
        service: ServiceName,
        status: Status,
        running: bool,
        observed_at: DateTime<Utc>,
        watcher: &str,
        detail: Option<String>,
    ) -> Self {
        StatusEvent {
            schema: SCHEMA_VERSION,
            service,
            status,
            running,
            observed_at,
            watcher: watcher.to_owned(),
            detail,
            labels: BTreeMap::new(),
            planned: false,
        }
    }

    /// Parse and validate a message body. A version other than this one is
    /// reported as such, even when the body would not parse as this version.
    pub fn decode(body: &[u8]) -> Result<Self, EventError> {
        let parsed = serde_json::from_slice::<Object<StatusEvent>>(body);
        let event = match parsed.map(|o| o.0) {
            Ok(event) if event.schema == SCHEMA_VERSION => event,
            Ok(event) => return Err(EventError::UnsupportedVersion(event.schema.to_string())),
            // Parsed once more, only to say why (the writer's hot path is above).
            Err(e) => {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| EventError::Malformed(e.to_string()))?;
                if !value.is_object() {
                    return Err(EventError::Invalid(e.to_string()));
                }
                return Err(match value.get("schema") {
                    Some(v) if v.as_u64() == Some(SCHEMA_VERSION) => {
                        EventError::Invalid(e.to_string())
                    }
                    Some(v) => EventError::UnsupportedVersion(v.to_string()),
                    None => EventError::Invalid("missing field `schema`".into()),
                });
            }
        };
        event.validate(Utc::now())?;
        Ok(event)
    }

    fn validate(&self, now: DateTime<Utc>) -> Result<(), EventError> {
        let invalid = |m: String| Err(EventError::Invalid(m));
        if self.watcher.is_empty() || self.watcher.chars().count() > WATCHER_MAX_LEN {
            return invalid(format!("watcher must be 1-{WATCHER_MAX_LEN} characters"));
        }
        if self
            .detail
            .as_ref()
            .is_some_and(|d| d.chars().count() > DETAIL_MAX_LEN)
        {
            return invalid(format!("detail may be at most {DETAIL_MAX_LEN} characters"));
        }
        if self.observed_at > now + MAX_CLOCK_SKEW {
            return invalid(format!(
                "observed_at {} is more than {} minutes ahead of this clock",
                self.observed_at.to_rfc3339(),
                MAX_CLOCK_SKEW.num_minutes()
            ));
        }
        if self.observed_at.timestamp_nanos_opt().is_none() {
            return invalid("observed_at is outside 1677-2262".into());
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event serialises")
    }

    /// `status.<service>`.
    pub fn routing_key(&self) -> String {
        format!("status.{}", self.service)
    }

    /// Nanoseconds since the epoch: the ordering key the writer stores.
    pub fn observed_ns(&self) -> i64 {
        self.observed_at
            .timestamp_nanos_opt()
            .expect("validated on decode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatusEvent {
        let mut e = StatusEvent::new(
            ServiceName::parse("kibana").unwrap(),
            Status::Down,
            false,
            "host-1",
        );
        e.detail = Some("exit code 137".into());
        e
    }

    #[test]
    fn round_trips_with_nanoseconds() {
        let e = sample();
        let text = String::from_utf8(e.encode()).unwrap();
        assert!(text.contains(r#""schema":1"#) && text.contains(r#""service":"kibana""#));
        assert_eq!(StatusEvent::decode(text.as_bytes()).unwrap(), e);
        assert!(!text.contains("planned"), "false is left out: {text}");
        let planned = StatusEvent { planned: true, ..e };
        assert_eq!(StatusEvent::decode(&planned.encode()).unwrap(), planned);
        let ns = r#"{"schema":1,"service":"a","status":"normal","running":true,
            "observed_at":"2026-11-24T10:00:00.123456789Z","watcher":"w"}"#;
        assert_eq!(
            StatusEvent::decode(ns.as_bytes()).unwrap().observed_ns() % 1_000_000_000,
            123_456_789
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        fn kind(e: &EventError) -> &'static str {
            match e {
                EventError::Malformed(_) => "malformed",
                EventError::UnsupportedVersion(_) => "version",
                EventError::Invalid(_) => "invalid",
            }
        }
        let ok_fields =
            r#""status":"down","running":false,"observed_at":"2026-01-01T00:00:00Z","watcher":"w""#;
        let cases = [
            ("not json".to_owned(), "malformed"),
            (r#"{"schema":2,"service":"a"}"#.to_owned(), "version"),
            // A newer version whose body also reads as this one.
            (
                format!(r#"{{"schema":2,"service":"a",{ok_fields}}}"#),
                "version",
            ),
            (r#"{"service":"a"}"#.to_owned(), "invalid"),
            (
                format!(r#"{{"schema":1,"service":"a b",{ok_fields}}}"#),
                "invalid",
            ),
            (
                format!(
                    r#"{{"schema":1,"service":"a",{}}}"#,
                    ok_fields.replace("down", "sideways")
                ),
                "invalid",
            ),
            (
                format!(
                    r#"{{"schema":1,"service":"a",{}}}"#,
                    ok_fields.replace("2026-01-01T00:00:00Z", "yesterday")
                ),
                "invalid",
            ),
            (
                format!(
                    r#"{{"schema":1,"service":"a",{}}}"#,
                    ok_fields.replace(r#""w""#, r#""""#)
                ),
                "invalid",
            ),
            (
                format!(
                    r#"{{"schema":1,"service":"a",{}}}"#,
                    ok_fields.replace("2026", "2999")
                ),
                "invalid",
            ),
        ];
        let cases = cases.into_iter().chain([
            // The fields in order, as an array: what a derived struct would
            // read, but no event.
            (
                r#"[1,"a","down",false,"2026-01-01T00:00:00Z","w"]"#.to_owned(),
                "invalid",
            ),
            ("[]".to_owned(), "invalid"),
            ("5".to_owned(), "invalid"),
        ]);
        for (body, expected) in cases {
            let err = StatusEvent::decode(body.as_bytes()).unwrap_err();
            assert_eq!(kind(&err), expected, "{body}: {err}");
        }
        let fine = format!(r#"{{"schema":1,"service":"a",{ok_fields}}}"#);
        assert!(StatusEvent::decode(fine.as_bytes()).is_ok());
    }
}
