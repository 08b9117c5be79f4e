//! `elkservice-writer`: consumes status events from RabbitMQ and applies them
//! to MySQL by the writer rule, so the API's GET reflects live state.
//!
//! [`consumer`] takes batches off the queue and acknowledges them after commit;
//! [`apply`] holds the rule (pure [`apply::plan`] plus its SQL); [`metrics`]
//! and [`health`] (what `/readyz` says) are served by the shared ops listener. The tables' SQL is in
//! `elkservice_core::store`.

pub mod apply;
pub mod consumer;
pub mod health;
pub mod metrics;
pub mod quorum;
pub mod selfcheck;
pub mod settings;
pub mod staleness;

use consumer::Consumer;
use elkservice_core::config::{ConfigError, LogSettings};
use elkservice_core::db;
use elkservice_core::ops;
use elkservice_core::program::Program;
use health::Health;
use settings::Settings;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

/// A writer with its listener bound, ready to run.
pub struct Writer {
    settings: Settings,
    listener: TcpListener,
    metrics: metrics::Metrics,
}

impl Writer {
    /// The writer's metrics, for a program that runs it in-process (the benchmark
    /// reads its counters without going through `/metrics`).
    pub fn metrics(&self) -> metrics::Metrics {
        self.metrics.clone()
    }
}

impl Program for Writer {
    const NAME: &'static str = "elkservice-writer";
    type Settings = Settings;

    fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load(file)
    }

    fn log(settings: &Settings) -> &LogSettings {
        &settings.log
    }

    fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = elkservice_core::ops::bind(settings.writer.listen)?;
        Ok(Writer {
            settings,
            listener,
            metrics: metrics::Metrics::new(),
        })
    }

    /// The port of the `/healthz` + `/metrics` listener.
    fn port(&self) -> u16 {
        elkservice_core::ops::port(&self.listener)
    }

    /// Run until `shutdown` turns true: wait for the database (migrating it),
    /// then consume. Returns once the batch in hand is finished.
    async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let health = Health::new(&self.metrics);
        let server_handle =
            ops::start(self.listener, self.metrics.registry.clone(), health.ready())?;
        let Some(pool) = db::connect_and_migrate_retrying(&self.settings.database, &shutdown).await
        else {
            server_handle.stop(true).await;
            return Ok(());
        };
        health.set_database(true);
        let pinger = tokio::spawn(watch_database(pool.clone(), health.clone()));
        let w = &self.settings.writer;
        let stale_after = Duration::from_secs(w.stale_after_secs);
        let forget_after =
            (w.forget_watcher_secs > 0).then(|| Duration::from_secs(w.forget_watcher_secs));
        let staleness = (!stale_after.is_zero()).then(|| {
            tokio::spawn(staleness::run(
                pool.clone(),
                stale_after,
                w.counting(),
                forget_after,
                self.metrics.clone(),
            ))
        });
        let selfcheck = (!self.settings.selfcheck.ping_url.is_empty()).then(|| {
            tokio::spawn(selfcheck::run(
                self.settings.selfcheck.clone(),
                self.settings.amqp.clone(),
                pool.clone(),
                self.metrics.clone(),
                shutdown.clone(),
            ))
        });
        let consumer = Consumer::new(self.settings, pool.clone(), self.metrics, health);
        consumer.run(shutdown).await;
        // With it goes the writer's own connection, before the pool closes.
        drop(consumer);
        pinger.abort();
        for task in [staleness, selfcheck].into_iter().flatten() {
            task.abort();
        }
        pool.close().await;
        server_handle.stop(true).await;
        Ok(())
    }
}

/// Keep [`Health`]'s view of the database current while no batch is applied:
/// ping it every few seconds.
async fn watch_database(pool: sqlx::MySqlPool, health: Health) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let ping = sqlx::query("SELECT 1").execute(&pool);
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(2), ping).await,
            Ok(Ok(_))
        );
        health.set_database(up);
    }
}
