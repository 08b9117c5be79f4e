//! The notifier's metrics, served at `/metrics`.

use elkservice_core::ops;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Deliveries by outcome: sent, retried, failed, skipped.
    pub deliveries: IntCounterVec,
    /// Feed entries planned.
    pub planned: IntCounter,
    /// 1 while this process is the one that delivers.
    pub leader: IntGauge,
    /// 1 while the database answers.
    pub database_connected: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let r = ops::registry("elkservice_notifier");
        Metrics {
            deliveries: ops::counters(
                &r,
                "deliveries_total",
                "Webhook deliveries by outcome",
                &["outcome"],
            ),
            planned: ops::counter(&r, "entries_planned_total", "Feed entries planned"),
            leader: ops::gauge(&r, "leader", "1 while this process delivers"),
            database_connected: ops::gauge(
                &r,
                "database_connected",
                "1 while the database answers",
            ),
            registry: r,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
