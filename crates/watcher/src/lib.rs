//! `elkservice-watcher`: decides each watched service's status and publishes
//! the changes to RabbitMQ.
//!
//! Sources send [`observation::Observation`]s over a channel: [`docker`] watches labelled
//! (or configured) containers through the engine's API ([`container`] maps
//! their state to a status, [`lifecycle`] reads what the engine's events add
//! to it); [`probe`] runs the watcher's own HTTP and TCP
//! probes, whose results a [`tracker`] turns into a status. The [`publisher`]
//! keeps the latest observation per service and publishes what changed, with
//! confirms. [`observation`] and [`metrics`] are what these modules share;
//! this file only wires them together.

pub mod container;
pub mod docker;
pub mod lifecycle;
pub mod metrics;
pub mod observation;
pub mod probe;
pub mod publisher;
pub mod settings;
pub mod tracker;

use elkservice_core::config::{ConfigError, LogSettings};
use elkservice_core::ops;
use elkservice_core::program::Program;
use metrics::Metrics;
use settings::Settings;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// A watcher with its listener bound, ready to run.
pub struct Watcher {
    settings: Settings,
    listener: TcpListener,
    metrics: Metrics,
}

impl Program for Watcher {
    const NAME: &'static str = "elkservice-watcher";
    type Settings = Settings;

    fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load(file)
    }

    fn log(settings: &Settings) -> &LogSettings {
        &settings.log
    }

    fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = elkservice_core::ops::bind(settings.watcher.listen)?;
        Ok(Watcher {
            settings,
            listener,
            metrics: Metrics::new(),
        })
    }

    /// The port of the `/healthz` + `/metrics` listener.
    fn port(&self) -> u16 {
        elkservice_core::ops::port(&self.listener)
    }

    async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let ready = ops::Ready::default()
            .needs("engine", &self.metrics.engine_connected)
            .needs("broker", &self.metrics.broker_connected);
        let server_handle = ops::start(self.listener, self.metrics.registry.clone(), ready)?;

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
            let client = match &check {
                probe::Check::Http(h) => h.client(&client).map_err(|e| anyhow::anyhow!(e))?,
                probe::Check::Tcp(_) => client.clone(),
            };
            let probed = probe::ProbedService {
                name: svc.name.clone(),
                check,
                interval: Duration::from_secs_f64(svc.interval_secs),
                timeout: Duration::from_secs_f64(svc.timeout_secs),
                thresholds: svc.thresholds(),
                metrics: self.metrics.clone(),
            };
            probes.push(tokio::spawn(probed.run(
                client,
                tx.clone(),
                shutdown.clone(),
            )));
        }
        let source = docker::DockerSource {
            docker,
            by_container,
            label: s.watcher.label.clone(),
            poll: Duration::from_secs_f64(s.watcher.poll_interval_secs),
            events: s.watcher.events,
            idle_watchdog: Duration::from_secs(s.watcher.idle_watchdog_secs),
            unhealthy: s.watcher.unhealthy(),
            metrics: self.metrics.clone(),
        };
        let publisher = publisher::Publisher {
            amqp: s.amqp.clone(),
            watcher_id: s.watcher.id(),
            resync: Duration::from_secs(s.watcher.resync_interval_secs),
            heartbeat: Duration::from_secs(s.watcher.heartbeat_secs),
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
