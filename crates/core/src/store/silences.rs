//! Silences: a glob over service names and when it ends.

use crate::glob::Glob;
use chrono::{DateTime, Utc};
use sqlx::{MySqlConnection, Row};

/// Longest comment kept.
pub const COMMENT_MAX_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub pattern: Glob,
    pub until: DateTime<Utc>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

fn decode(r: &sqlx::mysql::MySqlRow) -> Result<Silence, sqlx::Error> {
    let raw: String = r.try_get("match_glob")?;
    Ok(Silence {
        id: r.try_get("id")?,
        pattern: Glob::parse(&raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        until: r.try_get("until")?,
        comment: r.try_get("comment")?,
        created_at: r.try_get("created_at")?,
    })
}

const COLUMNS: &str = "id, match_glob, until, comment, created_at";

pub async fn insert(
    conn: &mut MySqlConnection,
    pattern: &Glob,
    until: DateTime<Utc>,
    comment: &str,
) -> Result<Silence, sqlx::Error> {
    let id =
        sqlx::query("INSERT INTO elkservice_silence (match_glob, until, comment) VALUES (?, ?, ?)")
            .bind(pattern.as_str())
            .bind(until)
            .bind(comment)
            .execute(&mut *conn)
            .await?
            .last_insert_id() as i64;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM elkservice_silence WHERE id = ?"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    decode(&row)
}

/// The silences that have not ended by `now`, soonest to end first.
pub async fn active(
    conn: &mut MySqlConnection,
    now: DateTime<Utc>,
) -> Result<Vec<Silence>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM elkservice_silence WHERE until > ? ORDER BY until, id"
    ))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(decode)
    .collect()
}

/// Whether a silence existed; it is gone either way.
pub async fn delete(conn: &mut MySqlConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM elkservice_silence WHERE id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
