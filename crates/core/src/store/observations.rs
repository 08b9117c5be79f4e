//! The writer's statements: lock the rows a batch touches, register names
//! that have no row, and write the batch's new states, each as few
//! multi-row statements as the batch allows.

use super::columns::{name, optional_status, pow2_chunks, pow2_padded, status};
use crate::domain::{ServiceName, Status};
use crate::event::StatusEvent;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use std::collections::HashMap;

/// A service's row as a batch finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub id: i64,
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    pub detail: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The last status other than `unknown` and `starting`.
    pub settled: Option<Status>,
    /// The last applied observation, in nanoseconds since the epoch.
    pub observed_ns: Option<i64>,
    pub failed_count: u32,
    pub created_at: DateTime<Utc>,
}

/// The new state of one row after a batch: its newest applied event.
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate<'a> {
    pub id: i64,
    pub event: &'a StatusEvent,
    /// Transitions into `down` in this batch, added to `FailedCount` in SQL.
    pub failed_increment: u32,
    /// Set when the status changed in this batch.
    pub status_changed_at: Option<DateTime<Utc>>,
    /// The new last status other than `unknown` and `starting`, if it changed.
    pub settled: Option<Status>,
}

/// Lock and read the rows of `names` (sorted, distinct), keyed by name, and
/// the database's time as of the lock (None when no row was found): the
/// batch's `UpdatedAt`, so that the rows after the batch are known without
/// reading them back.
pub async fn lock(
    conn: &mut MySqlConnection,
    names: &[&str],
) -> Result<(HashMap<String, Current>, Option<DateTime<Utc>>), sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, name, status, running, detail, status_changed_at, settled_status, observed_ns, \
         failed_count, created_at, NOW(6) AS locked_at FROM elkservice \
         FORCE INDEX (uq_elkservice_name) WHERE name IN (",
    );
    let mut list = q.separated(", ");
    for name in pow2_padded(names) {
        list.push_bind(*name);
    }
    // Read, and so locked, along the name index: in name order, with no sort,
    // and only these rows. With a long list the optimizer would rather scan
    // the table, which under FOR UPDATE locks every row of it.
    q.push(") ORDER BY name FOR UPDATE");
    let rows = q.build().fetch_all(conn).await?;
    let at = rows.first().map(|r| r.try_get("locked_at")).transpose()?;
    let found = rows
        .iter()
        .map(|r| {
            let name = name(r)?;
            Ok((
                name.as_str().to_owned(),
                Current {
                    id: r.try_get("id")?,
                    name,
                    status: status(r, "status")?,
                    running: r.try_get("running")?,
                    detail: r.try_get("detail")?,
                    status_changed_at: r.try_get("status_changed_at")?,
                    settled: optional_status(r, "settled_status")?,
                    observed_ns: r.try_get("observed_ns")?,
                    failed_count: r.try_get("failed_count")?,
                    created_at: r.try_get("created_at")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((found, at))
}

/// Create a row (status `unknown`, never observed) for each name, and return
/// the names this call created. One statement each: new services are rare,
/// and only so can a name that another writer registered at the same moment
/// be told apart (its creation is that writer's feed entry, not this one's).
pub async fn register<'a>(
    conn: &mut MySqlConnection,
    names: &[&'a str],
) -> Result<Vec<&'a str>, sqlx::Error> {
    let mut created = Vec::new();
    for name in names {
        // IGNORE: another writer may register the same name at the same moment.
        let done = sqlx::query("INSERT IGNORE INTO elkservice (name) VALUES (?)")
            .bind(*name)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() == 1 {
            created.push(*name);
        }
    }
    Ok(created)
}

/// Write each row's new state, `UpdatedAt` being `at` (the time of the lock).
pub async fn update(
    conn: &mut MySqlConnection,
    updates: &[RowUpdate<'_>],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for chunk in pow2_chunks(updates) {
        // Each id exists, so every line takes the ON DUPLICATE KEY UPDATE path.
        // FailedCount stops at the column's maximum instead of failing the batch.
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO elkservice (id, name, status, settled_status, running, detail, \
             failed_count, observed_ns, watcher, status_changed_at, last_checked_at, updated_at) ",
        );
        q.push_values(chunk, |mut row, u| {
            row.push_bind(u.id)
                .push_bind(u.event.service.as_str())
                .push_bind(u.event.status.as_str())
                .push_bind(u.settled.map(Status::as_str))
                .push_bind(u.event.running)
                .push_bind(u.event.detail.as_deref())
                .push_bind(u.failed_increment)
                .push_bind(u.event.observed_ns())
                .push_bind(u.event.watcher.as_str())
                .push_bind(u.status_changed_at)
                .push_bind(u.event.observed_at)
                .push_bind(at);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE status = VALUES(status), running = VALUES(running), \
             detail = VALUES(detail), \
             failed_count = failed_count + LEAST(VALUES(failed_count), 4294967295 - failed_count), \
             observed_ns = VALUES(observed_ns), watcher = VALUES(watcher), \
             settled_status = COALESCE(VALUES(settled_status), settled_status), \
             status_changed_at = COALESCE(VALUES(status_changed_at), status_changed_at), \
             last_checked_at = VALUES(last_checked_at), updated_at = VALUES(updated_at)",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// When each of `names` was deleted through the API (nanoseconds since the
/// epoch, by the database's clock), for those that were.
pub async fn tombstones(
    conn: &mut MySqlConnection,
    names: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut deleted = HashMap::new();
    for chunk in pow2_chunks(names) {
        let mut q = QueryBuilder::<MySql>::new(
            "SELECT name, deleted_ns FROM elkservice_tombstone WHERE name IN (",
        );
        let mut list = q.separated(", ");
        for name in chunk {
            list.push_bind(*name);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *conn).await? {
            deleted.insert(name(&row)?.as_str().to_owned(), row.try_get("deleted_ns")?);
        }
    }
    Ok(deleted)
}

/// Write a row's new decided state outside a batch (a vote went stale): a
/// transition, at the database's time. The caller holds the row's lock.
pub async fn set_decided(
    conn: &mut MySqlConnection,
    id: i64,
    status: Status,
    running: bool,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE elkservice SET status = ?, running = ?, detail = ?, status_changed_at = NOW(6), \
         settled_status = COALESCE(?, settled_status) WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(running)
    .bind(detail)
    .bind(status.settled().map(Status::as_str))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
