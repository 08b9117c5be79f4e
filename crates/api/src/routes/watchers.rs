//! `/watchers`: the watchers whose votes decide the rows (see the writer's
//! quorum rule), and forgetting one that is gone for good.

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use elkservice_core::store::votes;
use serde::Serialize;
use utoipa::ToSchema;

/// A watcher, as its votes show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct WatcherBody {
    /// Its `watcher.id`.
    #[schema(example = "watcher-a")]
    pub id: String,
    /// Its newest observation of any service.
    pub last_seen_at: DateTime<Utc>,
    /// How many services it votes on.
    pub services: u64,
    /// False once every vote of it is older than the writer's
    /// `stale_after_secs`: it has gone silent, and abstains.
    pub fresh: bool,
}

/// Every watcher that has a vote, by Id.
#[utoipa::path(get, path = "/watchers", operation_id = "listWatchers", tag = "watchers",
    responses(
        (status = 200, description = "The watchers", body = [WatcherBody]),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(_: ReadAccess, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    Ok(HttpResponse::Ok().json(all(&mut conn).await?))
}

/// Every watcher that has a vote, by Id, as the table has them.
pub async fn all(conn: &mut sqlx::MySqlConnection) -> Result<Vec<WatcherBody>, sqlx::Error> {
    Ok(bodies(votes::watchers(conn).await?))
}

/// The same from the read model when it is fresh (what the status page
/// shows, up to a second behind), else from the table.
pub async fn shown(
    state: &AppState,
    conn: &mut sqlx::MySqlConnection,
) -> Result<Vec<WatcherBody>, sqlx::Error> {
    match state.model.as_ref().and_then(|m| m.watchers()) {
        Some(watchers) => Ok(bodies(watchers)),
        None => all(conn).await,
    }
}

fn bodies(watchers: Vec<votes::Watcher>) -> Vec<WatcherBody> {
    watchers
        .into_iter()
        .map(|w| WatcherBody {
            id: w.id,
            last_seen_at: w.last_seen_at,
            services: w.services,
            fresh: w.fresh,
        })
        .collect()
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
