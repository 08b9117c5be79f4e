//! The writer rule: apply a batch of status events to MySQL in one transaction.
//!
//! - An event is applied only if its `observed_at` is newer than the row's last
//!   applied observation (`observed_ns`); stale and duplicate events change
//!   nothing, whatever the delivery order and however many writers run.
//! - The rows are locked (`SELECT … FOR UPDATE`, in name order so that writers
//!   lock in the same order) before the decision is made, so the decision holds
//!   until commit.
//! - `FailedCount` is incremented in SQL (`failed_count + n`), never written
//!   back as a value read earlier; `n` counts the transitions into `down`.
//! - Every transition writes one history row.
//!
//! [`plan`] is the pure decision; [`apply_batch`] runs the statements around it.

use chrono::{DateTime, Utc};
use elkservice_core::{Status, StatusEvent};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row};
use std::collections::HashMap;

/// What happened to one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was the newest observation so far; `transition` if the status changed.
    Applied { transition: bool },
    /// An observation at or before the last applied one.
    Stale,
    /// No row has this name, and auto-registration is off.
    UnknownService,
}

/// A service's row as the batch finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub id: i64,
    pub status: Status,
    pub observed_ns: Option<i64>,
}

/// The new state of one row after the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate<'a> {
    pub id: i64,
    pub event: &'a StatusEvent,
    pub failed_increment: u32,
    /// Set when the status changed in this batch.
    pub status_changed_at: Option<DateTime<Utc>>,
}

/// One history row.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition<'a> {
    pub service_id: i64,
    pub from: Status,
    pub event: &'a StatusEvent,
}

#[derive(Debug, Default, PartialEq)]
pub struct Plan<'a> {
    /// One per event, in the batch's order.
    pub outcomes: Vec<Outcome>,
    pub updates: Vec<RowUpdate<'a>>,
    pub transitions: Vec<Transition<'a>>,
}

/// Decide what the batch does to the rows in `current` (keyed by name).
pub fn plan<'a>(current: &HashMap<String, Current>, events: &'a [StatusEvent]) -> Plan<'a> {
    let mut plan = Plan {
        outcomes: vec![Outcome::Stale; events.len()],
        ..Plan::default()
    };
    // Each service's events in observation order; the batch order is delivery order.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&events[a], &events[b]);
        (ea.service.as_str(), ea.observed_ns()).cmp(&(eb.service.as_str(), eb.observed_ns()))
    });
    for group in order.chunk_by(|&a, &b| events[a].service == events[b].service) {
        let Some(row) = current.get(events[group[0]].service.as_str()) else {
            for &i in group {
                plan.outcomes[i] = Outcome::UnknownService;
            }
            continue;
        };
        let mut state = *row;
        let mut update: Option<RowUpdate> = None;
        for &i in group {
            let event = &events[i];
            let ns = event.observed_ns();
            if state.observed_ns.is_some_and(|last| ns <= last) {
                continue; // stays Stale
            }
            let transition = event.status != state.status;
            plan.outcomes[i] = Outcome::Applied { transition };
            let u = update.get_or_insert(RowUpdate {
                id: state.id,
                event,
                failed_increment: 0,
                status_changed_at: None,
            });
            u.event = event;
            if transition {
                plan.transitions.push(Transition {
                    service_id: state.id,
                    from: state.status,
                    event,
                });
                u.status_changed_at = Some(event.observed_at);
                if event.status == Status::Down {
                    u.failed_increment += 1;
                }
            }
            state.status = event.status;
            state.observed_ns = Some(ns);
        }
        plan.updates.extend(update);
    }
    plan
}

/// Most rows in one multi-row statement.
const MAX_CHUNK: usize = 256;

