//! A notification's body in each webhook format, as each service documents
//! what it accepts. Pure, so each shape is tested here.

use crate::plan;
use crate::settings::{Format, Webhook};
use elkservice_core::store::feed::Change;
use elkservice_core::store::notifications::Kind;
use elkservice_core::Status;
use serde_json::{json, Value};

/// Discord refuses a `content` longer than this.
const DISCORD_MAX: usize = 2000;
/// PagerDuty truncates a `summary` longer than this; cut it ourselves.
const PAGERDUTY_SUMMARY_MAX: usize = 1024;

/// What one notification says, whatever the format.
pub struct Message<'a> {
    pub change: &'a Change,
    /// The notification's own key (its Idempotency-Key).
    pub key: &'a str,
    pub kind: Kind,
    /// For the end of a problem: the key of the notification that told its
    /// beginning.
    pub problem_key: Option<&'a str>,
    /// A sentence for people.
    pub summary: &'a str,
}

/// The body `webhook` is sent for `m`.
pub fn body(webhook: &Webhook, m: &Message) -> Value {
    let title = format!("{} {}", m.change.name, m.kind.as_str());
    match webhook.format {
        // The feed entry as the api serves it, with what to tell a person.
        Format::Json => {
            let mut entry = serde_json::to_value(m.change).expect("an entry serialises");
            entry["Notification"] = m.kind.as_str().into();
            entry["Summary"] = m.summary.into();
            entry
        }
        // Slack's incoming webhooks take a text.
        Format::Slack => json!({ "text": m.summary }),
        // A Discord webhook's message; a detail saying "@everyone" pings
        // no one.
        Format::Discord => json!({
            "content": cut(m.summary, DISCORD_MAX),
            "allowed_mentions": { "parse": [] },
        }),
        // A Teams workflow ("Post to a channel when a webhook request is
        // received") takes a message with an Adaptive Card.
        Format::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
                          "color": teams_color(m.kind), "wrap": true },
                        { "type": "TextBlock", "text": m.summary, "wrap": true },
                    ],
                },
            }],
        }),
        // ntfy's JSON publishing, to the server's root with the topic inside
        // (see [`Webhook::delivery_url`]).
        Format::Ntfy => json!({
            "topic": webhook.ntfy_topic().unwrap_or_default(),
            "title": title,
            "message": m.summary,
            "priority": ntfy_priority(m.kind),
            "tags": [ntfy_tag(m.kind)],
        }),
        Format::Pagerduty => pagerduty(webhook, m),
    }
}

/// PagerDuty's Events API v2: a problem triggers an alert, its end
/// resolves it; one `dedup_key` per service problem joins the two.
fn pagerduty(webhook: &Webhook, m: &Message) -> Value {
    let routing_key = webhook.routing_key.as_deref().unwrap_or_default();
    let name = m.change.name.as_str();
    let (action, opened_by) = match m.kind {
        Kind::Problem(_) | Kind::Flapping => ("trigger", m.key),
        Kind::Resolved => ("resolve", m.problem_key.unwrap_or(m.key)),
        // The stable message ends the flapping alert: its key is the
        // flapping one's with `-stable`.
        Kind::Stable => ("resolve", m.key.trim_end_matches(plan::STABLE)),
    };
    let dedup_key = format!("elkservice-{name}-{opened_by}");
    if action == "resolve" {
        return json!({ "routing_key": routing_key, "event_action": action, "dedup_key": dedup_key });
    }
    let severity = match m.kind {
        Kind::Problem(Status::Down) => "critical",
        _ => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": {
            "summary": cut(m.summary, PAGERDUTY_SUMMARY_MAX),
            "source": "elkservice",
            "severity": severity,
            "component": name,
            "timestamp": m.change.at.to_rfc3339(),
            "custom_details": { "Seq": m.change.seq, "Notification": m.kind.as_str() },
        },
    })
}

fn teams_color(kind: Kind) -> &'static str {
    match kind {
        Kind::Problem(Status::Down) => "Attention",
        Kind::Problem(_) | Kind::Flapping => "Warning",
        Kind::Resolved | Kind::Stable => "Good",
    }
}

