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
//! - With several watchers, each one's latest observation of a service is its
//!   vote (ordered per watcher, as above), and the row follows the votes by the
//!   quorum rule ([`crate::quorum`]): [`derive`] turns each vote into the
//!   decision it leads to, and [`plan`] applies those decisions as observations.
//!
//! [`derive`] and [`plan`] are the pure decisions; [`apply_batch`] runs the
//! statements around them, which live with the tables in
//! `elkservice_core::store`.

use crate::quorum::{self, Present, Rule};
use chrono::{DateTime, Utc};
use elkservice_core::db;
use elkservice_core::store::feed::{self, ChangeKind, NewChange, Source};
use elkservice_core::store::observations::{self, Current, RowUpdate};
use elkservice_core::store::{history, stored_time, votes, HistoryRow};
use elkservice_core::{Service, Status, StatusEvent, Vote};
use sqlx::MySqlConnection;
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

#[derive(Debug, Default, PartialEq)]
pub struct Plan<'a> {
    /// One per event, in the batch's order.
    pub outcomes: Vec<Outcome>,
    pub updates: Vec<RowUpdate<'a>>,
    pub transitions: Vec<HistoryRow<'a>>,
    /// What clients see change, in order: each a feed entry.
    pub changes: Vec<PlannedChange<'a>>,
}

/// A change to a row that the feed records: a transition, or a new
/// `Running`/`Detail` with the same status.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChange<'a> {
    pub service_id: i64,
    pub kind: ChangeKind,
    pub from: Status,
    pub event: &'a StatusEvent,
    /// FailedCount increments in this batch up to and including this change.
    pub failed_so_far: u32,
    pub status_changed_at: Option<DateTime<Utc>>,
}

/// The indexes of `events` by service, each service's in observation order:
/// the batch's own order is only the order of delivery.
fn in_observation_order(events: &[StatusEvent]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&events[a], &events[b]);
        (ea.service.as_str(), ea.observed_ns()).cmp(&(eb.service.as_str(), eb.observed_ns()))
    });
    order
}

/// Decide what the batch does to the rows in `current` (keyed by name).
/// `deleted` holds when names were deleted through the API: an observation
/// made before that is stale, whether or not the name has a row again.
pub fn plan<'a>(
    current: &HashMap<String, Current>,
    deleted: &HashMap<String, i64>,
    events: &'a [StatusEvent],
) -> Plan<'a> {
    let mut plan = Plan {
        outcomes: vec![Outcome::Stale; events.len()],
        ..Plan::default()
    };
    let order = in_observation_order(events);
    for group in order.chunk_by(|&a, &b| events[a].service == events[b].service) {
        let name = events[group[0]].service.as_str();
        let deleted_ns = deleted.get(name).copied();
        let Some(row) = current.get(name) else {
            for &i in group {
                let before_deletion = deleted_ns.is_some_and(|d| events[i].observed_ns() <= d);
                if !before_deletion {
                    plan.outcomes[i] = Outcome::UnknownService;
                }
            }
            continue;
        };
        let mut state = row.clone();
        state.observed_ns = state.observed_ns.max(deleted_ns);
        let mut update: Option<RowUpdate> = None;
        for &i in group {
            let event = &events[i];
            let ns = event.observed_ns();
            if state.observed_ns.is_some_and(|last| ns <= last) {
                continue; // stays Stale
            }
            let transition = event.status != state.status;
            let updated =
                !transition && (event.running != state.running || event.detail != state.detail);
            plan.outcomes[i] = Outcome::Applied { transition };
            let u = update.get_or_insert(RowUpdate {
                id: state.id,
                event,
                failed_increment: 0,
                status_changed_at: None,
                settled: None,
            });
            u.event = event;
            if transition {
                plan.transitions.push(HistoryRow {
                    service_id: state.id,
                    from: Some(state.status),
                    status: event.status,
                    running: event.running,
                    detail: event.detail.as_deref(),
                    observed_at: Some(event.observed_at),
                    source: &event.watcher,
                });
                u.status_changed_at = Some(event.observed_at);
                // A failure is a new one unless the service was already down
                // before a blip through `unknown` or `starting`; a stop the
                // operator asked for is no failure at all.
                if event.status == Status::Down
                    && !event.planned
                    && state.settled != Some(Status::Down)
                {
                    u.failed_increment += 1;
                }
            }
            if let Some(settled) = event.status.settled() {
                state.settled = Some(settled);
                u.settled = Some(settled);
            }
            if transition {
                state.status_changed_at = Some(event.observed_at);
            }
            if transition || updated {
                plan.changes.push(PlannedChange {
                    service_id: state.id,
                    kind: if transition {
                        ChangeKind::Transition
                    } else {
                        ChangeKind::Updated
                    },
                    from: state.status,
                    event,
                    failed_so_far: u.failed_increment,
                    status_changed_at: state.status_changed_at,
                });
            }
            state.running = event.running;
            state.detail.clone_from(&event.detail);
            state.status = event.status;
            state.observed_ns = Some(ns);
        }
        plan.updates.extend(update);
    }
    plan
}

