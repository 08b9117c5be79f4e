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

use crate::settings::{Format, Webhook};
use chrono::{DateTime, Duration, Utc};
use elkservice_core::store::feed::{Change, ChangeKind};
use elkservice_core::store::notifications::NewNotification;
use elkservice_core::Status;
use serde::{Deserialize, Serialize};

/// What the planner keeps per webhook and service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub problem: Option<Problem>,
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
        // is withdrawn.
        let mut actions = Vec::new();
        if let Some(Problem {
            key: Some(key),
            due,
            ..
        }) = track.problem.take()
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
                    status.as_str(),
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
                        "resolved",
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
    kind: &str,
    problem_key: Option<String>,
    due: DateTime<Utc>,
    summary: String,
) -> NewNotification {
    let body = match webhook.format {
        // The feed entry as the api serves it, with what to tell a person.
        Format::Json => {
            let mut entry = serde_json::to_value(change).expect("an entry serialises");
            entry["Notification"] = kind.into();
            entry["Summary"] = summary.into();
            entry
        }
        // Slack's incoming webhooks take a text.
        Format::Slack => serde_json::json!({ "text": summary }),
    };
    NewNotification {
        webhook: webhook.id(),
        key: key.to_owned(),
        service: change.name.to_string(),
        kind: kind.to_owned(),
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
    use elkservice_core::{Service, ServiceName};

    fn webhook(min_down_secs: u32, degraded: bool) -> Webhook {
        Webhook {
            url: "http://127.0.0.1:1/hook".into(),
            format: Format::Json,
            services: elkservice_core::glob::Glob::parse("*").unwrap(),
            min_down_secs,
            degraded,
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
            }),
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