/// `items` in chunks whose sizes are powers of two (at most [`MAX_CHUNK`]).
///
/// sqlx prepares each distinct statement text and keeps a small cache of them;
/// batch sizes vary freely, so one statement per batch size would be prepared
/// again on almost every batch. Power-of-two chunks bound the shapes to nine.
fn pow2_chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = MAX_CHUNK.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Lock and read the rows of `names` (sorted, distinct).
async fn lock_rows(
    tx: &mut sqlx::MySqlConnection,
    names: &[&str],
) -> Result<HashMap<String, Current>, sqlx::Error> {
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT id, name, status, observed_ns FROM elkservice \
         FORCE INDEX (uq_elkservice_name) WHERE name IN (",
    );
    // Padded to a power of two with the last name (a repeat changes nothing in
    // IN), so that the statement's text comes in few shapes; see pow2_chunks.
    let padded = names.len().next_power_of_two();
    let mut list = q.separated(", ");
    for i in 0..padded {
        list.push_bind(names[i.min(names.len() - 1)]);
    }
    // Read, and so locked, along the name index: in name order, with no sort,
    // and only these rows. With a long list the optimizer would rather scan
    // the table, which under FOR UPDATE locks every row of it.
    q.push(") ORDER BY name FOR UPDATE");
    let rows = q.build().fetch_all(tx).await?;
    rows.into_iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            Ok((
                // A binary collation, reported as VARBINARY; the bytes are UTF-8.
                r.try_get_unchecked("name")?,
                Current {
                    id: r.try_get("id")?,
                    // A value the API would never store; treat it as never observed.
                    status: status.parse().unwrap_or(Status::Unknown),
                    observed_ns: r.try_get("observed_ns")?,
                },
            ))
        })
        .collect()
}

