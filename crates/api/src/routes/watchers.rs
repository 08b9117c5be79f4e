//! `/watchers`: the watchers whose votes decide the rows (see the writer's
//! quorum rule), and forgetting one that is gone for good.

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use elkservice_core::store::votes::{self, Watcher};

/// Every watcher that has a vote, by Id.
#[utoipa::path(get, path = "/watchers", operation_id = "listWatchers", tag = "watchers",
    responses(
        (status = 200, description = "The watchers", body = [Watcher]),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(_: ReadAccess, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    Ok(HttpResponse::Ok().json(all(&mut conn).await?))
}

/// Every watcher that has a vote, by Id, as the table has them.
pub async fn all(conn: &mut sqlx::MySqlConnection) -> Result<Vec<Watcher>, sqlx::Error> {
    votes::watchers(conn).await
}

/// The same from the read model when it is fresh (what the status page
/// shows, up to a second behind), else from the table.
pub async fn shown(
    state: &AppState,
    conn: &mut sqlx::MySqlConnection,
) -> Result<Vec<Watcher>, sqlx::Error> {
    match state.model.as_ref().and_then(|m| m.watchers()) {
        Some(watchers) => Ok(watchers),
        None => all(conn).await,
    }
}

/// Forget a watcher now: its votes are deleted, so it leaves the quorum of
/// every service it reported (each is decided again at its next observation).
#[utoipa::path(delete, path = "/watchers/{Id}", operation_id = "deleteWatcher", tag = "watchers",
    params(("Id" = String, Path, description = "The watcher's id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No watcher with this id has a vote", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.pool.acquire().await?;
    if votes::forget_watcher(&mut conn, &id).await? > 0 {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no watcher {id:?} has a vote")))
    }
}
