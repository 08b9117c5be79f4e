//! The row after a change, as a feed page stores it.
//!
//! Compact, because the writer pays for every byte inside its transaction: a
//! JSON array of what the entry's other fields do not already hold, times in
//! microseconds since the epoch (all that a `DATETIME(6)` keeps). That is
//! well under half of the row's JSON object. Three forms exist in stored
//! pages, and each reads until retention prunes it:
//!
//! - version 2 (written now): `[2, Status, Running, FailedCount, Detail,
//!   StatusChangedAt, LastCheckedAt, CreatedAt, UpdatedAt]`;
//! - version 1: the same without the leading version;
//! - the first form: the row's JSON object, as clients read it.

use crate::domain::{Service, ServiceName, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::error::Error;

/// What the version written now begins with.
const VERSION: u8 = 2;

/// The fields a stored row holds, by name; its `Serialize` and
/// [`StoredRow::parse`] give them their place in the array.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct StoredRow<'a> {
    status: Status,
    running: bool,
    failed_count: u32,
    detail: Option<Cow<'a, str>>,
    status_changed_at: Option<i64>,
    last_checked_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// Version 1's array, and version 2's after its version.
type Fields<'a> = (
    Status,
    bool,
    u32,
    Option<Cow<'a, str>>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);

/// Written as the current version's array.
impl Serialize for StoredRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (
            VERSION,
            self.status,
            self.running,
            self.failed_count,
            &self.detail,
            self.status_changed_at,
            self.last_checked_at,
            self.created_at,
            self.updated_at,
        )
            .serialize(serializer)
    }
}

#[derive(Deserialize)]
struct Versioned<'a>(
    u8,
    Status,
    bool,
    u32,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);

impl<'a> StoredRow<'a> {
    pub(super) fn of(s: &'a Service) -> Self {
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        StoredRow {
            status: s.status,
            running: s.running,
            failed_count: s.failed_count,
            detail: s.detail.as_deref().map(Cow::Borrowed),
            status_changed_at: micros(s.status_changed_at),
            last_checked_at: micros(s.last_checked_at),
            created_at: s.created_at.timestamp_micros(),
            updated_at: s.updated_at.timestamp_micros(),
        }
    }

    /// Version 2 or 1; None for the first form (an object).
    fn parse(stored: &'a str) -> Result<Option<Self>, serde_json::Error> {
        let fields = match stored.trim_start().strip_prefix('[') {
            None => return Ok(None),
            // Version 1 begins with the status, a string.
            Some(rest) if rest.trim_start().starts_with('"') => {
                serde_json::from_str::<Fields>(stored)?
            }
            Some(_) => {
                let Versioned(version, a, b, c, d, e, f, g, h) = serde_json::from_str(stored)?;
                if version != VERSION {
                    return Err(serde::de::Error::custom(format!(
                        "a stored row of version {version}, newer than this program reads"
                    )));
                }
                (a, b, c, d, e, f, g, h)
            }
        };
        let (
            status,
            running,
            failed_count,
            detail,
            status_changed_at,
            last_checked_at,
            created_at,
            updated_at,
        ) = fields;
        Ok(Some(StoredRow {
            status,
            running,
            failed_count,
            detail,
            status_changed_at,
            last_checked_at,
            created_at,
            updated_at,
        }))
    }
}

pub(super) fn micros_time(micros: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(micros).ok_or(format!("time {micros} out of range"))
}

/// The row stored for the service `id` named `name`, in any of its forms.
pub(super) fn load_row(
    id: i64,
    name: ServiceName,
    stored: &str,
) -> Result<Service, Box<dyn Error + Send + Sync>> {
    let Some(row) = StoredRow::parse(stored)? else {
        return Ok(serde_json::from_str(stored)?);
    };
    Ok(Service {
        id,
        name,
        status: row.status,
        running: row.running,
        failed_count: row.failed_count,
        detail: row.detail.map(Cow::into_owned),
        status_changed_at: row.status_changed_at.map(micros_time).transpose()?,
        last_checked_at: row.last_checked_at.map(micros_time).transpose()?,
        created_at: micros_time(row.created_at)?,
        updated_at: micros_time(row.updated_at)?,
        votes: Vec::new(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A row with every field set, to the microsecond.
    pub(in crate::store::feed) fn service(detail: Option<&str>, changed: bool) -> Service {
        let t = |s: i64, us: u32| Utc.timestamp_opt(s, us * 1000).unwrap();
        Service {
            id: 7,
            name: ServiceName::parse("kibana").unwrap(),
            status: Status::Down,
            running: false,
            failed_count: u32::MAX,
            detail: detail.map(str::to_owned),
            status_changed_at: changed.then(|| t(1_795_000_000, 123_456)),
            last_checked_at: Some(t(1_795_000_001, 1)),
            created_at: t(1_700_000_000, 0),
            updated_at: t(1_795_000_002, 999_999),
            votes: Vec::new(),
        }
    }

    pub(in crate::store::feed) fn same(a: &Service, b: &Service) -> bool {
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    }

    #[test]
    fn a_stored_row_reads_back_as_the_same_row() {
        for s in [
            service(Some("exit code 137, \"OOM\" \u{1F4A5}"), true),
            service(None, false),
        ] {
            let stored = serde_json::to_string(&StoredRow::of(&s)).unwrap();
            assert!(stored.starts_with("[2,"), "{stored}");
            let back = load_row(s.id, s.name.clone(), &stored).unwrap();
            assert!(same(&back, &s), "{stored} read back as {back:?}");
            // What the compact form is for: well under half the object.
            assert!(stored.len() * 2 < serde_json::to_string(&s).unwrap().len());
        }
    }

    #[test]
    fn rows_stored_by_earlier_versions_still_read() {
        let s = service(Some("container exited"), true);
        let object = serde_json::to_string(&s).unwrap();
        assert!(same(&load_row(s.id, s.name.clone(), &object).unwrap(), &s));
        // Version 1, as pages written before the version was added hold it.
        let v1 = "[\"down\",false,4294967295,\"container exited\",1795000000123456,\
                  1795000001000001,1700000000000000,1795000002999999]";
        assert!(same(&load_row(s.id, s.name.clone(), v1).unwrap(), &s));
    }

    #[test]
    fn a_damaged_or_newer_stored_row_is_an_error_not_a_made_up_row() {
        let name = ServiceName::parse("kibana").unwrap();
        for stored in [
            "[\"down\",false]",
            "[\"sideways\",false,0,null,null,null,0,0]",
            "[\"down\",false,0,null,null,null,0,9223372036854775807]",
            "[2,\"down\",false,0,null,null,null,0]",
            "[3,\"down\",false,0,null,null,null,0,0]",
            "{\"Id\":1}",
        ] {
            assert!(load_row(1, name.clone(), stored).is_err(), "{stored}");
        }
    }
}