/// How votes are counted: the rule, and the age after which a vote abstains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counting {
    pub rule: Rule,
    /// None: votes never go stale.
    pub stale_after_ns: Option<i64>,
}

/// A batch's votes, and the decisions they lead to.
#[derive(Debug, Default, PartialEq)]
pub struct Derived {
    /// One decision per counted vote, as an observation of the service: what
    /// [`plan`] applies. Events for names with no row pass through as they are.
    pub events: Vec<StatusEvent>,
    /// For each of `events`, the index of the event it came from.
    pub from: Vec<usize>,
    /// `(service Id, index of the event)` for each vote to record, the newest
    /// per watcher.
    pub ballots: Vec<(i64, usize)>,
}

/// Count each event as its watcher's vote on its service (unless that
/// watcher already voted something newer, or the name was deleted after it),
/// and decide the service after each. `votes` holds the rows' votes before
/// the batch and is brought up to date. A decision is made as of its vote's
/// time, so writers that see the same votes decide the same; it is observed
/// then too, or just after the row's last decision when another watcher
/// spoke later, so that decisions stay in order.
pub fn derive(
    current: &HashMap<String, Current>,
    votes: &mut HashMap<i64, Vec<Vote>>,
    deleted: &HashMap<String, i64>,
    events: &[StatusEvent],
    counting: Counting,
) -> Derived {
    let mut derived = Derived::default();
    let order = in_observation_order(events);
    let mut ballots: HashMap<(i64, &str), usize> = HashMap::new();
    for group in order.chunk_by(|&a, &b| events[a].service == events[b].service) {
        let name = events[group[0]].service.as_str();
        let Some(row) = current.get(name) else {
            for &i in group {
                derived.events.push(events[i].clone());
                derived.from.push(i);
            }
            continue;
        };
        let deleted_ns = deleted.get(name).copied();
        let mut last_ns = row.observed_ns.max(deleted_ns);
        let (mut status, mut running, mut detail) = (row.status, row.running, row.detail.clone());
        let cast = votes.entry(row.id).or_default();
        for &i in group {
            let e = &events[i];
            let ns = e.observed_ns();
            if deleted_ns.is_some_and(|d| ns <= d) {
                continue;
            }
            let vote = Vote {
                watcher: e.watcher.clone(),
                status: e.status,
                running: e.running,
                observed_at: e.observed_at,
                detail: e.detail.clone(),
                fresh: true,
                planned: e.planned,
            };
            match cast.iter_mut().find(|v| v.watcher == e.watcher) {
                Some(v) if v.observed_at >= e.observed_at => continue,
                Some(v) => *v = vote,
                None => cast.push(vote),
            }
            ballots.insert((row.id, e.watcher.as_str()), i);
            let present = Present {
                status,
                running,
                detail: detail.as_deref(),
            };
            let d = quorum::decide(counting.rule, cast, ns, counting.stale_after_ns, &present);
            let at_ns = match last_ns {
                Some(last) if last >= ns => last + 1,
                _ => ns,
            };
            last_ns = Some(at_ns);
            let mut decided = StatusEvent::observed(
                e.service.clone(),
                d.status,
                d.running,
                DateTime::from_timestamp_nanos(at_ns),
                &e.watcher,
                d.detail.clone(),
            );
            decided.planned = d.planned;
            (status, running, detail) = (d.status, d.running, d.detail);
            derived.events.push(decided);
            derived.from.push(i);
        }
    }
    derived.ballots = ballots.into_iter().map(|((id, _), i)| (id, i)).collect();
    derived.ballots.sort_unstable();
    derived
}

