//! Who may call a handler: [`Authorized`] (a known bearer key, for writes) and
//! [`ReadAccess`] (open, unless `api.auth_reads` asks for a key). The keys
//! themselves are in [`crate::keys`].

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use std::future::{ready, Ready};

fn check(req: &HttpRequest) -> Result<(), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered");
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("send Authorization: Bearer <key>"))?;
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be: Bearer <key>",
        ))?;
    if state.keys.accepts(key) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("unknown API key"))
    }
}

/// Extractor for handlers that change data: a known bearer key is required.
pub struct Authorized;

impl FromRequest for Authorized {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check(req).map(|()| Authorized))
    }
}

/// Extractor for handlers that read: open unless `api.auth_reads` is set.
pub struct ReadAccess;

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let open = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| !s.auth_reads);
        ready(if open {
            Ok(ReadAccess)
        } else {
            check(req).map(|()| ReadAccess)
        })
    }
}
