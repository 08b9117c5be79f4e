//! What operators scrape: Prometheus metrics in a registry of the program's
//! own, and the small `/healthz` + `/readyz` + `/metrics` listener of the
//! writer, the watcher and the notifier.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry,
};
use serde_json::{Map, Value};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// A registry whose metric names start with `<prefix>_`.
pub fn registry(prefix: &str) -> Registry {
    Registry::new_custom(Some(prefix.into()), None).expect("a valid prefix")
}

/// Every program's metrics are made by the functions below, each of which
/// registers what it makes: a name or label that is not valid, or one
/// registered twice, is a programming error caught by the first test.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("registered once");
    metric
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help))
}

/// Counters told apart by `labels`.
pub fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help))
}

/// A gauge of a fractional quantity (seconds, say).
pub fn float_gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, Gauge::new(name, help))
}

pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    register(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)),
    )
}

/// Histograms told apart by `labels`.
pub fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> HistogramVec {
    register(
        registry,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels),
    )
}

/// The Prometheus text exposition of a registry.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("the exposition is UTF-8")
}

/// The operators' listener, bound at start-up so that a port in use is a
/// start-up error, not a failure later.
pub fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))
}

/// The port `listener` has (the one the system chose, for port 0).
pub fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// What `/readyz` answers: ready while every part the program needs is
/// connected (each a gauge that is 1 while it is, so `/metrics` says the
/// same) and every further condition of the program's holds; the JSON names
/// each part, and what the conditions add.
#[derive(Clone, Default)]
pub struct Ready {
    parts: Vec<(&'static str, IntGauge)>,
    conditions: Vec<Arc<Condition>>,
}

/// A condition of readiness, which may add what it looked at to the answer.
type Condition = dyn Fn(&mut Map<String, Value>) -> bool + Send + Sync;

impl Ready {
    /// Ready only while `connected` is 1; shown as `part`.
    pub fn needs(mut self, part: &'static str, connected: &IntGauge) -> Self {
        self.parts.push((part, connected.clone()));
        self
    }

    pub fn and(
        mut self,
        condition: impl Fn(&mut Map<String, Value>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.conditions.push(Arc::new(condition));
        self
    }

    /// Whether the program is ready, and the JSON `/readyz` shows.
    pub fn answer(&self) -> (bool, Value) {
        let mut detail = Map::new();
        let mut ready = true;
        for (part, connected) in &self.parts {
            let up = connected.get() == 1;
            ready &= up;
            detail.insert((*part).into(), up.into());
        }
        for condition in &self.conditions {
            ready &= condition(&mut detail);
        }
        let status = if ready { "ready" } else { "unavailable" };
        detail.insert("status".into(), status.into());
        (ready, Value::Object(detail))
    }
}

/// Start the operators' listener on `listener` (see [`serve`]) in the
/// background; the handle stops it.
pub fn start(
    listener: TcpListener,
    registry: Registry,
    ready: Ready,
) -> std::io::Result<ServerHandle> {
    let server = serve(listener, registry, ready)?;
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

/// Serve `/healthz` (the process answers), `/readyz` (200 or 503 with the JSON
/// of `ready`'s answer) and `/metrics`. Signals are left to the program,
/// which decides when to stop.
fn serve(listener: TcpListener, registry: Registry, ready: Ready) -> std::io::Result<Server> {
    let registry = web::Data::new(registry);
    let ready = web::Data::new(ready);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .app_data(ready.clone())
            .route(
                "/healthz",
                web::get().to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
                }),
            )
            .route(
                "/readyz",
                web::get().to(|r: web::Data<Ready>| async move {
                    let (ready, detail) = r.answer();
                    if ready {
                        HttpResponse::Ok().json(detail)
                    } else {
                        HttpResponse::ServiceUnavailable().json(detail)
                    }
                }),
            )
            .route(
                "/metrics",
                web::get().to(|r: web::Data<Registry>| async move {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(render(&r))
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
