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
//!
//! A transaction's entries are stored in pages: runs of up to 256
//! consecutive entries, one row each, keyed by the last Seq. MariaDB's work
//! per row, not per byte, is what a writer's batch pays for (one row per
//! entry cost a batch of 1,500 transitions about a sixth of its time in
//! the database); readers, which read far less often than the writer
//! writes, split the pages again.

mod row;

use self::row::{load_row, micros_time, StoredRow};
use super::columns::statement_chunks;
use super::script::Script;
use crate::domain::{Service, ServiceName, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::mysql::MySqlQueryResult;
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use std::borrow::Cow;
use std::error::Error;
use std::ops::RangeInclusive;
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What kind of change an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
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

/// Who made a change: elkservice's own programs announce theirs; a change
/// to the table that nobody announced (plain SQL, another program, a
/// restore) is found by the api and recorded as `database`
/// (the triggers and `elkservice_unannounced`; see docs/truth.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    Writer,
    Database,
}

/// One entry of the feed, as clients read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// Grows by one per entry, in commit order.
    pub seq: i64,
    pub kind: ChangeKind,
    /// The service's Id.
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: ServiceName,
    /// When the change was committed (or, for an observation, observed).
    pub at: DateTime<Utc>,
    /// The status before the change; null for a creation.
    pub from_status: Option<Status>,
    /// The row as `GET /elkservice/{Id}` returned it after the change; null
    /// for a deletion.
    pub service: Option<Service>,
    /// Who made it; absent on entries recorded before the feed said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
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
    pub source: Source,
}

/// Most entries in one page: a reader whose cursor falls inside a page
/// decodes up to this many entries it has seen already.
const PAGE: usize = 256;

/// An entry as a page stores it: Kind, Id, Name, At (microseconds since the
/// epoch, all that `DATETIME(6)` kept), FromStatus, and the row after the
/// change (see [`row`]), and its [`Source`] (entries recorded before
/// there was one end after the row). Its Seq is its place in the page.
type StoredEntry<'a> = (
    &'a str,
    i64,
    &'a str,
    i64,
    Option<Status>,
    Option<StoredRow<'a>>,
    Source,
);

/// The same, as read: the row stays raw until [`load_row`] tells its form.
#[derive(Deserialize)]
struct ReadEntry<'a>(
    #[serde(borrow)] Cow<'a, str>,
    i64,
    #[serde(borrow)] Cow<'a, str>,
    i64,
    Option<Status>,
    #[serde(borrow)] Option<&'a RawValue>,
    #[serde(default)] Option<Source>,
);

/// A page's text: a JSON array of its entries.
fn store_page(changes: &[NewChange]) -> String {
    let entries: Vec<StoredEntry> = changes
        .iter()
        .map(|c| {
            (
                c.kind.as_str(),
                c.service_id,
                c.name.as_str(),
                c.at.timestamp_micros(),
                c.from,
                c.service.as_ref().map(StoredRow::of),
                c.source,
            )
        })
        .collect();
    serde_json::to_string(&entries).expect("entries serialise")
}

/// The entries of the page that holds Seqs `seqs`, those in `keep`, as
/// clients read them.
fn load_page(
    seqs: RangeInclusive<i64>,
    stored: &str,
    keep: &RangeInclusive<i64>,
) -> Result<Vec<Change>, Box<dyn Error + Send + Sync>> {
    let entries: Vec<ReadEntry> = serde_json::from_str(stored)?;
    if entries.len() as i64 != seqs.end() - seqs.start() + 1 {
        return Err(format!("{} entries for Seqs {seqs:?}", entries.len()).into());
    }
    seqs.zip(entries)
        .filter(|(seq, _)| keep.contains(seq))
        .map(
            |(seq, ReadEntry(kind, id, name, at, from_status, row, source))| {
                let name = ServiceName::parse(&name)?;
                Ok(Change {
                    seq,
                    kind: ChangeKind::parse(&kind).ok_or_else(|| format!("kind {kind:?}"))?,
                    service: row
                        .map(|row| load_row(id, name.clone(), row.get()))
                        .transpose()?,
                    id,
                    name,
                    at: micros_time(at)?,
                    from_status,
                    source,
                })
            },
        )
        .collect()
}

/// The newest `At` of a page's entries: retention deletes a page once it
/// is older than the cutoff.
fn newest(changes: &[NewChange]) -> DateTime<Utc> {
    changes
        .iter()
        .map(|c| c.at)
        .max()
        .expect("a page has entries")
}

