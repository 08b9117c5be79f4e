//! What the API tells its operators about each request: one log line (method,
//! route, status, latency, request id), the `X-Request-Id` header, and
//! Prometheus metrics.

use crate::startup::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use sqlx::MySqlPool;
use std::time::Instant;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_size: IntGauge,
    pool_idle: IntGauge,
}

impl Metrics {
    pub fn new(pool_max: u32) -> Self {
        let registry =
            Registry::new_custom(Some("elkservice_api".into()), None).expect("valid prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let pool_size = IntGauge::new("db_pool_connections", "Open database connections")
            .expect("valid metric");
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections")
            .expect("valid metric");
        let pool_max_gauge =
            IntGauge::new("db_pool_max_connections", "Pool size limit").expect("valid metric");
        pool_max_gauge.set(pool_max.into());
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool_size.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_max_gauge),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool_size,
            pool_idle,
        }
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &MySqlPool) -> String {
        self.pool_size.set(pool.size().into());
        self.pool_idle.set(pool.num_idle() as i64);
        elkservice_core::ops::render(&self.registry)
    }
}

/// A caller's request id is kept when it is short and printable; otherwise a new one is made.
fn request_id(req: &ServiceRequest) -> HeaderValue {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|v| v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ASCII")
        })
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    let elapsed = start.elapsed();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
        let m = &state.metrics;
        m.requests
            .with_label_values(&[method.as_str(), &route, &status.to_string()])
            .inc();
        m.latency
            .with_label_values(&[method.as_str(), &route])
            .observe(elapsed.as_secs_f64());
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
