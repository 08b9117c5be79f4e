//! What operators scrape: Prometheus metrics in a registry of the program's
//! own, and the small `/healthz` + `/readyz` + `/metrics` listener of the
//! writer, the watcher and the notifier.

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use std::net::{SocketAddr, TcpListener};

/// A registry whose metric names start with `<prefix>_`.
pub fn registry(prefix: &str) -> Registry {
    Registry::new_custom(Some(prefix.into()), None).expect("a valid prefix")
}

pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("registered once");
    c
}

pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("registered once");
    g
}

pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("a valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("registered once");
    h
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

/// What `/readyz` answers: whether the program can do its job now, and why not.
pub type Readiness = Box<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// Serve `/healthz` (the process answers), `/readyz` (200 or 503 with the JSON
/// that `ready` returns) and `/metrics`. Signals are left to the program,
/// which decides when to stop.
pub fn serve(
    listener: TcpListener,
    registry: Registry,
    ready: Readiness,
) -> std::io::Result<Server> {
    let registry = web::Data::new(registry);
    let ready: web::Data<Readiness> = web::Data::new(ready);
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
                web::get().to(|r: web::Data<Readiness>| async move {
                    let (ready, detail) = (r.get_ref())();
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
