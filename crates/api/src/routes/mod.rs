//! HTTP routes: the service resource, silences, notifications and watchers, the status
//! page and the operational endpoints.

pub mod atom;
pub mod badge;
pub mod changes;
pub mod health;
pub mod notifications;
pub mod overview;
pub mod services;
pub mod silences;
pub mod status;
pub mod stream;
pub mod uptime;
pub mod watchers;

use crate::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse, Resource};

/// The service resource, mounted at both `/elkservice` and `/v1/elkservice` (Beego's path).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["/elkservice", "/v1/elkservice"] {
        cfg.service(
            web::scope(prefix)
                .service(
                    resource("", "GET, POST")
                        .route(web::get().to(services::list))
                        .route(web::post().to(services::create)),
                )
                // Before `/{Id}`, which would take `changes` for an Id.
                .service(resource("/changes", "GET").route(web::get().to(changes::changes)))
                .service(resource("/stream", "GET").route(web::get().to(stream::stream)))
                .service(
                    resource("/{Id}", "GET, PUT, DELETE")
                        .route(web::get().to(services::get))
                        .route(web::put().to(services::replace))
                        .route(web::delete().to(services::delete)),
                )
                .service(resource("/{Id}/events", "GET").route(web::get().to(services::events)))
                .service(resource("/{Id}/uptime", "GET").route(web::get().to(uptime::uptime))),
        );
    }
    cfg.service(
        resource("/silences", "GET, POST")
            .route(web::get().to(silences::list))
            .route(web::post().to(silences::create)),
    )
    .service(resource("/silences/{Id}", "DELETE").route(web::delete().to(silences::delete)))
    .service(resource("/notifications", "GET").route(web::get().to(notifications::list)))
    .service(resource("/notifications/{Id}", "GET").route(web::get().to(notifications::get)))
    .service(
        resource("/notifications/{Id}/retry", "POST").route(web::post().to(notifications::retry)),
    )
    .service(resource("/watchers", "GET").route(web::get().to(watchers::list)))
    .service(resource("/badge/{Name}/status.svg", "GET").route(web::get().to(badge::status)))
    .service(resource("/badge/{Name}/uptime.svg", "GET").route(web::get().to(badge::uptime)))
    .service(resource("/watchers/{Id}", "DELETE").route(web::delete().to(watchers::delete)));
    cfg.service(resource("/", "GET").route(web::get().to(status::to_page)))
        .service(resource("/status", "GET").route(web::get().to(status::to_page)))
        .service(resource("/status/", "GET").route(web::get().to(status::index)))
        .service(resource("/status/overview", "GET").route(web::get().to(overview::overview)))
        .service(resource("/status/feed.atom", "GET").route(web::get().to(atom::feed)))
        .service(resource("/status/app.js", "GET").route(web::get().to(status::script)))
        .service(resource("/status/style.css", "GET").route(web::get().to(status::style)));
    cfg.service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(health::metrics)));
}

/// A resource that answers methods other than `allow` with a JSON 405.
fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    }))
}

/// Anything no route matches.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
