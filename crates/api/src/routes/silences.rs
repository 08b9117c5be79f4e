//! `/silences`: hold back notifications about the services whose names match
//! a glob, until a given time (a planned maintenance, say). The notifier reads
//! them from the same table.

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use elkservice_core::glob::Glob;
use elkservice_core::json::Object;
use elkservice_core::store::silences::{self, Silence, COMMENT_MAX_LEN};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The furthest ahead a silence may end: a forgotten one must not hide
/// problems for ever.
pub const MAX_SILENCE_DAYS: i64 = 30;

/// A new silence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// A glob over service names: `*` any run of characters, `?` one.
    #[serde(rename = "Match")]
    #[schema(example = "elasticsearch*")]
    pub pattern: String,
    /// When it ends, RFC 3339: in the future, at most 30 days ahead.
    #[serde(rename = "Until")]
    #[schema(example = "2026-11-26T06:00:00Z")]
    pub until: String,
    /// Why, for the people who will see it.
    #[serde(rename = "Comment", default)]
    #[schema(example = "upgrading the cluster")]
    pub comment: String,
}

/// A silence as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceBody {
    #[serde(rename = "Id")]
    pub id: i64,
    #[serde(rename = "Match")]
    #[schema(value_type = String)]
    pub pattern: Glob,
    #[serde(rename = "Until")]
    pub until: DateTime<Utc>,
    #[serde(rename = "Comment")]
    pub comment: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: DateTime<Utc>,
}

impl From<Silence> for SilenceBody {
    fn from(s: Silence) -> Self {
        SilenceBody {
            id: s.id,
            pattern: s.pattern,
            until: s.until,
            comment: s.comment,
            created_at: s.created_at,
        }
    }
}

impl NewSilence {
    fn validate(&self, now: DateTime<Utc>) -> Result<(Glob, DateTime<Utc>), ApiError> {
        let pattern = Glob::parse(&self.pattern)
            .map_err(|e| ApiError::invalid_field("Match", e.to_string()))?;
        let until = DateTime::parse_from_rfc3339(self.until.trim())
            .map_err(|_| ApiError::invalid_field("Until", "must be an RFC 3339 time"))?
            .with_timezone(&Utc);
        if until <= now {
            return Err(ApiError::invalid_field("Until", "must be in the future"));
        }
        if until > now + Duration::days(MAX_SILENCE_DAYS) {
            return Err(ApiError::invalid_field(
                "Until",
                format!("may be at most {MAX_SILENCE_DAYS} days ahead"),
            ));
        }
        if self.comment.chars().count() > COMMENT_MAX_LEN {
            return Err(ApiError::invalid_field(
                "Comment",
                format!("may be at most {COMMENT_MAX_LEN} characters"),
            ));
        }
        Ok((pattern, until))
    }
}

/// Silence the matching services until a time.
#[utoipa::path(post, path = "/silences", operation_id = "createSilence", tag = "silences",
    request_body = NewSilence,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created; `Location` names it", body = SilenceBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid (a bad glob, `Until` not ahead or over 30 days ahead)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn create(
    _: Authorized,
    state: web::Data<AppState>,
    body: web::Json<Object<NewSilence>>,
) -> Result<HttpResponse, ApiError> {
    let Object(body) = body.into_inner();
    let (pattern, until) = body.validate(Utc::now())?;
    let mut conn = state.pool.acquire().await?;
    let silence = silences::insert(&mut conn, &pattern, until, &body.comment).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/silences/{}", silence.id)))
        .json(SilenceBody::from(silence)))
}

/// The silences in force, the soonest to end first.
#[utoipa::path(get, path = "/silences", operation_id = "listSilences", tag = "silences",
    responses(
        (status = 200, description = "Silences that have not ended", body = [SilenceBody]),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(_: ReadAccess, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let active = silences::active(&mut conn, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(
        active
            .into_iter()
            .map(SilenceBody::from)
            .collect::<Vec<_>>(),
    ))
}

/// End a silence now.
#[utoipa::path(delete, path = "/silences/{Id}", operation_id = "deleteSilence", tag = "silences",
    params(("Id" = i64, Path, description = "The silence's Id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.pool.acquire().await?;
    if silences::delete(&mut conn, id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("no silence with Id {id}")))
    }
}
