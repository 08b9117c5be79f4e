//! The api's Prometheus metrics: requests by method, route and status,
//! latency, the database pool's use, how reads meet the read model, and the
//! streams open.

use crate::model::ReadModel;
use elkservice_core::ops;
use prometheus::{Gauge, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};
use sqlx::MySqlPool;
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_size: IntGauge,
    pool_idle: IntGauge,
    /// Reads of rows by where they were answered from.
    from_memory: IntCounter,
    from_database: IntCounter,
    /// Reads waiting for a late read model to catch up.
    pub waiting_for_model: IntGauge,
    /// How long ago the read model's last complete read of the feed began.
    model_lag: Gauge,
    /// PUTs per group commit.
    pub put_group: Histogram,
    streams: IntGauge,
}

impl Metrics {
    pub fn new(pool_max: u32) -> Self {
        let r = ops::registry("elkservice_api");
        ops::gauge(&r, "db_pool_max_connections", "Pool size limit").set(pool_max.into());
        let reads = ops::counters(
            &r,
            "row_reads_total",
            "Reads of rows (GET by Id and listings), by where they were answered from",
            &["source"],
        );
        Metrics {
            requests: ops::counters(
                &r,
                "http_requests_total",
                "HTTP requests by method, route and status",
                &["method", "route", "status"],
            ),
            latency: ops::histograms(
                &r,
                "http_request_duration_seconds",
                "HTTP request latency",
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
                &["method", "route"],
            ),
            pool_size: ops::gauge(&r, "db_pool_connections", "Open database connections"),
            pool_idle: ops::gauge(&r, "db_pool_idle_connections", "Idle database connections"),
            from_memory: reads.with_label_values(&["memory"]),
            from_database: reads.with_label_values(&["database"]),
            waiting_for_model: ops::gauge(
                &r,
                "reads_waiting_for_model",
                "Reads waiting for the read model to catch up with the feed",
            ),
            model_lag: ops::float_gauge(
                &r,
                "read_model_lag_seconds",
                "How long ago the read model's last complete read of the change feed began",
            ),
            put_group: ops::histogram(
                &r,
                "put_group_commit_size",
                "PUTs committed together",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            streams: ops::gauge(
                &r,
                "streams_open",
                "Server-Sent Events streams (GET /elkservice/stream) open now",
            ),
            registry: r,
        }
    }

    /// Count one answered request.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Count one read of rows, answered from the read model or not.
    pub fn read(&self, from_memory: bool) {
        if from_memory {
            self.from_memory.inc();
        } else {
            self.from_database.inc();
        }
    }

    /// The text exposition, with the pool's gauges, the model's lag and the
    /// streams open read now.
    pub fn render(&self, pool: &MySqlPool, model: Option<&ReadModel>, streams: usize) -> String {
        self.streams.set(streams as i64);
        self.pool_size.set(pool.size().into());
        self.pool_idle.set(pool.num_idle() as i64);
        if let Some(lag) = model.and_then(ReadModel::lag) {
            self.model_lag.set(lag.as_secs_f64());
        }
        ops::render(&self.registry)
    }
}
