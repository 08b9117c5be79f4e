//! `GET /notifications`: what the notifier sent, is sending, or gave up on
//! (`?status=failed`), newest first.

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ErrorBody};
use crate::listing::number;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use elkservice_core::store::notifications::{self, Attempt, Notification, Retry, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Only those in this state: pending, sent, failed, cancelled or skipped.
    pub status: Option<String>,
    /// At most this many (1-1000, default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// The notifier's notifications, newest first.
#[utoipa::path(get, path = "/notifications", operation_id = "listNotifications", tag = "notifications",
    params(NotificationParams),
    responses(
        (status = 200, description = "Notifications, newest first", body = [Notification]),
        (status = 400, description = "An unknown status, or a limit outside 1-1000", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    _: ReadAccess,
    state: web::Data<AppState>,
    params: web::Query<NotificationParams>,
) -> Result<HttpResponse, ApiError> {
    let wanted = params
        .status
        .as_deref()
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                let known: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!("status must be one of {}", known.join(", ")))
            })
        })
        .transpose()?;
    let limit = number("limit", params.limit.as_deref(), 100, 1..=1000_u32)
        .map_err(ApiError::BadRequest)?;
    let mut conn = state.pool.acquire().await?;
    Ok(HttpResponse::Ok().json(notifications::list(&mut conn, wanted, limit).await?))
}

/// A notification with every attempt to deliver it: what `GET
/// /notifications` lists, with `Attempts` the attempts themselves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct NotificationDetail {
    pub id: i64,
    /// The webhook, by the first 16 hex digits of its URL's SHA-256.
    pub webhook: String,
    /// The `Idempotency-Key` every attempt is sent with.
    pub key: String,
    pub service: String,
    /// `down`, `degraded`, `resolved`, `flapping` or `stable`.
    pub kind: String,
    /// `pending`, `sent`, `failed`, `cancelled` or `skipped`.
    pub state: String,
    pub last_error: Option<String>,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every attempt, oldest first (a retry through the api starts a fresh
    /// budget of attempts but keeps these).
    pub attempts: Vec<Attempt>,
}

impl NotificationDetail {
    fn of((n, attempts): (Notification, Vec<Attempt>)) -> Self {
        NotificationDetail {
            id: n.id,
            webhook: n.webhook,
            key: n.key,
            service: n.service,
            kind: n.kind,
            state: n.state,
            last_error: n.last_error,
            due_at: n.due_at,
            created_at: n.created_at,
            updated_at: n.updated_at,
            attempts,
        }
    }
}

/// One notification and its attempts: when, what the receiver answered,
/// how long it took, and why one failed.
#[utoipa::path(get, path = "/notifications/{Id}", operation_id = "getNotification", tag = "notifications",
    params(("Id" = i64, Path, description = "The notification's Id")),
    responses(
        (status = 200, description = "The notification", body = NotificationDetail),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 404, description = "No such notification", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn get(
    _: ReadAccess,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.pool.acquire().await?;
    match notifications::get(&mut conn, id).await? {
        Some(found) => Ok(HttpResponse::Ok().json(NotificationDetail::of(found))),
        None => Err(not_found(id)),
    }
}

/// Send a notification again, under the same `Idempotency-Key` (a receiver
/// that had it drops the repeat): one that failed, was skipped, or was sent.
/// It is pending again, due now, with a fresh budget of attempts.
#[utoipa::path(post, path = "/notifications/{Id}/retry", operation_id = "retryNotification", tag = "notifications",
    params(("Id" = i64, Path, description = "The notification's Id")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Pending again", body = NotificationDetail),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such notification", body = ErrorBody),
        (status = 409, description = "It is pending already, or was withdrawn (cancelled)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn retry(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.pool.acquire().await?;
    match notifications::retry(&mut conn, id).await? {
        Retry::Queued => {}
        Retry::NotFound => return Err(not_found(id)),
        Retry::Refused(state) => {
            return Err(ApiError::Conflict(format!(
                "notification {id} is {state}: only a failed, skipped or sent one is sent again"
            )))
        }
    }
    let found = notifications::get(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Accepted().json(NotificationDetail::of(found)))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no notification with Id {id}"))
}
