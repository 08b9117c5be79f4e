//! `GET /notifications`: what the notifier sent, is sending, or gave up on
//! (`?status=failed`), newest first.

use crate::auth::ReadAccess;
use crate::error::{ApiError, ErrorBody};
use crate::listing::number;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use elkservice_core::store::notifications::{self, Notification, State};
use serde::Deserialize;
use utoipa::IntoParams;

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