/// Apply `events` in one transaction on `conn`, whose autocommit is off (its
/// first statement opens the transaction), and return each one's outcome.
/// With `auto_register`, a service with no row gets one (status `unknown`
/// before its first event), as Registrator does. On an error the caller rolls
/// back.
pub async fn apply_batch(
    tx: &mut MySqlConnection,
    events: &[StatusEvent],
    auto_register: bool,
    counting: Counting,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut names: Vec<&str> = events.iter().map(|e| e.service.as_str()).collect();
    names.sort_unstable();
    names.dedup();

    let (mut current, mut locked_at) = observations::lock(tx, &names).await?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !current.contains_key(*n))
        .collect();
    let mut deleted = HashMap::new();
    if !missing.is_empty() {
        deleted = observations::tombstones(tx, &missing).await?;
    }
    // Only a name with an observation newer than its deletion comes back.
    let register: Vec<&str> = missing
        .into_iter()
        .filter(|n| match deleted.get(*n) {
            Some(&d) => events
                .iter()
                .any(|e| e.service.as_str() == *n && e.observed_ns() > d),
            None => true,
        })
        .collect();
    let mut created = Vec::new();
    if auto_register && !register.is_empty() {
        created = observations::register(tx, &register).await?;
        let (registered, at) = observations::lock(tx, &register).await?;
        current.extend(registered);
        // Now that every row is locked, and after the new rows' creation.
        locked_at = at.or(locked_at);
    }
    let Some(updated_at) = locked_at else {
        // No row to apply anything to.
        db::commit(tx).await?;
        return Ok(plan(&current, &deleted, events).outcomes);
    };

    let ids: Vec<i64> = current.values().map(|r| r.id).collect();
    let mut cast = votes::load(tx, &ids).await?;
    let derived = derive(&current, &mut cast, &deleted, events, counting);
    let plan = plan(&current, &deleted, &derived.events);
    let ballots: Vec<(i64, &StatusEvent)> = derived
        .ballots
        .iter()
        .map(|&(id, i)| (id, &events[i]))
        .collect();
    votes::cast(tx, &ballots).await?;
    observations::update(tx, &plan.updates, updated_at).await?;
    history::insert(tx, &plan.transitions).await?;
    let created: Vec<&Current> = created.iter().map(|n| &current[*n]).collect();
    let entries = feed_entries(&current, &plan, &created, updated_at);
    feed::record(tx, &entries).await?;
    db::commit(tx).await?;
    let mut outcomes = vec![Outcome::Stale; events.len()];
    for (outcome, &i) in plan.outcomes.iter().zip(&derived.from) {
        outcomes[i] = *outcome;
    }
    Ok(outcomes)
}

