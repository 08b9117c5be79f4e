//! Rows of `elkservice`, one at a time: what the api's handlers run.

use super::columns::{name, pow2_padded, status, SERVICE_COLUMNS};
use super::script::{Script, MAX_ROWS};
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
            votes: Vec::new(),
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

/// One row by its name, without its votes.
pub async fn fetch_by_name(
    conn: &mut MySqlConnection,
    name: &ServiceName,
) -> Result<Option<Service>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM elkservice WHERE name = ?"
    ))
    .bind(name.as_str())
    .fetch_optional(conn)
    .await
}

/// One row, with its votes.
pub async fn fetch(conn: &mut MySqlConnection, id: i64) -> Result<Option<Service>, sqlx::Error> {
    let found: Option<Service> = sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM elkservice WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut found: Vec<Service> = found.into_iter().collect();
    with_votes(conn, &mut found).await?;
    Ok(found.pop())
}

/// Give each of `rows` its votes, as a client reads a whole row (and its
/// `ETag`). Rows bound for feed entries need not: the feed keeps no votes.
pub async fn with_votes<'a>(
    conn: &mut MySqlConnection,
    rows: impl IntoIterator<Item = &'a mut Service>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<&mut Service> = rows.into_iter().collect();
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut votes = super::votes::load(conn, &ids).await?;
    for row in rows {
        row.votes = votes.remove(&row.id).unwrap_or_default();
    }
    Ok(())
}

/// The rows of `ids` that exist, by Id.
pub async fn fetch_many(
    conn: &mut MySqlConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Service>, sqlx::Error> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(256) {
        let mut q = select();
        push_ids(&mut q, chunk);
        for service in q.build_query_as::<Service>().fetch_all(&mut *conn).await? {
            found.insert(service.id, service);
        }
    }
    Ok(found)
}

/// The rows of `ids` that exist, locked until the transaction ends, and the
/// database's time as it locked them (None when none exists). At most 256
/// Ids; the rows are locked in Id order, as every locker takes them.
pub async fn lock_many(
    conn: &mut MySqlConnection,
    ids: &[i64],
) -> Result<
    (
        std::collections::HashMap<i64, Service>,
        Option<DateTime<Utc>>,
    ),
    sqlx::Error,
> {
    assert!(ids.len() <= 256, "lock_many takes at most 256 Ids");
    let mut q = QueryBuilder::new(format!(
        "SELECT {SERVICE_COLUMNS}, NOW(6) AS locked_at FROM elkservice"
    ));
    push_ids(&mut q, ids);
    q.push(" FOR UPDATE");
    let rows = q.build().fetch_all(conn).await?;
    let now = rows.first().map(|r| r.try_get("locked_at")).transpose()?;
    let found = rows
        .iter()
        .map(|r| Service::from_row(r).map(|s| (s.id, s)))
        .collect::<Result<_, _>>()?;
    Ok((found, now))
}

/// ` WHERE id IN (…)`, padded to a power of two, for few statement shapes.
fn push_ids(q: &mut QueryBuilder<'_, MySql>, ids: &[i64]) {
    q.push(" WHERE id IN (");
    let mut list = q.separated(", ");
    for id in pow2_padded(ids) {
        list.push_bind(*id);
    }
    q.push(")");
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

/// A new version of a locked row, for [`replace_many`].
pub struct Replacement<'a> {
    pub id: i64,
    pub values: RowValues<'a>,
    /// The status changes: `StatusChangedAt` moves too.
    pub status_changes: bool,
}

/// Overwrite locked rows, as statements of `script`, with `now` as their
/// `UpdatedAt` (and `StatusChangedAt` where the status changes). Give only
/// rows whose values change: the caller then knows every column without
/// reading back.
pub fn replace_many(script: &mut Script, rows: &[Replacement<'_>], now: DateTime<Utc>) {
    // `column = CASE id WHEN <id> THEN <value> … END`
    fn case<'r>(
        script: &mut Script,
        rows: &[Replacement<'r>],
        column: &str,
        value: impl Fn(&mut Script, &Replacement<'r>),
    ) {
        script.push(column).push(" = CASE id");
        for row in rows {
            script.push(" WHEN ").value(row.id).push(" THEN ");
            value(script, row);
        }
        script.push(" END");
    }
    for rows in rows.chunks(MAX_ROWS) {
        script.statement("UPDATE elkservice SET updated_at = ");
        script.value(now);
        case(script, rows, ", status_changed_at", |s, r| {
            if r.status_changes {
                s.value(now);
            } else {
                s.push("status_changed_at");
            }
        });
        case(script, rows, ", name", |s, r| {
            s.value(r.values.name.as_str());
        });
        case(script, rows, ", status", |s, r| {
            s.value(r.values.status.as_str());
        });
        case(script, rows, ", settled_status", |s, r| {
            match r.values.status.settled() {
                Some(settled) => s.value(settled.as_str()),
                None => s.push("settled_status"),
            };
        });
        case(script, rows, ", running", |s, r| {
            s.value(r.values.running);
        });
        case(script, rows, ", failed_count", |s, r| {
            s.value(r.values.failed_count);
        });
        case(script, rows, ", detail", |s, r| {
            s.value(r.values.detail);
        });
        script.push(" WHERE id IN (");
        for (i, row) in rows.iter().enumerate() {
            script.push(if i == 0 { "" } else { ", " }).value(row.id);
        }
        script.push(")");
    }
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

/// A row's `LastCheckedAt` and `UpdatedAt`, which a confirming observation
/// moves without a feed entry.
#[derive(Debug, FromRow)]
pub struct CheckTimes {
    pub id: i64,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Every row's [`CheckTimes`].
pub async fn check_times(conn: &mut MySqlConnection) -> Result<Vec<CheckTimes>, sqlx::Error> {
    sqlx::query_as("SELECT id, last_checked_at, updated_at FROM elkservice")
        .fetch_all(conn)
        .await
}
