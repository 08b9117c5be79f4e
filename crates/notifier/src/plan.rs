//! What to send for one feed entry, for one webhook. Pure: the runner feeds
//! it the entry, what it keeps for the webhook and service (a [`Track`]), and
//! whether a silence covers the service; it answers with notifications to
//! queue and pending ones to withdraw.
//!
//! - A problem (`down`, and `degraded` where the webhook asks for it) is
//!   notified when it begins, `min_down_secs` later: if it ends before then,
//!   nothing is sent at all (the queued notification is withdrawn).
//! - It ends when the service is `normal` again (or `degraded`, for a webhook
//!   that does not count `degraded` as a problem); `starting` and `unknown`
//!   are not an end. Its end is notified only if its beginning was.
//! - A service covered by a silence when its problem begins sends nothing
//!   for that problem, end included.
//! - A service whose problems begin or end more than `flap_max_changes`
//!   times within `flap_window_secs` is flapping: one `flapping` notification,
//!   then nothing until it has been stable for the window ([`wake`]), then one
//!   `stable` notification with its status then.

use crate::channels::{self, Message};
use crate::settings::Webhook;
use chrono::{DateTime, Duration, Utc};
use elkservice_core::store::feed::{Change, ChangeKind};
use elkservice_core::store::notifications::{Kind, NewNotification};
use elkservice_core::Status;
use serde::{Deserialize, Serialize};

/// The stable message's key is the flapping one's with this after it.
pub const STABLE: &str = "-stable";

/// What the planner keeps per webhook and service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub problem: Option<Problem>,
    /// When problems began or ended, within the flapping window.
    #[serde(default)]
    pub edges: Vec<DateTime<Utc>>,
    #[serde(default)]
    pub flapping: Option<Flapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flapping {
    /// The last beginning or end of a problem.
    pub last_edge: DateTime<Utc>,
    /// Whether the service has a problem as of then.
    pub problem: Option<Status>,
    /// What to send once it has been stable for the window.
    pub stable_key: String,
    pub stable_body: String,
}

