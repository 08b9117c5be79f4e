//! The writer's Prometheus metrics.

use elkservice_core::ops;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub applied: IntCounter,
    pub transitions: IntCounter,
    pub silenced: IntCounter,
    pub stale: IntCounter,
    pub dead_lettered: IntCounterVec,
    pub batch_size: Histogram,
    pub lag_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub db_errors: IntCounter,
    pub broker_connected: IntGauge,
    pub database_connected: IntGauge,
    pub broker_reconnects: IntCounter,
    pub selfcheck_pings: IntCounter,
    pub selfcheck_failures: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let r = ops::registry("elkservice_writer");
        let dead_lettered = ops::counters(
            &r,
            "events_dead_lettered_total",
            "Messages sent to the dead-letter queue",
            &["reason"],
        );
        Metrics {
            applied: ops::counter(
                &r,
                "events_applied_total",
                "Events applied (newer than the row)",
            ),
            transitions: ops::counter(&r, "transitions_total", "Status transitions recorded"),
            silenced: ops::counter(
                &r,
                "services_silenced_total",
                "Services turned unknown because their watcher went silent",
            ),
            stale: ops::counter(
                &r,
                "events_stale_total",
                "Stale or duplicate events, acked unchanged",
            ),
            db_errors: ops::counter(&r, "db_errors_total", "Failed batch transactions (retried)"),
            broker_reconnects: ops::counter(&r, "broker_reconnects_total", "Broker sessions lost"),
            selfcheck_pings: ops::counter(
                &r,
                "selfcheck_pings_total",
                "Selfchecks that went through and were pinged",
            ),
            selfcheck_failures: ops::counter(
                &r,
                "selfcheck_failures_total",
                "Selfchecks that did not go through in time, or whose ping failed",
            ),
            broker_connected: ops::gauge(&r, "broker_connected", "1 while consuming"),
            database_connected: ops::gauge(
                &r,
                "database_connected",
                "1 while the database answers",
            ),
            batch_size: ops::histogram(
                &r,
                "batch_size",
                "Events per transaction",
                vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
            ),
            lag_seconds: ops::histogram(
                &r,
                "lag_seconds",
                "Time from observation to commit",
                vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0],
            ),
            commit_seconds: ops::histogram(
                &r,
                "commit_seconds",
                "Time to apply one batch and commit it, retries included",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0],
            ),
            dead_lettered,
            registry: r,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
