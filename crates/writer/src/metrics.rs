//! The writer's Prometheus metrics and its small `/healthz` + `/metrics` listener.

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use std::net::TcpListener;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub applied: IntCounter,
    pub transitions: IntCounter,
    pub stale: IntCounter,
    pub dead_lettered: IntCounterVec,
    pub batch_size: Histogram,
    pub lag_seconds: Histogram,
    pub db_errors: IntCounter,
    pub broker_connected: IntGauge,
    pub broker_reconnects: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("elkservice_writer".into()), None).expect("valid prefix");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        let applied = counter(
            "events_applied_total",
            "Events applied (newer than the row)",
        );
        let transitions = counter("transitions_total", "Status transitions recorded");
        let stale = counter(
            "events_stale_total",
            "Stale or duplicate events, acked unchanged",
        );
        let db_errors = counter("db_errors_total", "Failed batch transactions (retried)");
        let broker_reconnects = counter("broker_reconnects_total", "Broker sessions lost");
        let dead_lettered = IntCounterVec::new(
            Opts::new(
                "events_dead_lettered_total",
                "Messages sent to the dead-letter queue",
            ),
            &["reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(dead_lettered.clone()))
            .expect("registered once");
        let broker_connected =
            IntGauge::new("broker_connected", "1 while consuming").expect("valid");
        registry
            .register(Box::new(broker_connected.clone()))
            .expect("registered once");
        let batch_size = histogram(
            "batch_size",
            "Events per transaction",
            vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
        );
        let lag_seconds = histogram(
            "lag_seconds",
            "Time from observation to commit",
            vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
        );
        Metrics {
            registry,
            applied,
            transitions,
            stale,
            dead_lettered,
            batch_size,
            lag_seconds,
            db_errors,
            broker_connected,
            broker_reconnects,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serve `/healthz` and `/metrics`. Signals are left to the writer, which
/// decides when to stop.
pub fn serve(listener: TcpListener, metrics: Metrics) -> std::io::Result<Server> {
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route(
                "/healthz",
                web::get().to(|m: web::Data<Metrics>| async move {
                    HttpResponse::Ok().json(serde_json::json!({
                        "status": "ok",
                        "broker_connected": m.broker_connected.get() == 1,
                    }))
                }),
            )
            .route(
                "/metrics",
                web::get().to(|m: web::Data<Metrics>| async move {
                    HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(m.render())
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
