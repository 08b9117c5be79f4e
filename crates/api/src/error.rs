//! Every failure the API reports, and the one place where each becomes a status
//! code and a JSON body `{"error": "...", "detail": ...}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request")]
    BadRequest(String),
    #[error("missing or unknown API key")]
    Unauthorized(&'static str),
    #[error("not found")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("conflict")]
    Conflict(String),
    #[error("gone")]
    Gone(String),
    #[error("precondition failed")]
    PreconditionFailed(String),
    #[error("request body too large")]
    PayloadTooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    #[error("invalid request body")]
    Unprocessable(Value),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A short description of the class of error.
    #[schema(example = "not found")]
    pub error: String,
    /// What exactly was wrong: a message, or an object naming the offending field.
    #[schema(value_type = Value)]
    pub detail: Value,
}

impl ApiError {
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable(serde_json::json!({ "field": field, "message": message.into() }))
    }

    fn detail(&self) -> Value {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PreconditionFailed(m)
            | ApiError::Gone(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m) => Value::String(m.clone()),
            ApiError::Unauthorized(m) => Value::String((*m).to_owned()),
            ApiError::Unprocessable(v) => v.clone(),
            ApiError::MethodNotAllowed { allow } => Value::String(format!("allowed: {allow}")),
            // The cause goes to the log, not to the client.
            ApiError::Unavailable(_) => Value::String("retry later".into()),
            ApiError::Internal(_) => Value::Null,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable(e)
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, cause = ?std::error::Error::source(self), "request failed");
        }
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.to_string(),
            detail: self.detail(),
        })
    }
}
