//! HTTP routes: the service resource and the operational endpoints.

pub mod health;
pub mod services;

use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};

/// The service resource, mounted at both `/elkservice` and the seed's `/v1/elkservice`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["/elkservice", "/v1/elkservice"] {
        cfg.service(
            web::scope(prefix)
                .service(
                    web::resource("")
                        .route(web::get().to(services::list))
                        .route(web::post().to(services::create))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{Id}")
                        .route(web::get().to(services::get))
                        .route(web::put().to(services::replace))
                        .route(web::delete().to(services::delete))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/{Id}/events")
                        .route(web::get().to(services::events))
                        .default_service(web::to(method_not_allowed)),
                ),
        );
    }
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Anything no route matches.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
