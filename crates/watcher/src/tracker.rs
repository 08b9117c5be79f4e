//! Turning the watcher's own probe results into a status, per service. Pure:
//! results and instants in, a status change out.
//!
//! - A service starts `starting`, in a start grace that ends at the first
//!   success (or when the grace runs out); failures inside it do not count.
//! - `fall` consecutive failures make it `down`; from `down`, `rise`
//!   consecutive successes bring it back.
//! - A degraded answer (Elasticsearch yellow, Kibana degraded) is a success
//!   that reports `degraded`.

use elkservice_core::Status;
use std::time::{Duration, Instant};

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Healthy(String),
    Degraded(String),
    Failed(String),
}

impl ProbeResult {
    pub fn detail(&self) -> &str {
        match self {
            ProbeResult::Healthy(d) | ProbeResult::Degraded(d) | ProbeResult::Failed(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures before `down`.
    pub fall: u32,
    /// Consecutive successes before `down` recovers.
    pub rise: u32,
    pub start_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct Tracker {
    thresholds: Thresholds,
    status: Status,
    grace_until: Option<Instant>,
    failures: u32,
    successes: u32,
}

impl Tracker {
    pub fn new(thresholds: Thresholds, now: Instant) -> Self {
        Tracker {
            thresholds,
            status: Status::Starting,
            grace_until: Some(now + thresholds.start_grace),
            failures: 0,
            successes: 0,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Take one result; returns the status after it.
    pub fn observe(&mut self, result: &ProbeResult, now: Instant) -> Status {
        if self.grace_until.is_some_and(|until| now >= until) {
            self.grace_until = None;
        }
        let t = self.thresholds;
        match result {
            ProbeResult::Failed(_) => {
                self.successes = 0;
                if self.grace_until.is_none() {
                    self.failures += 1;
                    if self.failures >= t.fall {
                        self.status = Status::Down;
                    }
                }
            }
            ProbeResult::Healthy(_) | ProbeResult::Degraded(_) => {
                self.failures = 0;
                self.successes += 1;
                let recovering = self.status == Status::Down && self.successes < t.rise;
                if !recovering {
                    self.status = if matches!(result, ProbeResult::Degraded(_)) {
                        Status::Degraded
                    } else {
                        Status::Normal
                    };
                }
                self.grace_until = None;
            }
        }
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        fall: 3,
        rise: 2,
        start_grace: Duration::from_secs(10),
    };

    fn ok() -> ProbeResult {
        ProbeResult::Healthy("200".into())
    }
    fn fail() -> ProbeResult {
        ProbeResult::Failed("connection refused".into())
    }

    #[test]
    fn the_start_grace_ends_at_the_first_success() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(T, t0);
        assert_eq!(tr.status(), Status::Starting);
        for s in 1..=5 {
            assert_eq!(
                tr.observe(&fail(), t0 + Duration::from_secs(s)),
                Status::Starting,
                "failures in grace do not count"
            );
        }
        assert_eq!(
            tr.observe(&ok(), t0 + Duration::from_secs(6)),
            Status::Normal
        );
        // Grace is over: now failures count.
        tr.observe(&fail(), t0 + Duration::from_secs(7));
        tr.observe(&fail(), t0 + Duration::from_secs(8));
        assert_eq!(
            tr.observe(&fail(), t0 + Duration::from_secs(9)),
            Status::Down
        );
    }

    #[test]
    fn without_a_success_the_grace_runs_out() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(T, t0);
        tr.observe(&fail(), t0 + Duration::from_secs(9));
        let after = t0 + Duration::from_secs(11);
        assert_eq!(tr.observe(&fail(), after), Status::Starting, "1 of 3");
        tr.observe(&fail(), after);
        assert_eq!(tr.observe(&fail(), after), Status::Down);
    }

    #[test]
    fn down_needs_fall_failures_in_a_row_and_recovery_needs_rise_successes() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(T, t0);
        tr.observe(&ok(), t0);
        tr.observe(&fail(), t0);
        tr.observe(&fail(), t0);
        assert_eq!(
            tr.observe(&ok(), t0),
            Status::Normal,
            "a success resets the count"
        );
        for _ in 0..2 {
            tr.observe(&fail(), t0);
        }
        assert_eq!(tr.observe(&fail(), t0), Status::Down);
        assert_eq!(tr.observe(&ok(), t0), Status::Down, "1 of 2");
        assert_eq!(tr.observe(&ok(), t0), Status::Normal);
    }

    #[test]
    fn a_degraded_answer_is_degraded_at_once() {
        let t0 = Instant::now();
        let mut tr = Tracker::new(T, t0);
        assert_eq!(
            tr.observe(&ProbeResult::Degraded("yellow".into()), t0),
            Status::Degraded
        );
        assert_eq!(tr.observe(&ok(), t0), Status::Normal);
    }
}