/// What [`record`] and [`push_record`] begin with, before their values.
const INSERT_HEAD: &str = "INSERT INTO elkservice_change_page (last_seq, first_seq, at, entries) ";

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
    let pages: Vec<&[NewChange]> = changes.chunks(PAGE).collect();
    let mut seq = first;
    for chunk in statement_chunks(&pages) {
        let mut q = QueryBuilder::<MySql>::new(INSERT_HEAD);
        q.push_values(chunk, |mut row, page| {
            row.push_bind(seq + page.len() as i64 - 1)
                .push_bind(seq)
                .push_bind(newest(page))
                .push_bind(store_page(page));
            seq += page.len() as i64;
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
    let pages: Vec<&[NewChange]> = changes.chunks(PAGE).collect();
    let mut after_page = counted;
    script.insert(INSERT_HEAD, &pages, |script, page| {
        // Seqs from the end: the page's last is the counter less the entries after it.
        after_page -= page.len() as i64;
        script
            .push("LAST_INSERT_ID() - ")
            .value(after_page)
            .push(", LAST_INSERT_ID() - ")
            .value(after_page + page.len() as i64 - 1)
            .push(", ")
            .value(newest(page))
            .push(", ")
            .value(store_page(page));
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
    // Saturating: a cursor is the client's number, checked against the feed
    // by the routes but not here.
    let until = since.saturating_add(i64::from(limit));
    // The pages that hold since + 1 ..= until. Seqs have no holes, so the
    // last of them ends before until + PAGE: the range on the key is bounded
    // as well as the pages' starts.
    let pages: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT first_seq, last_seq, entries FROM elkservice_change_page \
         WHERE last_seq > ? AND last_seq < ? AND first_seq <= ? ORDER BY last_seq",
    )
    .bind(since)
    .bind(until.saturating_add(PAGE as i64))
    .bind(until)
    .fetch_all(conn)
    .await?;
    let keep = since + 1..=until;
    let mut changes = Vec::new();
    for (first, last, stored) in pages {
        let page =
            load_page(first..=last, &stored, &keep).map_err(|e| sqlx::Error::ColumnDecode {
                index: "entries".into(),
                source: e,
            })?;
        changes.extend(page);
    }
    Ok(changes)
}

/// Delete the oldest pages, in Seq order, up to the first one with an entry
/// at or after `cutoff` (at most `batch` pages), and return how many entries
/// went. Walking the primary key from its start reads only what goes (and
/// one more), so `at` needs no index of its own, which every writing
/// transaction would pay for.
pub async fn prune(
    conn: &mut MySqlConnection,
    cutoff: DateTime<Utc>,
    batch: u32,
) -> Result<u64, sqlx::Error> {
    let oldest: Vec<(i64, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT first_seq, last_seq, at FROM elkservice_change_page ORDER BY last_seq LIMIT ?",
    )
    .bind(batch)
    .fetch_all(&mut *conn)
    .await?;
    let going: Vec<_> = oldest
        .iter()
        .take_while(|(_, _, at)| *at < cutoff)
        .collect();
    let Some(&&(_, through, _)) = going.last() else {
        return Ok(0);
    };
    // The mark first: a reader is told it is behind before its entries go.
    sqlx::query("UPDATE elkservice_feed SET value = GREATEST(value, ?) WHERE name = 'pruned'")
        .bind(through)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM elkservice_change_page WHERE last_seq <= ?")
        .bind(through)
        .execute(&mut *conn)
        .await?;
    Ok(going
        .iter()
        .map(|(first, last, _)| (last - first + 1) as u64)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::row::tests::{same, service};
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_page_reads_back_as_its_entries_numbered_from_its_first_seq() {
        let s = service(Some("exit code 1"), true);
        let at = Utc.timestamp_opt(1_795_000_003, 123_456_789).unwrap();
        let entry = |kind, service: Option<&Service>| NewChange {
            kind,
            service_id: s.id,
            name: s.name.clone(),
            at,
            from: service.map(|_| Status::Normal),
            service: service.cloned(),
            source: Source::Writer,
        };
        let page = [
            entry(ChangeKind::Transition, Some(&s)),
            entry(ChangeKind::Deleted, None),
        ];
        let changes = load_page(41..=42, &store_page(&page), &(0..=i64::MAX)).unwrap();
        assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), [41, 42]);
        let (first, second) = (&changes[0], &changes[1]);
        assert_eq!(
            (first.kind, first.id, first.name.as_str()),
            (ChangeKind::Transition, 7, "kibana")
        );
        assert_eq!(first.from_status, Some(Status::Normal));
        assert!(same(first.service.as_ref().unwrap(), &s));
        // To the microsecond, as a DATETIME(6) column kept it.
        assert_eq!(
            first.at,
            Utc.timestamp_opt(1_795_000_003, 123_456_000).unwrap()
        );
        assert_eq!(first.source, Some(Source::Writer));
        assert_eq!(second.kind, ChangeKind::Deleted);
        assert!(second.service.is_none() && second.from_status.is_none());
        // A reader whose cursor is inside the page gets only what follows it.
        let rest = load_page(41..=42, &store_page(&page), &(42..=100)).unwrap();
        assert_eq!(rest.iter().map(|c| c.seq).collect::<Vec<_>>(), [42]);
    }

    #[test]
    fn an_entry_stored_before_entries_had_a_source_reads_without_one() {
        let stored = "[[\"deleted\",7,\"kibana\",0,\"down\",null]]";
        let changes = load_page(5..=5, stored, &(0..=5)).unwrap();
        assert_eq!((changes[0].seq, changes[0].source), (5, None));
        let unknown = "[[\"deleted\",7,\"kibana\",0,\"down\",null,\"someone\"]]";
        assert!(load_page(5..=5, unknown, &(0..=5)).is_err());
    }

    #[test]
    fn a_damaged_page_is_an_error_not_made_up_entries() {
        for stored in [
            "",
            "{}",
            "[[\"moved\",7,\"kibana\",0,null,null]]",
            "[[\"deleted\",7,\"no/such name\",0,null,null]]",
            "[[\"deleted\",7,\"kibana\",9223372036854775807,null,null]]",
            "[[\"updated\",7,\"kibana\",0,\"normal\",[\"down\"]]]",
            "[]",
        ] {
            assert!(load_page(1..=1, stored, &(1..=1)).is_err(), "{stored}");
        }
    }
}
