//! The api's Prometheus metrics: requests by method, route and status,
//! latency, the database pool's use, how reads meet the read model, and the
//! streams open.

use crate::model::ReadModel;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};
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
        let reads = IntCounterVec::new(
            Opts::new(
                "row_reads_total",
                "Reads of rows (GET by Id and listings), by where they were answered from",
            ),
            &["source"],
        )
        .expect("valid metric");
        let from_memory = reads.with_label_values(&["memory"]);
        let from_database = reads.with_label_values(&["database"]);
        let waiting_for_model = IntGauge::new(
            "reads_waiting_for_model",
            "Reads waiting for the read model to catch up with the feed",
        )
        .expect("valid metric");
        let model_lag = Gauge::new(
            "read_model_lag_seconds",
            "How long ago the read model's last complete read of the change feed began",
        )
        .expect("valid metric");
        let streams = IntGauge::new(
            "streams_open",
            "Server-Sent Events streams (GET /elkservice/stream) open now",
        )
        .expect("valid metric");
        let put_group = Histogram::with_opts(
            HistogramOpts::new("put_group_commit_size", "PUTs committed together")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool_size.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_max_gauge),
            Box::new(reads),
            Box::new(waiting_for_model.clone()),
            Box::new(model_lag.clone()),
            Box::new(put_group.clone()),
            Box::new(streams.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool_size,
            pool_idle,
            from_memory,
            from_database,
            waiting_for_model,
            model_lag,
            put_group,
            streams,
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
        elkservice_core::ops::render(&self.registry)
    }
}
