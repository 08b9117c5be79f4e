//! `elkservice_vote`: each watcher's latest observation of each service. The
//! writer reads and casts votes while it holds the rows' locks, so the vote
//! and the decision it leads to commit together.

use super::columns::{name, pow2_chunks, status};
use crate::domain::Vote;
use crate::event::StatusEvent;
use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlConnection, QueryBuilder, Row};
use std::collections::HashMap;

fn time_of(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

const SELECT_VOTES: &str = "SELECT service_id, watcher, status, running, planned, detail, \
     observed_ns, fresh FROM elkservice_vote";

/// Add `rows` (votes in service and watcher order) to `votes`, by service Id.
fn group(
    rows: &[sqlx::mysql::MySqlRow],
    votes: &mut HashMap<i64, Vec<Vote>>,
) -> Result<(), sqlx::Error> {
    for row in rows {
        let (id, vote) = decode(row)?;
        votes.entry(id).or_default().push(vote);
    }
    Ok(())
}

/// The votes on each of `ids`, by watcher id.
pub async fn load(
    conn: &mut MySqlConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<Vote>>, sqlx::Error> {
    let mut votes: HashMap<i64, Vec<Vote>> = HashMap::new();
    for chunk in pow2_chunks(ids) {
        let mut q = QueryBuilder::<MySql>::new(SELECT_VOTES);
        q.push(" WHERE service_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(") ORDER BY service_id, watcher");
        group(&q.build().fetch_all(&mut *conn).await?, &mut votes)?;
    }
    Ok(votes)
}

/// Every vote, by service Id: what the api shows with each row.
pub async fn all(conn: &mut MySqlConnection) -> Result<HashMap<i64, Vec<Vote>>, sqlx::Error> {
    let mut votes = HashMap::new();
    let rows = sqlx::query(&format!("{SELECT_VOTES} ORDER BY service_id, watcher"))
        .fetch_all(&mut *conn)
        .await?;
    group(&rows, &mut votes)?;
    Ok(votes)
}

fn decode(row: &sqlx::mysql::MySqlRow) -> Result<(i64, Vote), sqlx::Error> {
    Ok((
        row.try_get("service_id")?,
        Vote {
            watcher: row.try_get("watcher")?,
            status: status(row, "status")?,
            running: row.try_get("running")?,
            observed_at: time_of(row.try_get("observed_ns")?),
            detail: row.try_get("detail")?,
            fresh: row.try_get("fresh")?,
            planned: row.try_get("planned")?,
        },
    ))
}

/// Record each `(service Id, event)` as its watcher's vote on that service.
pub async fn cast(
    conn: &mut MySqlConnection,
    ballots: &[(i64, &StatusEvent)],
) -> Result<(), sqlx::Error> {
    for chunk in pow2_chunks(ballots) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO elkservice_vote \
             (service_id, watcher, status, running, planned, detail, observed_ns, fresh) ",
        );
        q.push_values(chunk, |mut row, (id, e)| {
            row.push_bind(*id)
                .push_bind(e.watcher.as_str())
                .push_bind(e.status.as_str())
                .push_bind(e.running)
                .push_bind(e.planned)
                .push_bind(e.detail.as_deref())
                .push_bind(e.observed_ns())
                .push_bind(true);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE status = VALUES(status), running = VALUES(running), \
             planned = VALUES(planned), detail = VALUES(detail), \
             observed_ns = VALUES(observed_ns), fresh = TRUE",
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Names of services (at most 1000) with a vote still marked fresh but
/// observed before `cutoff_ns`, in name order.
pub async fn aging(conn: &mut MySqlConnection, cutoff_ns: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT e.name FROM elkservice_vote v JOIN elkservice e ON e.id = v.service_id \
         WHERE v.fresh AND v.observed_ns < ? ORDER BY e.name LIMIT 1000",
    )
    .bind(cutoff_ns)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(name(r)?.as_str().to_owned()))
        .collect()
}

/// Mark the votes on `ids` observed before `cutoff_ns` as no longer fresh.
pub async fn mark_stale(
    conn: &mut MySqlConnection,
    ids: &[i64],
    cutoff_ns: i64,
) -> Result<(), sqlx::Error> {
    for chunk in pow2_chunks(ids) {
        let mut q = QueryBuilder::<MySql>::new(
            "UPDATE elkservice_vote SET fresh = FALSE WHERE fresh AND observed_ns < ",
        );
        q.push_bind(cutoff_ns).push(" AND service_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Delete the votes observed before `cutoff_ns`, so that their watchers
/// leave the quorum's base; returns how many went.
pub async fn forget_before(conn: &mut MySqlConnection, cutoff_ns: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM elkservice_vote WHERE observed_ns < ?")
        .bind(cutoff_ns)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Delete every vote of `watcher`; returns how many went.
pub async fn forget_watcher(conn: &mut MySqlConnection, watcher: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM elkservice_vote WHERE watcher = ?")
        .bind(watcher)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// A watcher, as its votes show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WatcherBody))]
#[serde(rename_all = "PascalCase")]
pub struct Watcher {
    /// Its `watcher.id`.
    #[cfg_attr(feature = "openapi", schema(example = "watcher-a"))]
    pub id: String,
    /// Its newest observation of any service.
    pub last_seen_at: DateTime<Utc>,
    /// How many services it votes on.
    pub services: u64,
    /// False once every vote of it is older than the writer's
    /// `stale_after_secs`: it has gone silent, and abstains.
    pub fresh: bool,
}

/// Every watcher that has a vote, by id.
pub async fn watchers(conn: &mut MySqlConnection) -> Result<Vec<Watcher>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT watcher, MAX(observed_ns) AS last_ns, COUNT(*) AS services, \
         MAX(fresh) AS fresh FROM elkservice_vote GROUP BY watcher ORDER BY watcher",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Watcher {
                id: r.try_get("watcher")?,
                last_seen_at: time_of(r.try_get("last_ns")?),
                services: r.try_get::<i64, _>("services")? as u64,
                fresh: r.try_get::<i8, _>("fresh")? != 0,
            })
        })
        .collect()
}
