//! The watcher's Prometheus metrics, shared by its sources and its publisher.

use elkservice_core::ops;
use prometheus::{Histogram, IntCounter, IntGauge, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
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
        let r = ops::registry("elkservice_watcher");
        Metrics {
            inspections: ops::counter(&r, "container_inspections_total", "Containers inspected"),
            probes: ops::counter(&r, "probes_total", "HTTP and TCP probes run"),
            probe_failures: ops::counter(&r, "probe_failures_total", "Probes that failed"),
            engine_errors: ops::counter(
                &r,
                "engine_errors_total",
                "Times the container engine could not be reached",
            ),
            engine_connected: ops::gauge(&r, "engine_connected", "1 while the engine answers"),
            published: ops::counter(
                &r,
                "events_published_total",
                "Events confirmed by the broker",
            ),
            broker_connected: ops::gauge(&r, "broker_connected", "1 while connected to the broker"),
            confirm_seconds: ops::histogram(
                &r,
                "confirm_seconds",
                "Time from publishing a flush to its last confirm",
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
                ],
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
