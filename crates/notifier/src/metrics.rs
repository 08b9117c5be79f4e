//! The notifier's metrics, served at `/metrics`.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Deliveries by outcome: sent, retried, failed, skipped.
    pub deliveries: IntCounterVec,
    /// Feed entries planned.
    pub planned: prometheus::IntCounter,
    /// 1 while this process is the one that delivers.
    pub leader: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("elkservice_notifier".into()), None).expect("a registry");
        let deliveries = IntCounterVec::new(
            Opts::new("deliveries_total", "Webhook deliveries by outcome"),
            &["outcome"],
        )
        .expect("a metric");
        let planned = prometheus::IntCounter::new("entries_planned_total", "Feed entries planned")
            .expect("a metric");
        let leader = IntGauge::new("leader", "1 while this process delivers").expect("a metric");
        for m in [
            Box::new(deliveries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(planned.clone()),
            Box::new(leader.clone()),
        ] {
            registry.register(m).expect("registered once");
        }
        Metrics {
            registry,
            deliveries,
            planned,
            leader,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
