//! The change feed: every change a client would see in a row (created, a
//! status transition, an edit through the API, deleted) is an entry with a
//! `Seq` that grows in commit order across every writer and api process.
//!
//! Seqs come from one counter row, taken as the last statement of each
//! writing transaction and held until it commits: a transaction that takes
//! Seq N commits before any transaction can take N + 1. So a reader who has
//! seen N has seen every entry below it, and the Seqs have no holes (an
//! AUTO_INCREMENT id would promise neither: ids of concurrent transactions
//! become visible out of order, and a rollback leaves a hole).

use super::columns::{name, optional_status, statement_chunks};
use super::script::Script;
use crate::domain::{Service, ServiceName, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::mysql::{MySqlQueryResult, MySqlRow};
use sqlx::{FromRow, MySql, MySqlConnection, QueryBuilder, Row};
use std::borrow::Cow;
use utoipa::ToSchema;

/// What kind of change an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// A row was made (through the API, or by the writer for a new service).
    Created,
    /// Its status changed.
    Transition,
    /// Something else a client sees changed: an edit through the API, or a
    /// new `Running`/`Detail` with the same status.
    Updated,
    /// It was deleted.
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Transition => "transition",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Created,
            ChangeKind::Transition,
            ChangeKind::Updated,
            ChangeKind::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of the feed, as clients read it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// Grows by one per entry, in commit order.
    pub seq: i64,
    pub kind: ChangeKind,
    /// The service's Id.
    pub id: i64,
    #[schema(value_type = String)]
    pub name: ServiceName,
    /// When the change was committed (or, for an observation, observed).
    pub at: DateTime<Utc>,
    /// The status before the change; null for a creation.
    pub from_status: Option<Status>,
    /// The row as `GET /elkservice/{Id}` returned it after the change; null
    /// for a deletion.
    pub service: Option<Service>,
}

/// A change to record, before it has a Seq.
#[derive(Debug, Clone)]
pub struct NewChange {
    pub kind: ChangeKind,
    pub service_id: i64,
    pub name: ServiceName,
    pub at: DateTime<Utc>,
    pub from: Option<Status>,
    pub service: Option<Service>,
}

impl FromRow<'_, MySqlRow> for Change {
    fn from_row(row: &MySqlRow) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("kind")?;
        let service: Option<String> = row.try_get("service")?;
        let decode = |e: Box<dyn std::error::Error + Send + Sync>| sqlx::Error::ColumnDecode {
            index: "service".into(),
            source: e,
        };
        let (id, name) = (row.try_get("service_id")?, name(row)?);
        Ok(Change {
            seq: row.try_get("seq")?,
            kind: ChangeKind::parse(&kind)
                .ok_or_else(|| decode(format!("kind {kind:?}").into()))?,
            service: service
                .map(|stored| load_row(id, name.clone(), &stored).map_err(decode))
                .transpose()?,
            id,
            name,
            at: row.try_get("at")?,
            from_status: optional_status(row, "from_status")?,
        })
    }
}

/// The row after a change, as `elkservice_change.service` stores it: a JSON
/// array of what the entry's columns do not already hold (Status, Running,
/// FailedCount, Detail, StatusChangedAt, LastCheckedAt, CreatedAt,
/// UpdatedAt), times in microseconds since the epoch, which is all that a
/// `DATETIME(6)` keeps. It is 40 % of the size of the row's JSON object (118
/// bytes against 293 with a short `Detail`), and the writer pays for every
/// byte inside its transaction: in the writer bench's live bursts of
/// 100,000 events, its transactions took 3.0–3.6 s in all with the object
/// and 2.6–3.2 s with the array, and MariaDB's CPU fell by about 0.1 s
/// (README, "The writer").
fn store_row(s: &Service) -> String {
    let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    serde_json::to_string(&StoredRow(
        s.status,
        s.running,
        s.failed_count,
        s.detail.as_deref().map(Cow::Borrowed),
        micros(s.status_changed_at),
        micros(s.last_checked_at),
        s.created_at.timestamp_micros(),
        s.updated_at.timestamp_micros(),
    ))
    .expect("a row serialises")
}

