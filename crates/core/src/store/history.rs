//! `elkservice_event`: one row per status transition, whoever caused it (a
//! watcher's observation applied by the writer, or a client through the api).

use super::columns::{name, optional_status, statement_chunks, status};
use super::script::Script;
use crate::domain::{ServiceEvent, ServiceName, Status};
use chrono::{DateTime, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::{FromRow, MySql, MySqlConnection, QueryBuilder, Row};

/// The columns of `elkservice_event` that make a [`ServiceEvent`].
const EVENT_COLUMNS: &str =
    "id, service_id, from_status, status, running, detail, observed_at, source";

/// What [`insert`] and [`push_insert`] begin with, before their values.
const INSERT_HEAD: &str = "INSERT INTO elkservice_event \
     (service_id, from_status, status, running, detail, observed_at, source) ";

/// One transition to record.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow<'a> {
    pub service_id: i64,
    /// None for a row's first status.
    pub from: Option<Status>,
    pub status: Status,
    pub running: bool,
    pub detail: Option<&'a str>,
    /// When it was observed; None means now, by the database's clock.
    pub observed_at: Option<DateTime<Utc>>,
    /// The watcher's id, or `api`.
    pub source: &'a str,
}

/// Record `rows`, in as few statements as their shapes allow.
pub async fn insert(
    conn: &mut MySqlConnection,
    rows: &[HistoryRow<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in statement_chunks(rows) {
        let mut q = QueryBuilder::<MySql>::new(INSERT_HEAD);
        q.push_values(chunk, |mut row, h| {
            row.push_bind(h.service_id)
                .push_bind(h.from.map(Status::as_str))
                .push_bind(h.status.as_str())
                .push_bind(h.running)
                .push_bind(h.detail);
            match h.observed_at {
                Some(at) => row.push_bind(at),
                None => row.push("NOW(6)"),
            };
            row.push_bind(h.source);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// [`insert`], as statements of `script`.
pub fn push_insert(script: &mut Script, rows: &[HistoryRow<'_>]) {
    script.insert(INSERT_HEAD, rows, |script, h| {
        script
            .value(h.service_id)
            .push(", ")
            .value(h.from.map(Status::as_str))
            .push(", ")
            .value(h.status.as_str())
            .push(", ")
            .value(h.running)
            .push(", ")
            .value(h.detail)
            .push(", ");
        match h.observed_at {
            Some(at) => script.value(at),
            None => script.push("NOW(6)"),
        };
        script.push(", ").value(h.source);
    });
}

impl FromRow<'_, MySqlRow> for ServiceEvent {
    fn from_row(row: &MySqlRow) -> Result<Self, sqlx::Error> {
        Ok(ServiceEvent {
            id: row.try_get("id")?,
            service_id: row.try_get("service_id")?,
            from_status: optional_status(row, "from_status")?,
            status: status(row, "status")?,
            running: row.try_get("running")?,
            detail: row.try_get("detail")?,
            observed_at: row.try_get("observed_at")?,
            source: row.try_get("source")?,
        })
    }
}

/// How many transitions a service has.
pub async fn count(conn: &mut MySqlConnection, service_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM elkservice_event WHERE service_id = ?")
        .bind(service_id)
        .fetch_one(conn)
        .await
}

/// A page of a service's transitions, newest first.
pub async fn page(
    conn: &mut MySqlConnection,
    service_id: i64,
    limit: u32,
    offset: u64,
) -> Result<Vec<ServiceEvent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM elkservice_event WHERE service_id = ? \
         ORDER BY observed_at DESC, id DESC LIMIT ? OFFSET ?"
    ))
    .bind(service_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await
}

/// A service's transitions that decide its statuses in `[from, to)`: the last
/// one at or before `from` (None if there is none), then those inside, in order.
pub async fn window(
    conn: &mut MySqlConnection,
    service_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Option<ServiceEvent>, Vec<ServiceEvent>), sqlx::Error> {
    let before: Option<ServiceEvent> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM elkservice_event WHERE service_id = ? AND observed_at <= ? \
         ORDER BY observed_at DESC, id DESC LIMIT 1"
    ))
    .bind(service_id)
    .bind(from)
    .fetch_optional(&mut *conn)
    .await?;
    let inside = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM elkservice_event WHERE service_id = ? AND observed_at > ? \
         AND observed_at < ? ORDER BY observed_at, id"
    ))
    .bind(service_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    Ok((before, inside))
}

/// What [`window`] returns, for many services in two statements: the status
/// page reads a page of services' last day at once.
pub type Windows = std::collections::BTreeMap<i64, (Option<ServiceEvent>, Vec<ServiceEvent>)>;

pub async fn windows(
    conn: &mut MySqlConnection,
    service_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Windows, sqlx::Error> {
    let mut found: Windows = service_ids
        .iter()
        .map(|id| (*id, (None, Vec::new())))
        .collect();
    for ids in service_ids.chunks(256) {
        // One indexed look-up per service, in one statement.
        let mut q = QueryBuilder::<MySql>::new("");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                q.push(" UNION ALL ");
            }
            q.push(format!(
                "(SELECT {EVENT_COLUMNS} FROM elkservice_event WHERE service_id = "
            ));
            q.push_bind(*id);
            q.push(" AND observed_at <= ");
            q.push_bind(from);
            q.push(" ORDER BY observed_at DESC, id DESC LIMIT 1)");
        }
        let before: Vec<ServiceEvent> = q.build_query_as().fetch_all(&mut *conn).await?;
        for event in before {
            if let Some(slot) = found.get_mut(&event.service_id) {
                slot.0 = Some(event);
            }
        }
        let mut q = QueryBuilder::<MySql>::new(format!(
            "SELECT {EVENT_COLUMNS} FROM elkservice_event WHERE service_id IN ("
        ));
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(") AND observed_at > ");
        q.push_bind(from);
        q.push(" AND observed_at < ");
        q.push_bind(to);
        q.push(" ORDER BY service_id, observed_at, id");
        let inside: Vec<ServiceEvent> = q.build_query_as().fetch_all(&mut *conn).await?;
        for event in inside {
            if let Some(slot) = found.get_mut(&event.service_id) {
                slot.1.push(event);
            }
        }
    }
    Ok(found)
}

/// A transition into or out of a problem, with its service's name.
#[derive(Debug, Clone)]
pub struct Problem {
    pub id: i64,
    pub name: ServiceName,
    pub from_status: Option<Status>,
    pub status: Status,
    pub detail: Option<String>,
    pub observed_at: DateTime<Utc>,
}

/// The newest `limit` transitions into or out of `down` or `degraded`,
/// newest first. Walked backwards by the primary key, it stops at `limit`
/// matches.
pub async fn problems(conn: &mut MySqlConnection, limit: u32) -> Result<Vec<Problem>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.id, s.name, e.from_status, e.status, e.detail, e.observed_at \
         FROM elkservice_event e JOIN elkservice s ON s.id = e.service_id \
         WHERE e.status IN ('down', 'degraded') OR e.from_status IN ('down', 'degraded') \
         ORDER BY e.id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Problem {
                id: row.try_get("id")?,
                name: name(row)?,
                from_status: optional_status(row, "from_status")?,
                status: status(row, "status")?,
                detail: row.try_get("detail")?,
                observed_at: row.try_get("observed_at")?,
            })
        })
        .collect()
}
