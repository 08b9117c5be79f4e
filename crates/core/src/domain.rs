//! The domain model: a watched service, its name and its status.
//!
//! Values are validated when they are parsed, so the database and the wire only
//! ever see well-formed names and statuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Longest accepted service name: a DNS label, which also bounds container names
/// that users pick for ELK stacks.
pub const NAME_MAX_LEN: usize = 63;
/// Longest free-text detail kept for a service or a transition.
pub const DETAIL_MAX_LEN: usize = 1024;

/// A service name: 1–63 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1-{NAME_MAX_LEN} characters of A-Z a-z 0-9 . _ -")]
pub struct InvalidName;

impl ServiceName {
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        let ok = !s.is_empty()
            && s.len() <= NAME_MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ServiceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServiceName::parse(&s).map_err(|e| serde::de::Error::custom(format!("Name {e}")))
    }
}

/// The health of a service, as the contract defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Running and healthy.
    Normal,
    /// Running but unhealthy (Elasticsearch yellow, Kibana degraded).
    Degraded,
    /// Not running, unreachable, or Elasticsearch red.
    Down,
    /// Inside the start grace period.
    Starting,
    /// Never observed, or the watcher cannot see it.
    Unknown,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Normal,
        Status::Degraded,
        Status::Down,
        Status::Starting,
        Status::Unknown,
    ];

    /// The status itself when it says how the service is, None for `unknown`
    /// and `starting`, which say only that it is not known yet.
    pub fn settled(self) -> Option<Status> {
        (!matches!(self, Status::Unknown | Status::Starting)).then_some(self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Normal => "normal",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Starting => "starting",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of normal, degraded, down, starting, unknown")]
pub struct InvalidStatus;

impl FromStr for Status {
    type Err = InvalidStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(InvalidStatus)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of the `elkservice` table, as clients see it. Field names keep the
/// seed's Beego JSON names; added fields use the same PascalCase style.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[cfg_attr(feature = "openapi", schema(example = 1))]
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "elasticsearch"))]
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    /// Transitions into `down` so far (an unsigned 32-bit count).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 0, maximum = 4294967295_i64, example = 0))]
    pub failed_count: u32,
    /// What the last observation said, e.g. `exit code 137`.
    pub detail: Option<String>,
    /// When `Status` last changed.
    pub status_changed_at: Option<DateTime<Utc>>,
    /// When the last observation was applied.
    pub last_checked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Each watcher's latest observation of the service, from which the
    /// writer derives `Status` by the quorum rule. Empty for a row no
    /// watcher reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
}

/// One watcher's latest observation of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Vote {
    #[cfg_attr(feature = "openapi", schema(example = "watcher-a"))]
    pub watcher: String,
    pub status: Status,
    pub running: bool,
    pub observed_at: DateTime<Utc>,
    pub detail: Option<String>,
    /// False once the watcher has sent nothing about the service for
    /// `writer.stale_after_secs`: the vote then abstains.
    pub fresh: bool,
    /// A `down` the operator asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub planned: bool,
}

/// One status transition of a service.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEvent {
    pub id: i64,
    pub service_id: i64,
    /// The status before; null for the row's first status.
    pub from_status: Option<Status>,
    pub status: Status,
    pub running: bool,
    pub detail: Option<String>,
    /// When the change was observed (by a watcher) or made (through the API).
    pub observed_at: DateTime<Utc>,
    /// The watcher id, or `api`.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_label_sized_and_plain() {
        for ok in ["a", "elasticsearch", "svc-1.prod_x", &"x".repeat(63)] {
            assert!(ServiceName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "ümlaut", "a/b", &"x".repeat(64), "semi;colon"] {
            assert_eq!(ServiceName::parse(bad), Err(InvalidName), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for st in Status::ALL {
            assert_eq!(st.as_str().parse::<Status>(), Ok(st));
        }
        assert_eq!("Normal".parse::<Status>(), Err(InvalidStatus));
    }
}
