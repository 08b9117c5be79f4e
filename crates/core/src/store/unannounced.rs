//! Changes to `elkservice` that no elkservice program announced: plain SQL,
//! another program, a restore. The database is the truth, so they must reach
//! the feed (and through it every read model, stream, page and notifier)
//! like any other change.
//!
//! Three triggers on the table note every such change in
//! `elkservice_unannounced`, in the changing transaction itself: the Id and
//! what the row was before (whether it existed, its status). elkservice's
//! own connections set `@elkservice_announced` ([`crate::db`]), since they
//! record their changes in the feed themselves, with more to say (the
//! transition's detail, the observation's time). An update that moves only
//! what a confirmation moves (`LastCheckedAt`, `UpdatedAt` and the writer's
//! bookkeeping) is not noted, as it is no feed entry either.
//!
//! [`absorb`] turns the notes into feed entries with `"Source":"database"`.
//! It locks the rows first, then the notes: every transaction that noted a
//! change to those rows has committed by then, and none can change them
//! again until the entry (with the row as it now is) has its Seq. Any api
//! process may run it; two at once take turns on the row locks, and the
//! second finds the notes gone.
//!
//! A restore that drops and re-creates the table loads its rows with no
//! trigger in place. [`table_made`] and [`installed`] let the api see
//! that happen; it then compares the table with its read model and
//! [`note`]s the differences, which [`absorb`] records in the same way.

use super::columns::pow2_padded;
use super::feed::{self, ChangeKind, NewChange, Source};
use super::history::{self, HistoryRow};
use super::services;
use crate::domain::{ServiceName, Status};
use chrono::{NaiveDateTime, Utc};
use sqlx::{Acquire, MySql, MySqlConnection, QueryBuilder};
use std::collections::BTreeMap;

/// seq, service_id, existed, from_status, name (VARBINARY, so bytes).
type NoteRow = (i64, i64, bool, Option<String>, Vec<u8>);

/// The history's `source` for a transition nobody announced.
pub const HISTORY_SOURCE: &str = "database";

/// The triggers' names; a new definition takes a new name.
const NAMES: [&str; 3] = [
    "elkservice_unannounced_insert_v1",
    "elkservice_unannounced_update_v1",
    "elkservice_unannounced_delete_v1",
];

/// What a client of the feed sees of a row did not change: the columns that
/// a confirmation moves (`last_checked_at`, `updated_at`, `observed_ns`,
/// `watcher`) and the writer's `settled_status` are left out.
const SAME_SEEN: &str = "OLD.id <=> NEW.id AND OLD.name <=> NEW.name \
     AND OLD.status <=> NEW.status AND OLD.running <=> NEW.running \
     AND OLD.failed_count <=> NEW.failed_count AND OLD.detail <=> NEW.detail \
     AND OLD.status_changed_at <=> NEW.status_changed_at AND OLD.created_at <=> NEW.created_at";

const NOTE: &str = "INSERT INTO elkservice_unannounced (service_id, existed, from_status, name)";

fn definitions() -> [String; 3] {
    let head = |name: &str, event: &str| {
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON elkservice FOR EACH ROW {NOTE} "
        )
    };
    [
        head(NAMES[0], "INSERT")
            + "SELECT NEW.id, FALSE, NULL, NEW.name FROM DUAL WHERE @elkservice_announced IS NULL",
        // A new Id is the old row deleted and a new one created.
        head(NAMES[1], "UPDATE")
            + &format!(
                "SELECT OLD.id, TRUE, OLD.status, OLD.name FROM DUAL \
                 WHERE @elkservice_announced IS NULL AND NOT ({SAME_SEEN}) \
                 UNION ALL SELECT NEW.id, FALSE, NULL, NEW.name FROM DUAL \
                 WHERE @elkservice_announced IS NULL AND OLD.id <> NEW.id"
            ),
        head(NAMES[2], "DELETE")
            + "SELECT OLD.id, TRUE, OLD.status, OLD.name FROM DUAL WHERE @elkservice_announced IS NULL",
    ]
}