/// ntfy's priorities: 5 max, 4 high, 3 default.
fn ntfy_priority(kind: Kind) -> u8 {
    match kind {
        Kind::Problem(Status::Down) => 5,
        Kind::Problem(_) | Kind::Flapping => 4,
        Kind::Resolved | Kind::Stable => 3,
    }
}

/// An emoji short code, which ntfy shows before the title.
fn ntfy_tag(kind: Kind) -> &'static str {
    match kind {
        Kind::Problem(Status::Down) => "rotating_light",
        Kind::Problem(_) | Kind::Flapping => "warning",
        Kind::Resolved | Kind::Stable => "white_check_mark",
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max - 1) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use elkservice_core::glob::Glob;
    use elkservice_core::store::feed::{ChangeKind, Source};
    use elkservice_core::ServiceName;

    fn webhook(format: Format, url: &str) -> Webhook {
        Webhook {
            url: url.into(),
            format,
            services: Glob::parse("*").unwrap(),
            min_down_secs: 0,
            degraded: true,
            flap_max_changes: 0,
            flap_window_secs: 600,
            secret: None,
            routing_key: Some("R0UT1NGKEY".into()),
        }
    }

    fn change() -> Change {
        Change {
            seq: 41,
            kind: ChangeKind::Transition,
            id: 7,
            name: ServiceName::parse("es").unwrap(),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            from_status: Some(Status::Normal),
            service: None,
            source: Some(Source::Writer),
        }
    }

    fn message<'a>(
        change: &'a Change,
        kind: Kind,
        key: &'a str,
        problem: Option<&'a str>,
    ) -> Message<'a> {
        Message {
            change,
            key,
            kind,
            problem_key: problem,
            summary: "es is down (container exited, exit code 137)",
        }
    }

    #[test]
    fn pagerduty_triggers_and_resolves_one_alert_per_problem() {
        let w = webhook(Format::Pagerduty, "https://events.pagerduty.com/v2/enqueue");
        let c = change();
        let trigger = body(&w, &message(&c, Kind::Problem(Status::Down), "41", None));
        assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], "elkservice-es-41");
        let payload = &trigger["payload"];
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["source"], "elkservice");
        assert_eq!(payload["component"], "es");
        assert_eq!(payload["timestamp"], "2027-01-15T08:00:00+00:00");
        assert!(payload["summary"]
            .as_str()
            .unwrap()
            .starts_with("es is down"));
        let resolve = body(&w, &message(&c, Kind::Resolved, "57", Some("41")));
        assert_eq!(
            resolve,
            json!({"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": "elkservice-es-41"})
        );
        let flapping = body(&w, &message(&c, Kind::Flapping, "60", None));
        let stable = body(&w, &message(&c, Kind::Stable, "60-stable", None));
        assert_eq!(flapping["dedup_key"], stable["dedup_key"]);
        assert_eq!(
            (&flapping["event_action"], &stable["event_action"]),
            (&json!("trigger"), &json!("resolve"))
        );
    }

    #[test]
    fn discord_teams_and_ntfy_get_their_documented_bodies() {
        let c = change();
        let m = message(&c, Kind::Problem(Status::Down), "41", None);
        let discord = body(
            &webhook(Format::Discord, "https://discord.com/api/webhooks/1/x"),
            &m,
        );
        assert_eq!(discord["content"], m.summary);
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        let long = Message {
            summary: &"x".repeat(3000),
            ..message(&c, Kind::Resolved, "2", None)
        };
        let cut = body(&webhook(Format::Discord, "https://d/x"), &long);
        assert_eq!(
            cut["content"].as_str().unwrap().chars().count(),
            DISCORD_MAX
        );

        let teams = body(&webhook(Format::Teams, "https://t/x"), &m);
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"][0]["text"], "es down");
        assert_eq!(card["content"]["body"][1]["text"], m.summary);

        let w = webhook(Format::Ntfy, "https://ntfy.example/alerts");
        let ntfy = body(&w, &m);
        assert_eq!(w.delivery_url(), "https://ntfy.example/");
        assert_eq!(
            ntfy,
            json!({"topic": "alerts", "title": "es down", "message": m.summary, "priority": 5,
                   "tags": ["rotating_light"]})
        );
    }
}