impl Track {
    /// When [`wake`] has something to do, if ever.
    pub fn wake_at(&self, webhook: &Webhook) -> Option<DateTime<Utc>> {
        self.flapping
            .as_ref()
            .map(|f| f.last_edge + Duration::seconds(webhook.flap_window_secs.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub status: Status,
    pub since: DateTime<Utc>,
    /// The key of its notification; None when a silence covered it.
    pub key: Option<String>,
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Queue(NewNotification),
    /// Withdraw the pending notification with this key.
    Cancel(String),
}

fn is_problem(webhook: &Webhook, status: Status) -> bool {
    status == Status::Down || (webhook.degraded && status == Status::Degraded)
}

fn ends_problem(webhook: &Webhook, status: Status) -> bool {
    status == Status::Normal || (status == Status::Degraded && !webhook.degraded)
}

pub fn plan(webhook: &Webhook, track: &mut Track, change: &Change, silenced: bool) -> Vec<Action> {
    let Some(service) = &change.service else {
        // Deleted: nothing more to say about it; a notification not yet due
        // is withdrawn, and the track is emptied (a service made later under
        // the name starts afresh), so its row goes.
        let mut actions = Vec::new();
        if let Some(Problem {
            key: Some(key),
            due,
            ..
        }) = std::mem::take(track).problem
        {
            if due > change.at {
                actions.push(Action::Cancel(key));
            }
        }
        return actions;
    };
    if change.kind == ChangeKind::Deleted {
        return Vec::new();
    }
    let status = service.status;
    let begins = track.problem.is_none() && is_problem(webhook, status);
    let ends = track.problem.is_some() && ends_problem(webhook, status);
    if (begins || ends) && webhook.flap_max_changes > 0 {
        let window = Duration::seconds(webhook.flap_window_secs.into());
        track.edges.push(change.at);
        track.edges.retain(|t| *t > change.at - window);
        if track.flapping.is_some() || track.edges.len() > webhook.flap_max_changes as usize {
            return flap(webhook, track, change, begins);
        }
    }
    match &track.problem {
        None if is_problem(webhook, status) => {
            let due = change.at + Duration::seconds(webhook.min_down_secs.into());
            let key = (!silenced).then(|| change.seq.to_string());
            let mut actions = Vec::new();
            if let Some(key) = &key {
                actions.push(Action::Queue(notification(
                    webhook,
                    change,
                    key,
                    Kind::Problem(status),
                    None,
                    due,
                    summary_of_problem(change),
                )));
            }
            track.problem = Some(Problem {
                status,
                since: change.at,
                key,
                due,
            });
            actions
        }
        Some(p) if ends_problem(webhook, status) => {
            let p = p.clone();
            track.problem = None;
            match p.key {
                None => Vec::new(),
                // Shorter than min_down_secs: it never happened, as far as
                // people are told.
                Some(key) if p.due > change.at => vec![Action::Cancel(key)],
                Some(key) => {
                    let lasted = change.at - p.since;
                    vec![Action::Queue(notification(
                        webhook,
                        change,
                        &change.seq.to_string(),
                        Kind::Resolved,
                        Some(key),
                        change.at,
                        format!(
                            "{} is {} again after {} {} ({})",
                            change.name,
                            status,
                            human(lasted),
                            p.status,
                            service.detail.as_deref().unwrap_or("no detail")
                        ),
                    ))]
                }
            }
        }
        _ => Vec::new(),
    }
}

/// A beginning or end while flapping, or the one that makes it flapping.
fn flap(webhook: &Webhook, track: &mut Track, change: &Change, begins: bool) -> Vec<Action> {
    let service = change.service.as_ref().expect("a row");
    let mut actions = Vec::new();
    let stable_key = format!("{}{STABLE}", change.seq);
    let stable_body = notification(
        webhook,
        change,
        &stable_key,
        Kind::Stable,
        None,
        change.at,
        format!(
            "{} has been stable for {}: {} ({})",
            change.name,
            human(Duration::seconds(webhook.flap_window_secs.into())),
            service.status,
            service.detail.as_deref().unwrap_or("no detail")
        ),
    )
    .body;
    if track.flapping.is_none() {
        // A notification not yet due is withdrawn; the one note is this.
        if let Some(Problem {
            key: Some(key),
            due,
            ..
        }) = &track.problem
        {
            if *due > change.at {
                actions.push(Action::Cancel(key.clone()));
            }
        }
        actions.push(Action::Queue(notification(
            webhook,
            change,
            &change.seq.to_string(),
            Kind::Flapping,
            None,
            change.at,
            format!(
                "{} is flapping: {} changes within {}; now {} (further changes are not \
                 notified until it has been stable that long)",
                change.name,
                track.edges.len(),
                human(Duration::seconds(webhook.flap_window_secs.into())),
                service.status
            ),
        )));
    }
    // Followed without a word: whatever is open is settled by the stable
    // message, not by a resolution.
    track.problem = begins.then_some(Problem {
        status: service.status,
        since: change.at,
        key: None,
        due: change.at,
    });
    track.flapping = Some(Flapping {
        last_edge: change.at,
        problem: begins.then_some(service.status),
        stable_key,
        stable_body,
    });
    actions
}

/// Once a flapping service has been stable for the window (`now`): its one
/// `stable` message. A problem it still has is then open and told, so its end
/// will be notified.
pub fn wake(
    webhook: &Webhook,
    track: &mut Track,
    service: &str,
    now: DateTime<Utc>,
) -> Option<Action> {
    if track.wake_at(webhook).is_none_or(|at| at > now) {
        return None;
    }
    let f = track.flapping.take().expect("flapping");
    track.edges.clear();
    track.problem = f.problem.map(|status| Problem {
        status,
        since: f.last_edge,
        key: Some(f.stable_key.clone()),
        due: now,
    });
    Some(Action::Queue(NewNotification {
        webhook: webhook.id(),
        key: f.stable_key,
        service: service.to_owned(),
        kind: Kind::Stable,
        problem_key: None,
        body: f.stable_body,
        due_at: now,
    }))
}

fn summary_of_problem(change: &Change) -> String {
    let service = change.service.as_ref().expect("a row");
    format!(
        "{} is {} ({})",
        change.name,
        service.status,
        service.detail.as_deref().unwrap_or("no detail")
    )
}

fn notification(
    webhook: &Webhook,
    change: &Change,
    key: &str,
    kind: Kind,
    problem_key: Option<String>,
    due: DateTime<Utc>,
    summary: String,
) -> NewNotification {
    let body = channels::body(
        webhook,
        &Message {
            change,
            key,
            kind,
            problem_key: problem_key.as_deref(),
            summary: &summary,
        },
    );
    NewNotification {
        webhook: webhook.id(),
        key: key.to_owned(),
        service: change.name.to_string(),
        kind,
        problem_key,
        body: body.to_string(),
        due_at: due,
    }
}

/// "3 min 20 s", "2 h 5 min", "12 s".
fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Format;
    use elkservice_core::{Service, ServiceName};

    fn webhook(min_down_secs: u32, degraded: bool) -> Webhook {
        Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            format: Format::Json,
            services: elkservice_core::glob::Glob::parse("*").unwrap(),
            min_down_secs,
            degraded,
            flap_max_changes: 0,
            flap_window_secs: 600,
            secret: None,
            routing_key: None,
        }
    }

    fn change(seq: i64, second: i64, status: Status) -> Change {
        let at = DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap();
        Change {
            seq,
            kind: ChangeKind::Transition,
            id: 1,
            name: ServiceName::parse("es").unwrap(),
            at,
            from_status: None,
            service: Some(Service {
                id: 1,
                name: ServiceName::parse("es").unwrap(),
                status,
                running: status != Status::Down,
                failed_count: 0,
                detail: Some("container exited, exit code 137".into()),
                status_changed_at: Some(at),
                last_checked_at: Some(at),
                created_at: at,
                updated_at: at,
                votes: Vec::new(),
            }),
            source: None,
        }
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Queue(n) => format!("{} {}", n.kind, n.key),
                Action::Cancel(k) => format!("cancel {k}"),
            })
            .collect()
    }

    #[test]
    fn a_problem_and_its_end_are_notified_once_each() {
        let w = webhook(0, false);
        let mut t = Track::default();
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(1, 0, Status::Down), false)),
            ["down 1"]
        );
        // Still a problem on the way back: nothing yet.
        assert!(plan(&w, &mut t, &change(2, 5, Status::Starting), false).is_empty());
        let resolved = plan(&w, &mut t, &change(3, 200, Status::Normal), false);
        assert_eq!(kinds(&resolved), ["resolved 3"]);
        let Action::Queue(n) = &resolved[0] else {
            panic!()
        };
        assert_eq!(n.problem_key.as_deref(), Some("1"));
        let body: serde_json::Value = serde_json::from_str(&n.body).unwrap();
        assert_eq!(body["Seq"], 3);
        assert!(
            body["Summary"]
                .as_str()
                .unwrap()
                .contains("after 3 min 20 s down"),
            "{body}"
        );
        assert!(plan(&w, &mut t, &change(4, 300, Status::Normal), false).is_empty());
    }

    #[test]
    fn a_problem_shorter_than_min_down_sends_nothing() {
        let w = webhook(30, false);
        let mut t = Track::default();
        let down = plan(&w, &mut t, &change(1, 0, Status::Down), false);
        let Action::Queue(n) = &down[0] else { panic!() };
        assert_eq!(
            n.due_at,
            change(1, 30, Status::Down).at,
            "due after min_down_secs"
        );
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(2, 10, Status::Normal), false)),
            ["cancel 1"]
        );
        // Longer than that: both are sent.
        plan(&w, &mut t, &change(3, 100, Status::Down), false);
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(4, 140, Status::Normal), false)),
            ["resolved 4"]
        );
    }

    #[test]
    fn degraded_is_a_problem_only_where_the_webhook_asks() {
        let mut t = Track::default();
        assert!(plan(
            &webhook(0, false),
            &mut t,
            &change(1, 0, Status::Degraded),
            false
        )
        .is_empty());
        let mut t = Track::default();
        let w = webhook(0, true);
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(1, 0, Status::Degraded), false)),
            ["degraded 1"]
        );
        // Worse is the same problem.
        assert!(plan(&w, &mut t, &change(2, 1, Status::Down), false).is_empty());
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(3, 2, Status::Normal), false)),
            ["resolved 3"]
        );
    }

    #[test]
    fn a_silenced_problem_sends_nothing_not_even_its_end() {
        let w = webhook(0, false);
        let mut t = Track::default();
        assert!(plan(&w, &mut t, &change(1, 0, Status::Down), true).is_empty());
        // The silence is over by the time it recovers: still nothing.
        assert!(plan(&w, &mut t, &change(2, 60, Status::Normal), false).is_empty());
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(3, 90, Status::Down), false)),
            ["down 3"]
        );
    }

    #[test]
    fn a_flapping_service_sends_one_note_then_one_when_stable() {
        let w = Webhook {
            flap_max_changes: 2,
            flap_window_secs: 60,
            ..webhook(0, false)
        };
        let mut t = Track::default();
        let mut sent = Vec::new();
        // Down and up every 5 s for 2 minutes.
        for i in 0..24 {
            let status = if i % 2 == 0 {
                Status::Down
            } else {
                Status::Normal
            };
            sent.extend(kinds(&plan(
                &w,
                &mut t,
                &change(i + 1, i * 5, status),
                false,
            )));
        }
        assert_eq!(sent, ["down 1", "resolved 2", "flapping 3"]);
        let last = change(24, 115, Status::Normal).at;
        assert_eq!(t.wake_at(&w), Some(last + Duration::seconds(60)));
        assert!(wake(&w, &mut t, "es", last + Duration::seconds(59)).is_none());
        let stable = wake(&w, &mut t, "es", last + Duration::seconds(60)).expect("stable");
        let Action::Queue(n) = stable else { panic!() };
        assert_eq!((n.kind, n.key.as_str()), (Kind::Stable, "24-stable"));
        assert!(
            n.body.contains("es has been stable for 1 min 0 s: normal"),
            "{}",
            n.body
        );
        assert_eq!(t.wake_at(&w), None);
        // Back to normal notifying.
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(30, 400, Status::Down), false)),
            ["down 30"]
        );
    }

    #[test]
    fn a_service_still_down_when_stable_has_its_end_notified() {
        let w = Webhook {
            flap_max_changes: 2,
            flap_window_secs: 60,
            ..webhook(0, false)
        };
        let mut t = Track::default();
        for (i, status) in [Status::Down, Status::Normal, Status::Down]
            .into_iter()
            .enumerate()
        {
            plan(&w, &mut t, &change(i as i64 + 1, i as i64, status), false);
        }
        let at = change(3, 2, Status::Down).at + Duration::seconds(60);
        let Some(Action::Queue(n)) = wake(&w, &mut t, "es", at) else {
            panic!()
        };
        assert!(n.body.contains("stable for 1 min 0 s: down"), "{}", n.body);
        assert_eq!(
            kinds(&plan(&w, &mut t, &change(9, 100, Status::Normal), false)),
            ["resolved 9"]
        );
    }

    #[test]
    fn slack_gets_a_text() {
        let w = Webhook {
            format: Format::Slack,
            ..webhook(0, false)
        };
        let actions = plan(
            &w,
            &mut Track::default(),
            &change(1, 0, Status::Down),
            false,
        );
        let Action::Queue(n) = &actions[0] else {
            panic!()
        };
        let body: serde_json::Value = serde_json::from_str(&n.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"text": "es is down (container exited, exit code 137)"})
        );
    }
}
