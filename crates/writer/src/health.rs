//! Whether the writer can do its job, for `/readyz`: connected to the broker,
//! the database answering, and no batch failing for longer than
//! [`FAILING_LIMIT`] (a writer that keeps retrying one batch is alive but
//! applies nothing).

use crate::metrics::Metrics;
use elkservice_core::ops::Ready;
use prometheus::IntGauge;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a batch may keep failing before the writer reports itself not ready.
pub const FAILING_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Health {
    /// The metrics' gauges, so `/metrics` and `/readyz` agree.
    broker: IntGauge,
    database: IntGauge,
    /// When the batch in hand first failed; None while batches commit.
    failing_since: Arc<Mutex<Option<Instant>>>,
}

impl Health {
    pub fn new(metrics: &Metrics) -> Self {
        Health {
            broker: metrics.broker_connected.clone(),
            database: metrics.database_connected.clone(),
            failing_since: Arc::default(),
        }
    }

    pub fn set_broker(&self, up: bool) {
        self.broker.set(up.into());
    }

    pub fn set_database(&self, up: bool) {
        self.database.set(up.into());
    }

    /// A batch transaction failed and will be retried.
    pub fn batch_failed(&self) {
        self.failing_since
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(Instant::now);
    }

    /// A batch transaction committed.
    pub fn batch_committed(&self) {
        *self.failing_since.lock().expect("not poisoned") = None;
        self.set_database(true);
    }

    /// What `/readyz` answers.
    pub fn ready(&self) -> Ready {
        let failing_since = self.failing_since.clone();
        Ready::default()
            .needs("broker", &self.broker)
            .needs("database", &self.database)
            .and(move |detail| {
                let failing_for = failing_since
                    .lock()
                    .expect("not poisoned")
                    .map_or(Duration::ZERO, |since| since.elapsed());
                detail.insert("batch_failing_secs".into(), failing_for.as_secs().into());
                failing_for <= FAILING_LIMIT
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_both_ends_and_no_long_failure() {
        let h = Health::new(&Metrics::new());
        assert!(!h.ready().answer().0);
        h.set_broker(true);
        h.set_database(true);
        assert!(h.ready().answer().0);
        h.batch_failed();
        assert!(h.ready().answer().0, "a fresh failure is not yet a problem");
        *h.failing_since.lock().unwrap() = Some(Instant::now() - FAILING_LIMIT * 2);
        let (ready, detail) = h.ready().answer();
        assert!(!ready);
        assert!(detail["batch_failing_secs"].as_u64().unwrap() >= 60);
        h.batch_committed();
        assert!(h.ready().answer().0);
    }
}