/// The feed entries of a batch: a creation for each row it registered, then
/// each change, with the row as a client reads it after that change: what the
/// lock found, with what the events and the failure count say up to that
/// change, and the batch's `UpdatedAt`.
fn feed_entries(
    current: &HashMap<String, Current>,
    plan: &Plan<'_>,
    created: &[&Current],
    updated_at: DateTime<Utc>,
) -> Vec<NewChange> {
    let mut entries = Vec::with_capacity(created.len() + plan.changes.len());
    for row in created {
        entries.push(NewChange {
            kind: ChangeKind::Created,
            service_id: row.id,
            name: row.name.clone(),
            at: row.created_at,
            from: None,
            service: Some(Service {
                id: row.id,
                name: row.name.clone(),
                status: Status::Unknown,
                running: false,
                failed_count: 0,
                detail: None,
                status_changed_at: None,
                last_checked_at: None,
                created_at: row.created_at,
                updated_at: row.created_at,
                votes: Vec::new(),
            }),
            source: Source::Writer,
        });
    }
    for c in &plan.changes {
        let row = &current[c.event.service.as_str()];
        entries.push(NewChange {
            kind: c.kind,
            service_id: c.service_id,
            name: row.name.clone(),
            at: c.event.observed_at,
            from: Some(c.from),
            service: Some(Service {
                id: row.id,
                name: row.name.clone(),
                status: c.event.status,
                running: c.event.running,
                // As the update adds it: stopping at the column's maximum.
                failed_count: row.failed_count.saturating_add(c.failed_so_far),
                detail: c.event.detail.clone(),
                status_changed_at: c.status_changed_at.map(stored_time),
                last_checked_at: Some(stored_time(c.event.observed_at)),
                created_at: row.created_at,
                updated_at,
                votes: Vec::new(),
            }),
            source: Source::Writer,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
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
                        name: ServiceName::parse(n).unwrap(),
                        status,
                        running: false,
                        detail: None,
                        status_changed_at: None,
                        settled: status.settled(),
                        observed_ns,
                        failed_count: 0,
                        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
                    },
                )
            })
            .collect()
    }

    fn ns(second: i64) -> Option<i64> {
        Some((1_800_000_000 + second) * 1_000_000_000)
    }

    #[test]
    fn out_of_order_events_leave_the_newest_state() {
        let current = rows(&[("es", 1, Status::Unknown, None)]);
        let events = [
            ev("es", Status::Normal, 3),
            ev("es", Status::Down, 1),
            ev("es", Status::Degraded, 2),
        ];
        let p = plan(&current, &HashMap::new(), &events);
        // In observation order: down(1), degraded(2), normal(3): all newer than nothing.
        assert_eq!(p.outcomes, [Outcome::Applied { transition: true }; 3]);
        assert_eq!(p.updates.len(), 1);
        assert_eq!(p.updates[0].event.status, Status::Normal);
        assert_eq!(p.updates[0].failed_increment, 1);
        let chain: Vec<_> = p
            .transitions
            .iter()
            .map(|t| (t.from.unwrap(), t.status))
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
        let p = plan(&current, &HashMap::new(), &events);
        assert_eq!(p.outcomes, [Outcome::Stale, Outcome::Stale]);
        assert!(p.updates.is_empty() && p.transitions.is_empty());

        let events = [ev("es", Status::Normal, 6), ev("es", Status::Normal, 6)];
        let p = plan(&current, &HashMap::new(), &events);
        assert_eq!(
            p.outcomes,
            [Outcome::Applied { transition: true }, Outcome::Stale]
        );
    }

    #[test]
    fn a_same_status_observation_is_applied_without_a_transition() {
        let current = rows(&[("es", 1, Status::Down, ns(1))]);
        let events = [ev("es", Status::Down, 2)];
        let p = plan(&current, &HashMap::new(), &events);
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
        let p = plan(&current, &HashMap::new(), &events);
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
        let p = plan(&current, &HashMap::new(), &events);
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

#[cfg(test)]
mod rules {
    use super::*;
    use chrono::{TimeZone, Utc};
    use elkservice_core::ServiceName;

    fn ev(status: Status, second: i64) -> StatusEvent {
        let mut e = StatusEvent::new(ServiceName::parse("es").unwrap(), status, false, "w");
        e.observed_at = Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap();
        e
    }

    fn row(status: Status, settled: Option<Status>) -> HashMap<String, Current> {
        HashMap::from([(
            "es".to_owned(),
            Current {
                id: 1,
                name: ServiceName::parse("es").unwrap(),
                status,
                running: false,
                detail: None,
                status_changed_at: None,
                settled,
                observed_ns: None,
                failed_count: 0,
                created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            },
        )])
    }

    #[test]
    fn a_blip_through_unknown_or_starting_back_to_down_is_not_a_new_failure() {
        let none = HashMap::new();
        let events = [
            ev(Status::Down, 1),
            ev(Status::Unknown, 2),
            ev(Status::Down, 3),
            ev(Status::Starting, 4),
            ev(Status::Down, 5),
        ];
        let p = plan(&row(Status::Normal, Some(Status::Normal)), &none, &events);
        assert_eq!(p.updates[0].failed_increment, 1);
        assert_eq!(p.updates[0].settled, Some(Status::Down));
        assert_eq!(p.transitions.len(), 5, "every transition is still recorded");

        // Across batches too: the row remembers it was down before the blip.
        let down = [ev(Status::Down, 1)];
        let p = plan(&row(Status::Unknown, Some(Status::Down)), &none, &down);
        assert_eq!(p.updates[0].failed_increment, 0);
        let p = plan(&row(Status::Unknown, Some(Status::Normal)), &none, &down);
        assert_eq!(p.updates[0].failed_increment, 1);
    }

    #[test]
    fn a_stop_the_operator_asked_for_is_down_but_no_failure() {
        let none = HashMap::new();
        let planned = |second| StatusEvent {
            planned: true,
            ..ev(Status::Down, second)
        };
        // Stopped, started, then it crashes: one failure, the crash.
        let events = [
            planned(1),
            ev(Status::Starting, 2),
            ev(Status::Normal, 3),
            ev(Status::Down, 4),
        ];
        let p = plan(&row(Status::Normal, Some(Status::Normal)), &none, &events);
        assert_eq!(p.transitions.len(), 4);
        assert_eq!(p.updates[0].failed_increment, 1);
        let p = plan(
            &row(Status::Normal, Some(Status::Normal)),
            &none,
            &events[..1],
        );
        assert_eq!(p.updates[0].failed_increment, 0);
        assert_eq!(p.updates[0].settled, Some(Status::Down));
    }

    #[test]
    fn observations_made_before_a_deletion_are_stale() {
        let deleted = HashMap::from([("es".to_owned(), ev(Status::Down, 2).observed_ns())]);
        let events = [
            ev(Status::Down, 1),
            ev(Status::Normal, 2),
            ev(Status::Normal, 3),
        ];
        // No row (it was deleted): the old ones are stale, not unknown services.
        let p = plan(&HashMap::new(), &deleted, &events[..2]);
        assert_eq!(p.outcomes, [Outcome::Stale, Outcome::Stale]);
        // Registered again by the newer one: only that one applies.
        let p = plan(&row(Status::Unknown, None), &deleted, &events);
        assert_eq!(
            p.outcomes,
            [
                Outcome::Stale,
                Outcome::Stale,
                Outcome::Applied { transition: true }
            ]
        );
    }
}
