//! `elkservice-writer`: consumes status events from RabbitMQ and applies them
//! to MySQL by the writer rule, so the API's GET reflects live state.
//!
//! [`consumer`] takes batches off the queue and acknowledges them after commit;
//! [`apply`] holds the rule (pure [`apply::plan`] plus its SQL); [`metrics`]
//! are served with `/healthz` by the shared ops listener. The tables' SQL is in
//! `elkservice_core::store`.

pub mod apply;
pub mod consumer;
pub mod metrics;
pub mod settings;

use consumer::Consumer;
use elkservice_core::db;
use elkservice_core::retry::Retry;
use settings::Settings;
use std::net::TcpListener;
use std::time::Duration;
use tokio::sync::watch;

/// A writer with its listener bound, ready to run.
pub struct Writer {
    settings: Settings,
    listener: TcpListener,
    metrics: metrics::Metrics,
}

impl Writer {
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.writer.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.writer.listen))?;
        Ok(Writer {
            settings,
            listener,
            metrics: metrics::Metrics::new(),
        })
    }

    /// The port of the `/healthz` + `/metrics` listener.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The writer's metrics, for a program that runs it in-process (the benchmark
    /// reads its counters without going through `/metrics`).
    pub fn metrics(&self) -> metrics::Metrics {
        self.metrics.clone()
    }

    /// Run until `shutdown` turns true: wait for the database (migrating it),
    /// then consume. Returns once the batch in hand is finished.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let connected = self.metrics.broker_connected.clone();
        let server = elkservice_core::ops::serve(
            self.listener,
            self.metrics.registry.clone(),
            move || serde_json::json!({ "status": "ok", "broker_connected": connected.get() == 1 }),
        )?;
        let server_handle = server.handle();
        tokio::spawn(server);

        let mut retry = Retry::new(
            "database not ready",
            Duration::from_millis(200),
            Duration::from_secs(10),
            &shutdown,
        );
        let pool = loop {
            match db::connect_and_migrate(&self.settings.database).await {
                Ok(pool) => break pool,
                Err(e) => {
                    if !retry.wait_after(&format!("{e:#}")).await {
                        server_handle.stop(true).await;
                        return Ok(());
                    }
                }
            }
        };
        let consumer = Consumer {
            settings: self.settings,
            pool: pool.clone(),
            metrics: self.metrics,
        };
        consumer.run(shutdown).await;
        pool.close().await;
        server_handle.stop(true).await;
        Ok(())
    }
}