/// The stored form's fields, in order; a tuple struct is a JSON array.
#[derive(Serialize, Deserialize)]
struct StoredRow<'a>(
    Status,
    bool,
    u32,
    Option<Cow<'a, str>>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
);

/// The row that [`store_row`] stored for the service `id` named `name`.
/// Entries recorded before that form hold the row's JSON object instead,
/// and read as such until retention prunes them.
fn load_row(
    id: i64,
    name: ServiceName,
    stored: &str,
) -> Result<Service, Box<dyn std::error::Error + Send + Sync>> {
    if !stored.starts_with('[') {
        return Ok(serde_json::from_str(stored)?);
    }
    let StoredRow(status, running, failed_count, detail, changed, checked, created, updated) =
        serde_json::from_str(stored)?;
    let time = |micros: i64| {
        DateTime::from_timestamp_micros(micros).ok_or(format!("time {micros} out of range"))
    };
    Ok(Service {
        id,
        name,
        status,
        running,
        failed_count,
        detail: detail.map(Cow::into_owned),
        status_changed_at: changed.map(time).transpose()?,
        last_checked_at: checked.map(time).transpose()?,
        created_at: time(created)?,
        updated_at: time(updated)?,
    })
}

/// What [`record`] and [`push_record`] begin with, before their values.
const INSERT_HEAD: &str = "INSERT INTO elkservice_change \
     (seq, kind, service_id, name, at, from_status, service) ";

