//! Optimistic concurrency: each row has an `ETag` (a digest of its JSON, so
//! it changes whenever anything a client sees changes, the writer's updates
//! included), and `PUT`/`DELETE` honour `If-Match`, answering 412 when the
//! row is no longer the one the client read.

use crate::error::ApiError;
pub use crate::model::etag;
use actix_web::dev::Payload;
use actix_web::http::header::{self, Header};
use actix_web::{FromRequest, HttpRequest};
use elkservice_core::Service;
use std::future::{ready, Ready};

/// The request's `If-Match`, if it sent one; a malformed one is a 400.
pub struct IfMatch(Option<header::IfMatch>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(if req.headers().contains_key(header::IF_MATCH) {
            // actix skips the items it cannot parse: none left means none was valid.
            match header::IfMatch::parse(req) {
                Ok(header::IfMatch::Items(tags)) if tags.is_empty() => Err(malformed()),
                Ok(h) => Ok(IfMatch(Some(h))),
                Err(_) => Err(malformed()),
            }
        } else {
            Ok(IfMatch(None))
        })
    }
}

fn malformed() -> ApiError {
    ApiError::BadRequest("If-Match must be * or a list of quoted entity tags".into())
}

impl IfMatch {
    /// Whether a write may go ahead on `current` (the row as it is now, locked).
    pub fn check(&self, current: &Service) -> Result<(), ApiError> {
        let matches = match &self.0 {
            None | Some(header::IfMatch::Any) => true,
            Some(header::IfMatch::Items(tags)) => {
                let now = etag(current);
                tags.iter().any(|t| t.strong_eq(&now))
            }
        };
        if matches {
            Ok(())
        } else {
            Err(ApiError::PreconditionFailed(format!(
                "the service changed since it was read; its ETag is now {}",
                etag(current)
            )))
        }
    }
}
