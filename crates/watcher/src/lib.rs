//! `elkservice-watcher`: decides each watched service's status and publishes
//! the changes to RabbitMQ.
//!
//! Sources send [`Observation`]s over a channel: [`docker`] watches labelled
//! (or configured) containers through the engine's API ([`container`] maps
//! their state to a status); [`probe`] runs the watcher's own HTTP and TCP
//! probes, whose results a [`tracker`] turns into a status. The [`publisher`] keeps the latest observation per service and
//! publishes what changed, with confirms.

pub mod container;
pub mod docker;
pub mod probe;
pub mod publisher;
pub mod settings;
pub mod tracker;

use chrono::{DateTime, Utc};
use elkservice_core::{ServiceName, Status};
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry};
use settings::Settings;
use std::net::TcpListener;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What a source saw of one service at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    pub detail: String,
    pub observed_at: DateTime<Utc>,
}

impl Observation {
    pub fn now(name: ServiceName, status: Status, running: bool, detail: String) -> Self {
        Observation {
            name,
            status,
            running,
            detail,
            observed_at: Utc::now(),
        }
    }
}

/// Resolves once shutdown has been asked for (or its sender is gone).
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub inspections: IntCounter,
    pub probes: IntCounter,
    pub probe_failures: IntCounter,
    pub engine_errors: IntCounter,
    pub engine_connected: IntGauge,
    pub published: IntCounter,
    pub broker_connected: IntGauge,
    pub confirm_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("elkservice_watcher".into()), None).expect("valid prefix");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let confirm_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "confirm_seconds",
                "Time from publishing a flush to its last confirm",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(confirm_seconds.clone()))
            .expect("registered once");
        Metrics {
            inspections: counter("container_inspections_total", "Containers inspected"),
            probes: counter("probes_total", "HTTP and TCP probes run"),
            probe_failures: counter("probe_failures_total", "Probes that failed"),
            engine_errors: counter(
                "engine_errors_total",
                "Times the container engine could not be reached",
            ),
            engine_connected: gauge("engine_connected", "1 while the engine answers"),
            published: counter("events_published_total", "Events confirmed by the broker"),
            broker_connected: gauge("broker_connected", "1 while connected to the broker"),
            confirm_seconds,
            registry,
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

/// A watcher with its listener bound, ready to run.
pub struct Watcher {
    settings: Settings,
    listener: TcpListener,
    metrics: Metrics,
}

impl Watcher {
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.watcher.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.watcher.listen))?;
        Ok(Watcher {
            settings,
            listener,
            metrics: Metrics::new(),
        })
    }

    /// The port of the `/healthz` + `/metrics` listener.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        use actix_web::{web, App, HttpResponse, HttpServer};
        let metrics = web::Data::new(self.metrics.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(metrics.clone())
                .route(
                    "/healthz",
                    web::get().to(|m: web::Data<Metrics>| async move {
                        HttpResponse::Ok().json(serde_json::json!({
                            "status": "ok",
                            "engine_connected": m.engine_connected.get() == 1,
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
        .listen(self.listener)?
        .run();
        let server_handle = server.handle();
        tokio::spawn(server);

        let s = self.settings;
        let docker = bollard::Docker::connect_with_host(&s.docker.host)?;
        let (tx, rx) = mpsc::channel(1024);

        let by_container = s
            .services
            .iter()
            .filter_map(|svc| svc.container.clone().map(|c| (c, svc.name.clone())))
            .collect();
        let client = reqwest::Client::builder().build()?;
        let mut probes = Vec::new();
        for svc in &s.services {
            let Some(check) = svc.check() else { continue };
            let probed = probe::ProbedService {
                name: svc.name.clone(),
                check,
                interval: Duration::from_secs_f64(svc.interval_secs),
                timeout: Duration::from_secs_f64(svc.timeout_secs),
                thresholds: svc.thresholds(),
                metrics: self.metrics.clone(),
            };
            probes.push(tokio::spawn(probed.run(
                client.clone(),
                tx.clone(),
                shutdown.clone(),
            )));
        }
        let source = docker::DockerSource {
            docker,
            by_container,
            label: s.watcher.label.clone(),
            poll: Duration::from_secs(s.watcher.poll_interval_secs),
            idle_watchdog: Duration::from_secs(s.watcher.idle_watchdog_secs),
            unhealthy_is_down: s.watcher.unhealthy_is_down,
            metrics: self.metrics.clone(),
        };
        let publisher = publisher::Publisher {
            amqp: s.amqp.clone(),
            watcher_id: s.watcher.id(),
            resync: Duration::from_secs(s.watcher.resync_interval_secs),
            metrics: self.metrics.clone(),
        };
        let source = tokio::spawn(source.run(tx, shutdown.clone()));
        publisher.run(rx, shutdown).await;
        source.abort();
        for p in probes {
            p.abort();
        }
        server_handle.stop(true).await;
        Ok(())
    }
}
