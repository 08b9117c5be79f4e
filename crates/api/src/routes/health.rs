//! `/healthz` (the process answers), `/readyz` (the database answers) and
//! `/metrics` (Prometheus text format).

use crate::state::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::time::Duration;

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    responses((status = 200, description = "The process is up", example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers within two seconds.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses(
    (status = 200, description = "Ready to serve", example = json!({"status": "ready"})),
    (status = 503, description = "The database does not answer", example = json!({"status": "unavailable", "detail": "database: not answering"})),
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(e)) => {
            // The cause is for the operator's log; a caller learns only which part is down.
            tracing::warn!(error = %e, "readiness: the database refused");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "detail": "database: not answering" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "detail": "database: no answer within 2 s" })),
    }
}

/// Prometheus metrics: requests by route and status, latency, database pool use,
/// where reads were answered, how far behind the read model is, and the
/// Server-Sent Events streams open.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            state
                .metrics
                .render(&state.pool, state.model.as_deref(), state.feed.streams()),
        )
}