/// Apply `events` in one transaction and return each one's outcome. With
/// `auto_register`, a service with no row gets one (status `unknown` before
/// its first event), as Registrator does.
pub async fn apply_batch(
    pool: &MySqlPool,
    events: &[StatusEvent],
    auto_register: bool,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut names: Vec<&str> = events.iter().map(|e| e.service.as_str()).collect();
    names.sort_unstable();
    names.dedup();

    let mut tx = pool.begin().await?;
    let mut current = lock_rows(&mut tx, &names).await?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !current.contains_key(*n))
        .collect();
    if auto_register && !missing.is_empty() {
        for chunk in pow2_chunks(&missing) {
            // IGNORE: another writer may register the same name at the same moment.
            let mut q = QueryBuilder::<MySql>::new("INSERT IGNORE INTO elkservice (name) ");
            q.push_values(chunk, |mut row, name| {
                row.push_bind(*name);
            });
            q.build().execute(&mut *tx).await?;
        }
        current.extend(lock_rows(&mut tx, &missing).await?);
    }

    let plan = plan(&current, events);

    for chunk in pow2_chunks(&plan.updates) {
        // Each id exists, so every line takes the ON DUPLICATE KEY UPDATE path.
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO elkservice (id, name, status, running, detail, failed_count, \
             observed_ns, status_changed_at, last_checked_at) ",
        );
        q.push_values(chunk, |mut row, u| {
            row.push_bind(u.id)
                .push_bind(u.event.service.as_str())
                .push_bind(u.event.status.as_str())
                .push_bind(u.event.running)
                .push_bind(u.event.detail.as_deref())
                .push_bind(u.failed_increment)
                .push_bind(u.event.observed_ns())
                .push_bind(u.status_changed_at)
                .push_bind(u.event.observed_at);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE status = VALUES(status), running = VALUES(running), \
             detail = VALUES(detail), failed_count = failed_count + VALUES(failed_count), \
             observed_ns = VALUES(observed_ns), \
             status_changed_at = COALESCE(VALUES(status_changed_at), status_changed_at), \
             last_checked_at = VALUES(last_checked_at)",
        );
        q.build().execute(&mut *tx).await?;
    }
    for chunk in pow2_chunks(&plan.transitions) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO elkservice_event (service_id, from_status, status, running, detail, observed_at, source) ",
        );
        q.push_values(chunk, |mut row, t| {
            row.push_bind(t.service_id)
                .push_bind(t.from.as_str())
                .push_bind(t.event.status.as_str())
                .push_bind(t.event.running)
                .push_bind(t.event.detail.as_deref())
                .push_bind(t.event.observed_at)
                .push_bind(t.event.watcher.as_str());
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(plan.outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use elkservice_core::ServiceName;

    fn ev(name: &str, status: Status, second: i64) -> StatusEvent {
        let mut e = StatusEvent::new(
            ServiceName::parse(name).unwrap(),
            status,
            status != Status::Down,
            "w",
        );
        e.observed_at = Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap();
        e
    }

    fn rows(entries: &[(&str, i64, Status, Option<i64>)]) -> HashMap<String, Current> {
        entries
            .iter()
            .map(|&(n, id, status, observed_ns)| {
                (
                    n.to_owned(),
                    Current {
                        id,
                        status,
                        observed_ns,
                    },
                )
            })
            .collect()
    }

    fn ns(second: i64) -> Option<i64> {
        Some((1_800_000_000 + second) * 1_000_000_000)
    }

    #[test]
    fn chunks_are_powers_of_two_that_cover_everything_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let chunks = pow2_chunks(&items);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(chunks.concat(), items);
        assert_eq!(pow2_chunks(&items[..1]).len(), 1);
        assert!(pow2_chunks::<usize>(&[]).is_empty());
    }

    #[test]
    fn out_of_order_events_leave_the_newest_state() {
        let current = rows(&[("es", 1, Status::Unknown, None)]);
        let events = [
            ev("es", Status::Normal, 3),
            ev("es", Status::Down, 1),
            ev("es", Status::Degraded, 2),
        ];
        let p = plan(&current, &events);
        // In observation order: down(1), degraded(2), normal(3): all newer than nothing.
        assert_eq!(p.outcomes, [Outcome::Applied { transition: true }; 3]);
        assert_eq!(p.updates.len(), 1);
        assert_eq!(p.updates[0].event.status, Status::Normal);
        assert_eq!(p.updates[0].failed_increment, 1);
        let chain: Vec<_> = p
            .transitions
            .iter()
            .map(|t| (t.from, t.event.status))
            .collect();
        assert_eq!(
            chain,
            [
                (Status::Unknown, Status::Down),
                (Status::Down, Status::Degraded),
                (Status::Degraded, Status::Normal)
            ]
        );
    }

    #[test]
    fn stale_and_duplicate_events_change_nothing() {
        let current = rows(&[("es", 1, Status::Down, ns(5))]);
        let events = [ev("es", Status::Normal, 4), ev("es", Status::Normal, 5)];
        let p = plan(&current, &events);
        assert_eq!(p.outcomes, [Outcome::Stale, Outcome::Stale]);
        assert!(p.updates.is_empty() && p.transitions.is_empty());

        let events = [ev("es", Status::Normal, 6), ev("es", Status::Normal, 6)];
        let p = plan(&current, &events);
        assert_eq!(
            p.outcomes,
            [Outcome::Applied { transition: true }, Outcome::Stale]
        );
    }

    #[test]
    fn a_same_status_observation_is_applied_without_a_transition() {
        let current = rows(&[("es", 1, Status::Down, ns(1))]);
        let events = [ev("es", Status::Down, 2)];
        let p = plan(&current, &events);
        assert_eq!(p.outcomes, [Outcome::Applied { transition: false }]);
        assert_eq!(
            p.updates[0].failed_increment, 0,
            "down → down is not a new failure"
        );
        assert_eq!(p.updates[0].status_changed_at, None);
        assert!(p.transitions.is_empty());
    }

    #[test]
    fn each_transition_into_down_counts_once() {
        let current = rows(&[("es", 1, Status::Normal, ns(0))]);
        let events = [
            ev("es", Status::Down, 1),
            ev("es", Status::Normal, 2),
            ev("es", Status::Down, 3),
            ev("es", Status::Down, 4),
        ];
        let p = plan(&current, &events);
        assert_eq!(p.updates[0].failed_increment, 2);
        assert_eq!(p.transitions.len(), 3);
    }

    #[test]
    fn services_are_planned_independently_and_unknown_ones_are_flagged() {
        let current = rows(&[
            ("a", 1, Status::Unknown, None),
            ("b", 2, Status::Normal, ns(9)),
        ]);
        let events = [
            ev("b", Status::Down, 1),
            ev("zz", Status::Down, 1),
            ev("a", Status::Down, 1),
        ];
        let p = plan(&current, &events);
        assert_eq!(
            p.outcomes,
            [
                Outcome::Stale,
                Outcome::UnknownService,
                Outcome::Applied { transition: true }
            ]
        );
        assert_eq!(p.updates.len(), 1);
        assert_eq!(p.updates[0].id, 1);
    }
}