/// Put the triggers in place where they are missing (the api does at start).
pub async fn install(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    for definition in definitions() {
        sqlx::query(&definition).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Whether all three triggers are on the table (a restore that dropped the
/// table, or one made without triggers, leaves it without).
pub async fn installed(conn: &mut MySqlConnection) -> Result<bool, sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() \
         AND EVENT_OBJECT_TABLE = 'elkservice' AND TRIGGER_NAME IN (",
    );
    let mut list = q.separated(", ");
    for name in NAMES {
        list.push_bind(name);
    }
    q.push(")");
    let found: i64 = q.build_query_scalar().fetch_one(conn).await?;
    Ok(found == NAMES.len() as i64)
}

/// Which making of the table this is: a restore that drops and re-creates
/// it changes this. The creation time has whole seconds, so InnoDB's table
/// id (a new one for every `CREATE TABLE`) is asked too; reading it takes the
/// PROCESS privilege, and without it the time alone has to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMade {
    pub created: Option<NaiveDateTime>,
    pub innodb_id: Option<u64>,
}

pub async fn table_made(conn: &mut MySqlConnection) -> Result<TableMade, sqlx::Error> {
    let created = sqlx::query_scalar(
        "SELECT CREATE_TIME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'elkservice'",
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let innodb_id = sqlx::query_scalar(
        "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES \
         WHERE NAME = CONCAT(DATABASE(), '/elkservice')",
    )
    .fetch_optional(conn)
    .await
    .unwrap_or(None);
    Ok(TableMade { created, innodb_id })
}

/// Up to `limit` Ids with unannounced changes, those noted first first.
pub async fn pending(conn: &mut MySqlConnection, limit: u32) -> Result<Vec<i64>, sqlx::Error> {
    let noted: Vec<i64> =
        sqlx::query_scalar("SELECT service_id FROM elkservice_unannounced ORDER BY seq LIMIT ?")
            .bind(limit)
            .fetch_all(conn)
            .await?;
    let mut ids = Vec::with_capacity(noted.len());
    for id in noted {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A change found by comparing the table with what the feed says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Noted {
    pub id: i64,
    pub name: ServiceName,
    /// The feed's last word on the row: it existed, with this status.
    pub before: Option<Status>,
}

/// Note changes that the triggers could not (see the module's doc).
pub async fn note(conn: &mut MySqlConnection, found: &[Noted]) -> Result<(), sqlx::Error> {
    for chunk in found.chunks(256) {
        let mut q = QueryBuilder::<MySql>::new(NOTE);
        q.push(" ");
        q.push_values(chunk, |mut row, n| {
            row.push_bind(n.id)
                .push_bind(n.before.is_some())
                .push_bind(n.before.map(Status::as_str))
                .push_bind(n.name.as_str());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// What the first note of an Id says the row was.
struct Before {
    existed: bool,
    status: Option<Status>,
}

/// Record the unannounced changes of `ids` (at most 256) in the feed, and
/// their transitions in the history; returns how many entries it recorded.
pub async fn absorb(conn: &mut MySqlConnection, ids: &[i64]) -> Result<usize, sqlx::Error> {
    // Read committed: the notes that the row locks waited for are seen, and
    // no gap is locked against the triggers' inserts.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await?;
    let mut tx = conn.begin().await?;
    let (rows, locked_at) = services::lock_many(&mut tx, ids).await?;
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT seq, service_id, existed, from_status, name FROM elkservice_unannounced \
         WHERE service_id IN (",
    );
    let mut list = q.separated(", ");
    for id in pow2_padded(ids) {
        list.push_bind(*id);
    }
    q.push(") ORDER BY seq FOR UPDATE");
    let notes: Vec<NoteRow> = q.build_query_as().fetch_all(&mut *tx).await?;
    let Some(&(last, ..)) = notes.last() else {
        tx.commit().await?;
        return Ok(0);
    };
    let mut before = BTreeMap::new();
    let mut last_name = BTreeMap::new();
    for (_, id, existed, status, name) in &notes {
        before.entry(*id).or_insert_with(|| Before {
            existed: *existed,
            // A status outside the five was refused by the table's check.
            status: status.as_deref().and_then(|s| s.parse().ok()),
        });
        last_name.insert(*id, std::str::from_utf8(name).unwrap_or(""));
    }
    let at = locked_at.unwrap_or_else(Utc::now);
    let mut entries = Vec::new();
    let mut transitions = Vec::new();
    for (id, before) in &before {
        let row = rows.get(id);
        let kind = match (before.existed, row) {
            (false, None) => continue,
            (false, Some(_)) => ChangeKind::Created,
            (true, None) => ChangeKind::Deleted,
            (true, Some(row)) if Some(row.status) != before.status => ChangeKind::Transition,
            (true, Some(_)) => ChangeKind::Updated,
        };
        let from = before.status.filter(|_| kind != ChangeKind::Created);
        // A deleted row's name as it was last (the table checks names).
        let Some(name) = row
            .map(|r| r.name.clone())
            .or_else(|| ServiceName::parse(last_name[id]).ok())
        else {
            continue;
        };
        if let Some(row) = row.filter(|_| kind != ChangeKind::Updated) {
            transitions.push(HistoryRow {
                service_id: row.id,
                from,
                status: row.status,
                running: row.running,
                detail: row.detail.as_deref(),
                observed_at: Some(at),
                source: HISTORY_SOURCE,
            });
        }
        entries.push(NewChange {
            kind,
            service_id: *id,
            name,
            at,
            from,
            service: row.cloned(),
            source: Source::Database,
        });
    }
    let first = notes[0].0;
    let mut q = QueryBuilder::<MySql>::new("DELETE FROM elkservice_unannounced WHERE seq BETWEEN ");
    q.push_bind(first)
        .push(" AND ")
        .push_bind(last)
        .push(" AND service_id IN (");
    let mut list = q.separated(", ");
    for id in pow2_padded(ids) {
        list.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut *tx).await?;
    history::insert(&mut tx, &transitions).await?;
    feed::record(&mut tx, &entries).await?;
    tx.commit().await?;
    Ok(entries.len())
}
