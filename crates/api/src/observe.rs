//! What the API tells its operators about each request: one log line (method,
//! route, status, latency, request id), the `X-Request-Id` header, and
//! Prometheus metrics ([`crate::metrics`]). Everything a request logs, its
//! 5xx included, is logged inside a `request` span that carries the id.

use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's request id is kept when it is short and printable; otherwise a
/// new one is made: a random (version 4) UUID from the thread's generator,
/// which `Uuid::new_v4` would take from the kernel, a system call per request.
fn request_id(req: &ServiceRequest) -> HeaderValue {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|v| v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(|| {
            let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
            HeaderValue::from_str(&id.to_string()).expect("uuid is ASCII")
        })
}

/// The method as a metric label: the standard ones as they are, anything else
/// `other`. The HTTP parser accepts any token as a method, and a label per
/// made-up method would let clients grow `/metrics` without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
    let mut res = next.call(req).instrument(span.clone()).await?;
    let _in_request = span.enter();
    let elapsed = start.elapsed();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        state
            .metrics
            .record(method_label(&method), &route, status, elapsed);
    }
    tracing::info!(
        target: "elkservice::http",
        method = %method,
        route = %route,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1e3,
        request_id = id.to_str().unwrap_or_default(),
        "request"
    );
    res.headers_mut().insert(REQUEST_ID, id);
    Ok(res)
}
