//! How long a service spent in each status inside a window, computed exactly
//! from its transitions (not from samples). Pure; the route reads the
//! transitions and the row, this decides.

use chrono::{DateTime, Utc};
use elkservice_core::{ServiceEvent, Status};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A stretch of time in one status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Segment {
    pub status: Status,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The answer of `GET /elkservice/{Id}/uptime`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Uptime {
    pub id: i64,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Seconds in each status inside the window (time before the service
    /// existed is not counted).
    #[schema(value_type = BTreeMap<String, f64>)]
    pub seconds: BTreeMap<&'static str, f64>,
    /// `normal` seconds over all counted seconds; null when none were counted.
    pub normal_ratio: Option<f64>,
    /// The statuses in order, each with its stretch of the window.
    pub segments: Vec<Segment>,
}

/// Cut `[from, to)` into segments. `before` is the last transition at or
/// before `from`; `inside` the transitions after it and before `to`, in
/// order; `created_at` when the row was made (nothing is counted before it).
pub fn compute(
    id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    created_at: DateTime<Utc>,
    before: Option<&ServiceEvent>,
    inside: &[ServiceEvent],
) -> Uptime {
    let start = from.max(created_at).min(to);
    // The status at `start`: what the last transition before it set; else
    // what the first one inside changed from (or, for the row's creation, what
    // it was made with); else `unknown` (registered, never observed yet).
    let mut status = before
        .map(|t| t.status)
        .or_else(|| inside.first().map(|t| t.from_status.unwrap_or(t.status)))
        .unwrap_or(Status::Unknown);
    let mut segments = Vec::new();
    let mut at = start;
    for t in inside {
        // A watcher's clock may put a transition a moment before the row's creation.
        let when = t.observed_at.clamp(start, to);
        if when > at {
            segments.push(Segment {
                status,
                from: at,
                to: when,
            });
            at = when;
        }
        status = t.status;
    }
    if to > at {
        segments.push(Segment {
            status,
            from: at,
            to,
        });
    }
    // Adjacent stretches of one status (a transition to the same status, or
    // one squeezed to nothing) are one.
    let mut merged: Vec<Segment> = Vec::with_capacity(segments.len());
    for s in segments {
        match merged.last_mut() {
            Some(last) if last.status == s.status && last.to == s.from => last.to = s.to,
            _ => merged.push(s),
        }
    }
    let mut seconds: BTreeMap<&'static str, f64> =
        Status::ALL.iter().map(|s| (s.as_str(), 0.0)).collect();
    for s in &merged {
        *seconds.get_mut(s.status.as_str()).expect("every status") +=
            (s.to - s.from).num_microseconds().unwrap_or(0) as f64 / 1e6;
    }
    let total: f64 = seconds.values().sum();
    Uptime {
        id,
        from,
        to,
        normal_ratio: (total > 0.0).then(|| seconds["normal"] / total),
        seconds,
        segments: merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
    }

    fn transition(second: i64, from: Option<Status>, to: Status) -> ServiceEvent {
        ServiceEvent {
            id: second,
            service_id: 1,
            from_status: from,
            status: to,
            running: to == Status::Normal,
            detail: None,
            observed_at: t(second),
            source: "w".into(),
        }
    }

    #[test]
    fn seconds_come_from_the_transitions_exactly() {
        use Status::*;
        let before = transition(0, None, Normal);
        let inside = [
            transition(100, Some(Normal), Down),
            transition(130, Some(Down), Normal),
            transition(150, Some(Normal), Degraded),
        ];
        let u = compute(1, t(50), t(200), t(0), Some(&before), &inside);
        assert_eq!(u.seconds["normal"], 50.0 + 20.0);
        assert_eq!(u.seconds["down"], 30.0);
        assert_eq!(u.seconds["degraded"], 50.0);
        assert_eq!(u.normal_ratio, Some(70.0 / 150.0));
        let statuses: Vec<_> = u.segments.iter().map(|s| s.status).collect();
        assert_eq!(statuses, [Normal, Down, Normal, Degraded]);
        assert_eq!((u.segments[0].from, u.segments[3].to), (t(50), t(200)));
    }

    #[test]
    fn time_before_the_service_existed_is_not_counted() {
        use Status::*;
        // Registered by the writer at 100 (unknown), observed normal at 99.9 by the watcher's clock.
        let inside = [transition(100, Some(Unknown), Normal)];
        let u = compute(1, t(0), t(200), t(100), None, &inside);
        assert_eq!(u.seconds["normal"], 100.0);
        assert_eq!(u.seconds["unknown"], 0.0);
        assert_eq!(u.normal_ratio, Some(1.0));
        // A window wholly before the creation counts nothing.
        let u = compute(1, t(0), t(50), t(100), None, &inside);
        assert_eq!(u.normal_ratio, None);
        assert!(u.segments.is_empty());
    }

    #[test]
    fn a_row_made_through_the_api_has_its_status_from_its_creation() {
        // The creation's history row comes a moment after the row's created_at.
        let made = ServiceEvent {
            observed_at: t(0) + chrono::Duration::microseconds(900),
            ..transition(0, None, Status::Normal)
        };
        let u = compute(1, t(-100), t(10), t(0), None, &[made]);
        assert_eq!(u.seconds["normal"], 10.0);
        assert_eq!(u.segments.len(), 1);
    }

    #[test]
    fn with_no_transition_in_the_window_the_status_before_holds() {
        let before = transition(0, None, Status::Down);
        let u = compute(1, t(10), t(20), t(0), Some(&before), &[]);
        assert_eq!(u.seconds["down"], 10.0);
        assert_eq!(u.normal_ratio, Some(0.0));
    }
}
