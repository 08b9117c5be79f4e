//! Whether the writer can do its job, for `/readyz`: connected to the broker,
//! the database answering, and no batch failing for longer than
//! [`FAILING_LIMIT`] (a writer that keeps retrying one batch is alive but
//! applies nothing).

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a batch may keep failing before the writer reports itself not ready.
pub const FAILING_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
pub struct Health {
    broker: Arc<AtomicBool>,
    database: Arc<AtomicBool>,
    /// When the batch in hand first failed; None while batches commit.
    failing_since: Arc<Mutex<Option<Instant>>>,
}

impl Health {
    pub fn set_broker(&self, up: bool) {
        self.broker.store(up, Ordering::Relaxed);
    }

    pub fn set_database(&self, up: bool) {
        self.database.store(up, Ordering::Relaxed);
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

    /// `(ready, what /readyz shows)`.
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let broker = self.broker.load(Ordering::Relaxed);
        let database = self.database.load(Ordering::Relaxed);
        let failing_for = self
            .failing_since
            .lock()
            .expect("not poisoned")
            .map_or(Duration::ZERO, |since| since.elapsed());
        let ready = broker && database && failing_for <= FAILING_LIMIT;
        (
            ready,
            json!({
                "status": if ready { "ready" } else { "unavailable" },
                "broker": broker,
                "database": database,
                "batch_failing_secs": failing_for.as_secs(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_both_ends_and_no_long_failure() {
        let h = Health::default();
        assert!(!h.readiness().0);
        h.set_broker(true);
        h.set_database(true);
        assert!(h.readiness().0);
        h.batch_failed();
        assert!(h.readiness().0, "a fresh failure is not yet a problem");
        *h.failing_since.lock().unwrap() = Some(Instant::now() - FAILING_LIMIT * 2);
        let (ready, detail) = h.readiness();
        assert!(!ready);
        assert!(detail["batch_failing_secs"].as_u64().unwrap() >= 60);
        h.batch_committed();
        assert!(h.readiness().0);
    }
}
