//! The writer's statements: lock the rows a batch touches, register names
//! that have no row, and write the batch's new states, each as few
//! multi-row statements as the batch allows.

use super::{name, pow2_chunks, status};
use crate::domain::Status;
use crate::event::StatusEvent;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use std::collections::HashMap;

/// A service's row as a batch finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub id: i64,
    pub status: Status,
    /// The last applied observation, in nanoseconds since the epoch.
    pub observed_ns: Option<i64>,
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
}

/// Lock and read the rows of `names` (sorted, distinct), keyed by name.
pub async fn lock(
    conn: &mut MySqlConnection,
    names: &[&str],
) -> Result<HashMap<String, Current>, sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, name, status, observed_ns FROM elkservice \
         FORCE INDEX (uq_elkservice_name) WHERE name IN (",
    );
    // Padded to a power of two with the last name (a repeat changes nothing in
    // IN), so that the statement's text comes in few shapes; see pow2_chunks.
    let padded = names.len().next_power_of_two();
    let mut list = q.separated(", ");
    for i in 0..padded {
        list.push_bind(names[i.min(names.len() - 1)]);
    }
    // Read, and so locked, along the name index: in name order, with no sort,
    // and only these rows. With a long list the optimizer would rather scan
    // the table, which under FOR UPDATE locks every row of it.
    q.push(") ORDER BY name FOR UPDATE");
    let rows = q.build().fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok((
                name(r)?.as_str().to_owned(),
                Current {
                    id: r.try_get("id")?,
                    status: status(r, "status")?,
                    observed_ns: r.try_get("observed_ns")?,
                },
            ))
        })
        .collect()
}

/// Create a row (status `unknown`, never observed) for each name.
pub async fn register(conn: &mut MySqlConnection, names: &[&str]) -> Result<(), sqlx::Error> {
    for chunk in pow2_chunks(names) {
        // IGNORE: another writer may register the same name at the same moment.
        let mut q = QueryBuilder::<MySql>::new("INSERT IGNORE INTO elkservice (name) ");
        q.push_values(chunk, |mut row, name| {
            row.push_bind(*name);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Write each row's new state.
pub async fn update(
    conn: &mut MySqlConnection,
    updates: &[RowUpdate<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in pow2_chunks(updates) {
        // Each id exists, so every line takes the ON DUPLICATE KEY UPDATE path.
        // FailedCount stops at the column's maximum instead of failing the batch.
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO elkservice (id, name, status, running, detail, failed_count, \
             observed_ns, status_changed_at, last_checked_at) ",
        );
        q.push_values(chunk, |mut row, u| {
            row.push_bind(u.id)
                .push_bind(u.event.service.as_str())
                .push_bind(u.event.status.as_str())
                .push_bind(u.event.running)
                .push_bind(u.event.detail.as_deref())
                .push_bind(u.failed_increment)
                .push_bind(u.event.observed_ns())
                .push_bind(u.status_changed_at)
                .push_bind(u.event.observed_at);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE status = VALUES(status), running = VALUES(running), \
             detail = VALUES(detail), \
             failed_count = failed_count + LEAST(VALUES(failed_count), 4294967295 - failed_count), \
             observed_ns = VALUES(observed_ns), \
             status_changed_at = COALESCE(VALUES(status_changed_at), status_changed_at), \
             last_checked_at = VALUES(last_checked_at)",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}
