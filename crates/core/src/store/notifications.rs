//! The notifier's tables: the outbox of notifications (with each delivery's
//! state), what it follows per webhook and service, and its cursor in the
//! change feed. Written by the notifier; the api will read the outbox.

use crate::domain::Status;
use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;

/// A notification's state in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// To be delivered at `due_at` (again, after a failed attempt).
    Pending,
    Sent,
    /// Given up after the last attempt.
    Failed,
    /// Withdrawn before it was due (a problem shorter than `min_down_secs`).
    Cancelled,
    /// Not sent: a silence covered it, or the problem it resolves was never
    /// notified.
    Skipped,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Pending,
        State::Sent,
        State::Failed,
        State::Cancelled,
        State::Skipped,
    ];

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Skipped => "skipped",
        }
    }
}

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A problem began: the service is in this status (`down`, `degraded`).
    Problem(Status),
    /// A problem that was told has ended.
    Resolved,
    /// Problems began and ended too often: nothing more until it is stable.
    Flapping,
    /// A flapping service has been stable for the window.
    Stable,
}

impl Kind {
    /// As stored and as webhooks see it (`Notification` in a JSON body).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Problem(status) => status.as_str(),
            Kind::Resolved => "resolved",
            Kind::Flapping => "flapping",
            Kind::Stable => "stable",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub webhook: String,
    pub key: String,
    pub service: String,
    pub kind: Kind,
    /// For a resolution: the key of the problem's notification.
    pub problem_key: Option<String>,
    pub body: String,
    pub due_at: DateTime<Utc>,
}

