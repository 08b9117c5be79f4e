//! Rows of `elkservice`, one at a time: what the api's handlers run.

use super::columns::{name, status, SERVICE_COLUMNS};
use crate::domain::{Service, ServiceName, Status};
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{FromRow, MySql, MySqlConnection, QueryBuilder, Row};

impl FromRow<'_, MySqlRow> for Service {
    fn from_row(row: &MySqlRow) -> Result<Self, sqlx::Error> {
        Ok(Service {
            id: row.try_get("id")?,
            name: name(row)?,
            status: status(row, "status")?,
            running: row.try_get("running")?,
            failed_count: row.try_get("failed_count")?,
            detail: row.try_get("detail")?,
            status_changed_at: row.try_get("status_changed_at")?,
            last_checked_at: row.try_get("last_checked_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// What a client sets on a row: everything but the times, which the database keeps.
#[derive(Debug, Clone, Copy)]
pub struct RowValues<'a> {
    pub name: &'a ServiceName,
    pub status: Status,
    pub running: bool,
    pub failed_count: u32,
    pub detail: Option<&'a str>,
}

/// `SELECT <the row> FROM elkservice`, for a caller to add a WHERE and an ORDER BY.
pub fn select() -> QueryBuilder<'static, MySql> {
    QueryBuilder::new(format!("SELECT {SERVICE_COLUMNS} FROM elkservice"))
}

/// `SELECT COUNT(*) FROM elkservice`, for a caller to add a WHERE.
pub fn count() -> QueryBuilder<'static, MySql> {
    QueryBuilder::new("SELECT COUNT(*) FROM elkservice")
}

pub async fn fetch(conn: &mut MySqlConnection, id: i64) -> Result<Option<Service>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM elkservice WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The rows of `ids` that exist, by Id.
pub async fn fetch_many(
    conn: &mut MySqlConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Service>, sqlx::Error> {
    many(conn, ids, "").await
}

/// The rows of `ids` that exist, by Id, locked until the transaction ends
/// (in Id order, as every locker takes them).
pub async fn lock_many(
    conn: &mut MySqlConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Service>, sqlx::Error> {
    many(conn, ids, " FOR UPDATE").await
}

async fn many(
    conn: &mut MySqlConnection,
    ids: &[i64],
    suffix: &str,
) -> Result<std::collections::HashMap<i64, Service>, sqlx::Error> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(256) {
        let mut q = select();
        q.push(" WHERE id IN (");
        // Padded to a power of two with a repeat, for few statement shapes.
        let mut list = q.separated(", ");
        for i in 0..chunk.len().next_power_of_two() {
            list.push_bind(chunk[i.min(chunk.len() - 1)]);
        }
        q.push(")").push(suffix);
        for service in q.build_query_as::<Service>().fetch_all(&mut *conn).await? {
            found.insert(service.id, service);
        }
    }
    Ok(found)
}

pub async fn exists(conn: &mut MySqlConnection, id: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM elkservice WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Insert a row and return its Id; with `id` None, AUTO_INCREMENT assigns one.
pub async fn insert(
    conn: &mut MySqlConnection,
    id: Option<i64>,
    row: RowValues<'_>,
) -> Result<i64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO elkservice (id, name, status, settled_status, running, failed_count, detail, \
         status_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(6))",
    )
    .bind(id)
    .bind(row.name.as_str())
    .bind(row.status.as_str())
    .bind(row.status.settled().map(Status::as_str))
    .bind(row.running)
    .bind(row.failed_count)
    .bind(row.detail)
    .execute(conn)
    .await?;
    Ok(id.unwrap_or(done.last_insert_id() as i64))
}

/// The row, locked until the transaction ends; None if there is no such row.
pub async fn lock(conn: &mut MySqlConnection, id: i64) -> Result<Option<Service>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM elkservice WHERE id = ? FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Overwrite locked rows' values in one statement; each `bool` says whether
/// that row's status changes (then its `StatusChangedAt` moves to now).
pub async fn replace_many(
    conn: &mut MySqlConnection,
    rows: &[(i64, RowValues<'_>, bool)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    // Padded to a power of two by repeating the last row (its WHEN never
    // matches twice), so few statement shapes reach the statement cache.
    let padded: Vec<_> = (0..rows.len().next_power_of_two())
        .map(|i| &rows[i.min(rows.len() - 1)])
        .collect();
    type Row<'r> = (i64, RowValues<'r>, bool);
    // `column = CASE id WHEN <id> THEN <value> … END`
    fn case<'r>(
        q: &mut QueryBuilder<'static, MySql>,
        rows: &[&Row<'r>],
        column: &str,
        value: impl Fn(&mut QueryBuilder<'static, MySql>, &Row<'r>),
    ) {
        q.push(column).push(" = CASE id");
        for row in rows {
            q.push(" WHEN ").push_bind(row.0).push(" THEN ");
            value(q, row);
        }
        q.push(" END");
    }
    let mut q = QueryBuilder::<MySql>::new("UPDATE elkservice SET ");
    case(&mut q, &padded, "status_changed_at", |q, r| {
        q.push("IF(")
            .push_bind(r.2)
            .push(", NOW(6), status_changed_at)");
    });
    case(&mut q, &padded, ", name", |q, r| {
        q.push_bind(r.1.name.as_str().to_owned());
    });
    case(&mut q, &padded, ", status", |q, r| {
        q.push_bind(r.1.status.as_str());
    });
    case(&mut q, &padded, ", settled_status", |q, r| {
        q.push("COALESCE(")
            .push_bind(r.1.status.settled().map(Status::as_str))
            .push(", settled_status)");
    });
    case(&mut q, &padded, ", running", |q, r| {
        q.push_bind(r.1.running);
    });
    case(&mut q, &padded, ", failed_count", |q, r| {
        q.push_bind(r.1.failed_count);
    });
    case(&mut q, &padded, ", detail", |q, r| {
        q.push_bind(r.1.detail.map(str::to_owned));
    });
    q.push(" WHERE id IN (");
    let mut ids = q.separated(", ");
    for row in &padded {
        ids.push_bind(row.0);
    }
    q.push(")");
    q.build().execute(conn).await?;
    Ok(())
}

/// Delete the row (its history goes with it) and leave a tombstone for its
/// name, so that no observation made before now brings it back.
pub async fn delete(conn: &mut MySqlConnection, service: &Service) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM elkservice WHERE id = ?")
        .bind(service.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO elkservice_tombstone (name, deleted_ns) \
         VALUES (?, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000000 AS SIGNED)) \
         ON DUPLICATE KEY UPDATE deleted_ns = VALUES(deleted_ns)",
    )
    .bind(service.name.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every row's `last_checked_at` and `updated_at`, which a confirming
/// observation moves without a feed entry.
pub async fn check_times(
    conn: &mut MySqlConnection,
) -> Result<Vec<(i64, Option<DateTime<Utc>>, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, last_checked_at, updated_at FROM elkservice")
        .fetch_all(conn)
        .await
}