/// Give `changes` their Seqs and record them; returns the first Seq (the
/// others follow it). Call it last in the transaction, just before COMMIT:
/// from here until the commit, every other writer waits for the counter,
/// which is what keeps Seqs in commit order.
pub async fn record(conn: &mut MySqlConnection, changes: &[NewChange]) -> Result<i64, sqlx::Error> {
    if changes.is_empty() {
        return Ok(0);
    }
    // LAST_INSERT_ID(expr) puts the new value in the statement's own reply.
    let last = sqlx::query(
        "UPDATE elkservice_feed SET value = LAST_INSERT_ID(value + ?) WHERE name = 'seq'",
    )
    .bind(changes.len() as i64)
    .execute(&mut *conn)
    .await?
    .last_insert_id() as i64;
    let first = last - changes.len() as i64 + 1;
    let mut seq = first;
    for chunk in statement_chunks(changes) {
        let mut q = QueryBuilder::<MySql>::new(INSERT_HEAD);
        q.push_values(chunk, |mut row, c| {
            row.push_bind(seq)
                .push_bind(c.kind.as_str())
                .push_bind(c.service_id)
                .push_bind(c.name.as_str())
                .push_bind(c.at)
                .push_bind(c.from.map(Status::as_str))
                .push_bind(c.service.as_ref().map(store_row));
            seq += 1;
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(first)
}

/// [`record`], as the last statements of `script` (before its `COMMIT`):
/// returns where the entries' Seqs will be found in its results. The
/// counter is then held only while the server runs the rest of the script,
/// with no round trip to the client before the commit releases it.
pub fn push_record(script: &mut Script, changes: &[NewChange]) -> Seqs {
    let counted = changes.len() as i64;
    if changes.is_empty() {
        return Seqs {
            statement: None,
            counted,
        };
    }
    let statement = script.statement("UPDATE elkservice_feed SET value = LAST_INSERT_ID(value + ");
    script.value(counted).push(") WHERE name = 'seq'");
    // LAST_INSERT_ID() is the counter's new value until an AUTO_INCREMENT
    // insert changes it, which this table has none of.
    let mut before_last = counted;
    script.insert(INSERT_HEAD, changes, |script, c| {
        before_last -= 1;
        script
            .push("LAST_INSERT_ID() - ")
            .value(before_last)
            .push(", ")
            .value(c.kind.as_str())
            .push(", ")
            .value(c.service_id)
            .push(", ")
            .value(c.name.as_str())
            .push(", ")
            .value(c.at)
            .push(", ")
            .value(c.from.map(Status::as_str))
            .push(", ")
            .value(c.service.as_ref().map(store_row));
    });
    Seqs {
        statement: Some(statement),
        counted,
    }
}

/// Where [`push_record`]'s entries' Seqs are, once its script has run.
#[derive(Debug, Clone, Copy)]
pub struct Seqs {
    statement: Option<usize>,
    counted: i64,
}

impl Seqs {
    /// The first entry's Seq (the others follow it), from the script's results.
    pub fn first(&self, results: &[MySqlQueryResult]) -> i64 {
        match self.statement {
            Some(i) => results[i].last_insert_id() as i64 - self.counted + 1,
            None => 0,
        }
    }
}

/// The highest Seq committed so far.
pub async fn last_seq(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM elkservice_feed WHERE name = 'seq'")
        .fetch_one(conn)
        .await
}

/// The cursors a reader can follow on from: `(pruned, last)`. Entries up to
/// `pruned` have been deleted, so a reader behind it has missed some; no entry
/// after `last` has been committed, so a cursor ahead of it is not from this
/// feed (another database, or this one before it was made afresh).
pub async fn cursors(conn: &mut MySqlConnection) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT MAX(CASE name WHEN 'pruned' THEN value END), \
         MAX(CASE name WHEN 'seq' THEN value END) FROM elkservice_feed",
    )
    .fetch_one(conn)
    .await
}

/// Up to `limit` entries after `since`, oldest first.
pub async fn after(
    conn: &mut MySqlConnection,
    since: i64,
    limit: u32,
) -> Result<Vec<Change>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, kind, service_id, name, at, from_status, service FROM elkservice_change \
         WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Delete the oldest entries, in Seq order, up to the first one at or after
/// `cutoff` (at most `batch` of them), and return how many went. Walking the
/// primary key from its start reads only what goes (and one more), so `at`
/// needs no index of its own, which every writing transaction would pay for.
pub async fn prune(
    conn: &mut MySqlConnection,
    cutoff: DateTime<Utc>,
    batch: u32,
) -> Result<u64, sqlx::Error> {
    let oldest: Vec<(i64, DateTime<Utc>)> =
        sqlx::query_as("SELECT seq, at FROM elkservice_change ORDER BY seq LIMIT ?")
            .bind(batch)
            .fetch_all(&mut *conn)
            .await?;
    let Some(through) = oldest
        .iter()
        .take_while(|(_, at)| *at < cutoff)
        .map(|(seq, _)| *seq)
        .last()
    else {
        return Ok(0);
    };
    // The mark first: a reader is told it is behind before its entries go.
    sqlx::query("UPDATE elkservice_feed SET value = GREATEST(value, ?) WHERE name = 'pruned'")
        .bind(through)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM elkservice_change WHERE seq <= ?")
        .bind(through)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn service(detail: Option<&str>, changed: bool) -> Service {
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
        }
    }

    fn same(a: &Service, b: &Service) -> bool {
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    }

    #[test]
    fn a_stored_row_reads_back_as_the_same_row() {
        for s in [
            service(Some("exit code 137, \"OOM\" \u{1F4A5}"), true),
            service(None, false),
        ] {
            let stored = store_row(&s);
            let back = load_row(s.id, s.name.clone(), &stored).unwrap();
            assert!(same(&back, &s), "{stored} read back as {back:?}");
            // What the compact form is for: well under half the object.
            assert!(stored.len() * 2 < serde_json::to_string(&s).unwrap().len());
        }
    }

    #[test]
    fn an_entry_recorded_as_the_rows_object_still_reads() {
        let s = service(Some("container exited"), true);
        let object = serde_json::to_string(&s).unwrap();
        let back = load_row(s.id, s.name.clone(), &object).unwrap();
        assert!(same(&back, &s));
    }

    #[test]
    fn a_damaged_stored_row_is_an_error_not_a_made_up_row() {
        let name = ServiceName::parse("kibana").unwrap();
        for stored in [
            "[\"down\",false]",
            "[\"sideways\",false,0,null,null,null,0,0]",
            "[\"down\",false,0,null,null,null,0,9223372036854775807]",
            "{\"Id\":1}",
        ] {
            assert!(load_row(1, name.clone(), stored).is_err(), "{stored}");
        }
    }
}