/// A queued notification, as the deliverer reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Queued {
    pub id: i64,
    pub webhook: String,
    #[sqlx(rename = "idempotency_key")]
    pub key: String,
    #[sqlx(rename = "service_name")]
    pub service: String,
    pub kind: String,
    pub problem_key: Option<String>,
    pub body: String,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Queue one; a key already queued for the webhook is left as it is (the
/// planner may run an entry again after a crash).
pub async fn queue(conn: &mut MySqlConnection, n: &NewNotification) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT IGNORE INTO elkservice_notification \
         (webhook, idempotency_key, service_name, kind, problem_key, body, state, due_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
    )
    .bind(&n.webhook)
    .bind(&n.key)
    .bind(&n.service)
    .bind(n.kind.as_str())
    .bind(&n.problem_key)
    .bind(&n.body)
    .bind(n.due_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Withdraw a notification that is still pending.
pub async fn cancel(
    conn: &mut MySqlConnection,
    webhook: &str,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE elkservice_notification SET state = 'cancelled' \
         WHERE webhook = ? AND idempotency_key = ? AND state = 'pending'",
    )
    .bind(webhook)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// The oldest pending notifications, due or not, in the order they were queued.
pub async fn pending(conn: &mut MySqlConnection, limit: u32) -> Result<Vec<Queued>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, webhook, idempotency_key, service_name, kind, problem_key, body, due_at, attempts \
         FROM elkservice_notification WHERE state = 'pending' ORDER BY id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The state of a webhook's notification by key, if there is one.
pub async fn state_of(
    conn: &mut MySqlConnection,
    webhook: &str,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT state FROM elkservice_notification WHERE webhook = ? AND idempotency_key = ?",
    )
    .bind(webhook)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Record the end of a delivery, or the time of its next attempt.
pub async fn settle(
    conn: &mut MySqlConnection,
    id: i64,
    state: State,
    attempts: i32,
    due_at: DateTime<Utc>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE elkservice_notification SET state = ?, attempts = ?, due_at = ?, last_error = ? \
         WHERE id = ?",
    )
    .bind(state.as_str())
    .bind(attempts)
    .bind(due_at)
    .bind(error.map(|e| e.chars().take(1024).collect::<String>()))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where the planner is in the change feed; the first time, the feed's end
/// (what happened before the notifier existed is not news).
pub async fn cursor(conn: &mut MySqlConnection, start_at: i64) -> Result<i64, sqlx::Error> {
    sqlx::query("INSERT IGNORE INTO elkservice_notifier_cursor (name, seq) VALUES ('planner', ?)")
        .bind(start_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "SELECT seq FROM elkservice_notifier_cursor WHERE name = 'planner' FOR UPDATE",
    )
    .fetch_one(conn)
    .await
}

pub async fn advance(conn: &mut MySqlConnection, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE elkservice_notifier_cursor SET seq = ? WHERE name = 'planner'")
        .bind(seq)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the planner keeps for a webhook and a service (its own JSON).
pub async fn track(
    conn: &mut MySqlConnection,
    webhook: &str,
    service: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT track FROM elkservice_notifier_track WHERE webhook = ? AND service_name = ?",
    )
    .bind(webhook)
    .bind(service)
    .fetch_optional(conn)
    .await
}

/// Keep a track; `wake_at`: when it next has something to send on its own.
pub async fn save_track(
    conn: &mut MySqlConnection,
    webhook: &str,
    service: &str,
    track: &str,
    wake_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO elkservice_notifier_track (webhook, service_name, track, wake_at) \
         VALUES (?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE track = VALUES(track), wake_at = VALUES(wake_at)",
    )
    .bind(webhook)
    .bind(service)
    .bind(track)
    .bind(wake_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Drop a track: what it held is what a missing one reads as.
pub async fn forget_track(
    conn: &mut MySqlConnection,
    webhook: &str,
    service: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM elkservice_notifier_track WHERE webhook = ? AND service_name = ?")
        .bind(webhook)
        .bind(service)
        .execute(conn)
        .await?;
    Ok(())
}

/// The tracks with something to send by `now`: (webhook, service, track).
pub async fn waking(
    conn: &mut MySqlConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT webhook, service_name, track FROM elkservice_notifier_track \
         WHERE wake_at <= ? ORDER BY wake_at LIMIT 500 FOR UPDATE",
    )
    .bind(now)
    .fetch_all(conn)
    .await
}

/// The columns that make a [`Notification`].
const NOTIFICATION_COLUMNS: &str = "id, webhook, idempotency_key, service_name, kind, state, \
     attempts, last_error, due_at, created_at, updated_at";

/// A notification as people read it (`GET /notifications`).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Notification {
    pub id: i64,
    /// The webhook, by the first 16 hex digits of its URL's SHA-256.
    pub webhook: String,
    /// The `Idempotency-Key` it is sent with.
    #[sqlx(rename = "idempotency_key")]
    pub key: String,
    #[sqlx(rename = "service_name")]
    pub service: String,
    /// `down`, `degraded`, `resolved`, `flapping` or `stable`.
    pub kind: String,
    /// `pending`, `sent`, `failed`, `cancelled` or `skipped`.
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The newest notifications, in one state or all.
pub async fn list(
    conn: &mut MySqlConnection,
    state: Option<State>,
    limit: u32,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM elkservice_notification \
         WHERE (? IS NULL OR state = ?) ORDER BY id DESC LIMIT ?"
    ))
    .bind(state.map(State::as_str))
    .bind(state.map(State::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "PascalCase")]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// What the receiver answered; none when it could not be reached.
    pub status_code: Option<i16>,
    pub latency_ms: i32,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Record an attempt at delivering the notification `id`.
pub async fn attempted(
    conn: &mut MySqlConnection,
    id: i64,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO elkservice_notification_attempt \
         (notification_id, at, status_code, latency_ms, error) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(attempt.at)
    .bind(attempt.status_code)
    .bind(attempt.latency_ms)
    .bind(
        attempt
            .error
            .as_deref()
            .map(|e| e.chars().take(1024).collect::<String>()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One notification, with its attempts in order.
pub async fn get(
    conn: &mut MySqlConnection,
    id: i64,
) -> Result<Option<(Notification, Vec<Attempt>)>, sqlx::Error> {
    let found: Option<Notification> = sqlx::query_as(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM elkservice_notification WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(notification) = found else {
        return Ok(None);
    };
    let attempts = sqlx::query_as(
        "SELECT at, status_code, latency_ms, error FROM elkservice_notification_attempt \
         WHERE notification_id = ? ORDER BY id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(Some((notification, attempts)))
}

/// What asking to send a notification again did.
#[derive(Debug, PartialEq, Eq)]
pub enum Retry {
    /// Pending again, due now, with a fresh budget of attempts.
    Queued,
    NotFound,
    /// Pending already, or withdrawn on purpose (`cancelled`): the state.
    Refused(String),
}

/// Send the notification `id` again, under its key: one that failed, was
/// skipped, or was sent and should be sent once more.
pub async fn retry(conn: &mut MySqlConnection, id: i64) -> Result<Retry, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE elkservice_notification SET state = 'pending', attempts = 0, due_at = NOW(6) \
         WHERE id = ? AND state IN ('failed', 'skipped', 'sent')",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(Retry::Queued);
    }
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM elkservice_notification WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(state.map_or(Retry::NotFound, Retry::Refused))
}
