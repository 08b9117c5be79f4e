//! The notifier against the real MariaDB, with the api making the changes (so
//! the feed is the real one) and a real HTTP receiver in the test that
//! records what it gets.

use elkservice_api::keys::{digest, KeyRing};
use elkservice_api::settings::{ApiSettings, Settings as ApiFullSettings};
use elkservice_api::startup::Application;
use elkservice_core::config::{DatabaseSettings, LogFormat, LogSettings};
use elkservice_core::glob::Glob;
use elkservice_core::program::Program;
use elkservice_notifier::settings::{Format, NotifierSettings, Settings, Webhook};
use elkservice_notifier::Notifier;
use elkservice_testkit::{
    eventually, free_port, get_json, program, wait_delivering, Got, Killed, Receiver, TestDatabase,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Instant;
use tokio::sync::watch;

const KEY: &str = "notifier-test-key";

/// A webhook for this receiver.
trait AsWebhook {
    fn webhook(&self, min_down_secs: u32) -> Webhook;
}

impl AsWebhook for Receiver {
    fn webhook(&self, min_down_secs: u32) -> Webhook {
        Webhook {
            url: self.url.clone(),
            format: Format::Json,
            services: Glob::parse("*").unwrap(),
            min_down_secs,
            degraded: false,
            // The tests change statuses faster than any service flaps,
            // except the one about flapping.
            flap_max_changes: 0,
            flap_window_secs: 600,
            secret: None,
            routing_key: None,
        }
    }
}

struct Harness {
    db: TestDatabase,
    api: String,
    http: reqwest::Client,
}

impl Harness {
    async fn new() -> Self {
        let db = TestDatabase::new();
        let settings = ApiFullSettings {
            api: ApiSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                keys: KeyRing::parse([digest(KEY).as_str()]).unwrap(),
                auth_reads: false,
                shutdown_timeout_secs: 1,
                feed_retention_days: 30,
                read_model_max_lag_ms: 1000,
                external_change_secs: 2,
                tls_cert: None,
                tls_key: None,
            },
            database: database(&db),
            log: LogSettings {
                format: LogFormat::Json,
            },
        };
        let app = Application::build(settings).await.unwrap();
        let api = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Harness {
            db,
            api,
            http: reqwest::Client::new(),
        }
    }

    fn settings(&self, webhooks: Vec<Webhook>) -> Settings {
        Settings {
            notifier: NotifierSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                poll_ms: 50,
                max_attempts: 50,
                retry_initial_ms: 100,
                retry_max_secs: 1,
                timeout_secs: 5,
                webhooks,
            },
            database: database(&self.db),
            log: LogSettings {
                format: LogFormat::Json,
            },
        }
    }

    /// A notifier in this process, stopped when the sender is dropped.
    async fn start(&self, webhooks: Vec<Webhook>) -> watch::Sender<bool> {
        self.start_with(self.settings(webhooks)).await
    }

    async fn start_with(&self, settings: Settings) -> watch::Sender<bool> {
        let notifier = Notifier::build(settings).unwrap();
        let port = notifier.port();
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(notifier.run(shutdown));
        wait_delivering(port).await;
        stop
    }

    async fn create(&self, name: &str) -> i64 {
        let res = self
            .http
            .post(format!("{}/elkservice", self.api))
            .bearer_auth(KEY)
            .json(&json!({"Name": name, "Status": "normal", "Running": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()["Id"].as_i64().unwrap()
    }

    /// Set a status through the api; returns the feed's Seq after it.
    async fn set(&self, id: i64, name: &str, status: &str) -> i64 {
        let res = self
            .http
            .put(format!("{}/elkservice/{id}", self.api))
            .bearer_auth(KEY)
            .json(
                &json!({"Name": name, "Status": status, "Running": status != "down",
                "FailedCount": 0, "Detail": format!("set to {status}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        self.last_seq().await
    }

    async fn last_seq(&self) -> i64 {
        let res = self
            .http
            .get(format!("{}/elkservice/changes?limit=1", self.api))
            .send()
            .await
            .unwrap();
        res.headers()["x-last-seq"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The outbox's states, by key.
    async fn outbox(&self) -> HashMap<String, String> {
        let mut conn = self.db.connect().await;
        sqlx::query_as::<_, (String, String)>(
            "SELECT idempotency_key, state FROM elkservice_notification",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Wait until the notifier has planned every entry up to `seq`.
    async fn planned_through(&self, seq: i64) {
        eventually(30, "the notifier to plan the entries", || async {
            let mut conn = self.db.connect().await;
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM elkservice_notifier_cursor WHERE name = 'planner'",
            )
            .fetch_optional(&mut conn)
            .await
            .ok()?;
            at.filter(|s| *s >= seq).map(|_| ())
        })
        .await;
    }
}

fn database(db: &TestDatabase) -> DatabaseSettings {
    DatabaseSettings {
        url: db.url.clone(),
        max_connections: 4,
        acquire_timeout_secs: 5,
    }
}

fn kinds(got: &[Got]) -> Vec<String> {
    got.iter()
        .map(|g| {
            format!(
                "{} {}",
                g.body["Notification"].as_str().unwrap_or("?"),
                g.key
            )
        })
        .collect()
}

#[tokio::test]
async fn a_problem_and_its_end_reach_the_receiver_once_each() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0);
    let _stop = h.start(vec![receiver.webhook(0)]).await;
    let id = h.create("es").await;

    let put = Instant::now();
    let down = h.set(id, "es", "down").await;
    let got = eventually(10, "the down notification", || async {
        let got = receiver.got();
        (!got.is_empty()).then_some(got)
    })
    .await;
    eprintln!("PUT down → receiver: {} ms", (got[0].at - put).as_millis());
    assert_eq!(kinds(&got), [format!("down {down}")]);
    assert_eq!(got[0].body["Seq"], down);
    assert_eq!(got[0].body["Service"]["Status"], "down");
    assert_eq!(got[0].body["Summary"], "es is down (set to down)");

    let up = h.set(id, "es", "normal").await;
    let got = eventually(10, "the resolved notification", || async {
        let got = receiver.got();
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert_eq!(
        kinds(&got),
        [format!("down {down}"), format!("resolved {up}")]
    );
    // Only the transitions that start and end a problem are news.
    let again = h.set(id, "es", "normal").await;
    h.planned_through(again).await;
    assert_eq!(receiver.got().len(), 2);
}

/// A receiver that holds the webhook's secret verifies every delivery with
/// the Standard Webhooks library, a retry included; with another secret, or
/// a body changed on the way, it refuses it.
#[tokio::test]
async fn a_signed_delivery_verifies_with_the_standard_webhooks_library() {
    const SECRET: &str = "whsec_ZWxrc2VydmljZS10ZXN0LXNlY3JldC0yNA==";
    const OTHER: &str = "whsec_c29tZW9uZS1lbHNlLWVudGlyZWx5LXh5eg==";
    let h = Harness::new().await;
    // The first attempt fails: the one that arrives is a retry.
    let receiver = Receiver::start(1);
    let webhook = Webhook {
        secret: Some(SECRET.into()),
        ..receiver.webhook(0)
    };
    let _stop = h.start(vec![webhook]).await;
    let id = h.create("es").await;
    h.set(id, "es", "down").await;
    let got = eventually(20, "the signed notification", || async {
        receiver.got().into_iter().next()
    })
    .await;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in got.headers.iter() {
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let verify = |secret: &str, body: &[u8]| {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(body, &headers)
    };
    verify(SECRET, &got.raw).expect("a delivery signed with the secret verifies");
    assert_eq!(
        headers["webhook-id"].to_str().unwrap(),
        got.key,
        "the message id is the notification's key, the same on a retry"
    );
    assert!(
        verify(OTHER, &got.raw).is_err(),
        "verified with another secret"
    );
    let mut changed = got.raw.clone();
    changed.extend_from_slice(b" ");
    assert!(verify(SECRET, &changed).is_err(), "verified a changed body");
}

/// Each channel's receiver gets the body its service documents, for the
/// problem and for its end.
#[tokio::test]
async fn discord_teams_ntfy_and_pagerduty_get_their_own_bodies() {
    let h = Harness::new().await;
    let receivers: Vec<(Format, Receiver)> = [
        Format::Discord,
        Format::Teams,
        Format::Ntfy,
        Format::Pagerduty,
    ]
    .into_iter()
    .map(|f| (f, Receiver::start(0)))
    .collect();
    let webhooks = receivers
        .iter()
        .map(|(format, r)| Webhook {
            format: *format,
            routing_key: Some("R0UT1NGKEY".into()),
            ..r.webhook(0)
        })
        .collect();
    let _stop = h.start(webhooks).await;
    let id = h.create("es").await;
    let down = h.set(id, "es", "down").await;
    h.set(id, "es", "normal").await;
    let got: HashMap<Format, Vec<Got>> = eventually(20, "two deliveries to each", || async {
        let got: HashMap<_, _> = receivers.iter().map(|(f, r)| (*f, r.got())).collect();
        got.values().all(|g| g.len() == 2).then_some(got)
    })
    .await;
    let bodies = |f: Format| {
        got[&f]
            .iter()
            .map(|g| g.body.clone())
            .collect::<Vec<Value>>()
    };

    let discord = bodies(Format::Discord);
    assert!(
        discord[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("es is down"),
        "{discord:?}"
    );
    assert!(discord[1]["content"]
        .as_str()
        .unwrap()
        .starts_with("es is normal again"));
    assert_eq!(discord[0]["allowed_mentions"]["parse"], json!([]));

    let teams = bodies(Format::Teams);
    let card = &teams[0]["attachments"][0];
    assert_eq!(
        (&teams[0]["type"], &card["contentType"]),
        (
            &json!("message"),
            &json!("application/vnd.microsoft.card.adaptive")
        )
    );
    assert_eq!(card["content"]["body"][0]["text"], "es down");

    let ntfy = &got[&Format::Ntfy];
    assert_eq!(
        ntfy[0].path, "/",
        "ntfy's JSON publishing goes to the server's root"
    );
    assert_eq!(
        (&ntfy[0].body["topic"], &ntfy[0].body["priority"]),
        (&json!("hook"), &json!(5))
    );
    assert_eq!(ntfy[1].body["tags"], json!(["white_check_mark"]));

    let pd = bodies(Format::Pagerduty);
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["routing_key"], "R0UT1NGKEY");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["dedup_key"], format!("elkservice-es-{down}"));
    assert_eq!(
        pd[1],
        json!({"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": format!("elkservice-es-{down}")})
    );
}

/// What the notifier keeps per service goes with the service: a deleted one
/// leaves no track, and its notification not yet due is withdrawn.
#[tokio::test]
async fn a_deleted_service_leaves_no_track_behind() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0);
    let _stop = h.start(vec![receiver.webhook(3600)]).await;
    let id = h.create("es").await;
    let down = h.set(id, "es", "down").await;
    h.planned_through(down).await;
    let tracks = || async {
        let mut conn = h.db.connect().await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM elkservice_notifier_track")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        n
    };
    assert_eq!(tracks().await, 1, "an open problem is tracked");
    let res = h
        .http
        .delete(format!("{}/elkservice/{id}", h.api))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let deleted = h.last_seq().await;
    h.planned_through(deleted).await;
    assert_eq!(tracks().await, 0, "the deleted service's track is gone");
    let list = get_json(&h.http, &format!("{}/notifications", h.api))
        .await
        .unwrap();
    assert_eq!(list[0]["State"], "cancelled", "{list}");
    assert!(receiver.got().is_empty());
}

#[tokio::test]
async fn a_problem_shorter_than_min_down_and_a_silenced_one_send_nothing() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0);
    let _stop = h.start(vec![receiver.webhook(30)]).await;
    let (es, kibana) = (h.create("es").await, h.create("kibana").await);

    // A 30-second wait for a problem that ends at once: withdrawn.
    let down = h.set(es, "es", "down").await;
    let up = h.set(es, "es", "normal").await;
    h.planned_through(up).await;
    assert_eq!(h.outbox().await[&down.to_string()], "cancelled");

    // Silenced while it starts: nothing queued at all, not even its end.
    let res = h
        .http
        .post(format!("{}/silences", h.api))
        .bearer_auth(KEY)
        .json(&json!({"Match": "kib*", "Until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    h.set(kibana, "kibana", "down").await;
    let up = h.set(kibana, "kibana", "normal").await;
    h.planned_through(up).await;
    assert_eq!(h.outbox().await.len(), 1, "{:?}", h.outbox().await);
    assert!(receiver.got().is_empty());
}

/// A receiver answering 500 for 30 s.
#[tokio::test]
async fn a_failing_receiver_gets_its_notification_later_and_others_do_not_wait() {
    let h = Harness::new().await;
    let outage = std::time::Duration::from_secs(30);
    let failing = Receiver::start_failing_for(outage);
    let began = Instant::now();
    let healthy = Receiver::start(0);
    let _stop = h.start(vec![failing.webhook(0), healthy.webhook(0)]).await;
    let id = h.create("logstash").await;
    let down = h.set(id, "logstash", "down").await;
    eventually(10, "the healthy receiver", || async {
        (!healthy.got().is_empty()).then_some(())
    })
    .await;
    assert!(failing.got().is_empty(), "it answered 500 so far");
    let got = eventually(60, "the failing receiver, once it recovers", || async {
        let got = failing.got();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(kinds(&got), [format!("down {down}")]);
    assert_eq!(kinds(&healthy.got()), kinds(&got), "the same key to both");
    let late = got[0].at - (began + outage);
    eprintln!(
        "the healthy receiver after {} ms; the failing one {} ms after it recovered",
        (healthy.got()[0].at - began).as_millis(),
        late.as_millis()
    );
}

#[tokio::test]
async fn a_flapping_service_sends_three_notifications_then_one_when_stable() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0);
    let webhook = Webhook {
        flap_max_changes: 2,
        flap_window_secs: 2,
        ..receiver.webhook(0)
    };
    let _stop = h.start(vec![webhook]).await;
    let id = h.create("nginx").await;
    let mut last = 0;
    for i in 0..12 {
        last = h
            .set(id, "nginx", if i % 2 == 0 { "down" } else { "normal" })
            .await;
    }
    h.planned_through(last).await;
    let flapping = Instant::now();
    let got = eventually(30, "the stable message", || async {
        let got = receiver.got();
        (got.len() >= 4).then_some(got)
    })
    .await;
    let kinds: Vec<_> = got
        .iter()
        .map(|g| g.body["Notification"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["down", "resolved", "flapping", "stable"]);
    assert!(
        flapping.elapsed().as_secs_f64() >= 1.0,
        "stable only after the window"
    );
    assert_eq!(got[3].key, format!("{last}-stable"));
    assert!(
        got[3].body["Summary"]
            .as_str()
            .unwrap()
            .contains(": normal"),
        "{}",
        got[3].body
    );
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_recorded_failed_and_listed_by_the_api() {
    let h = Harness::new().await;
    let broken = Receiver::start(usize::MAX);
    let healthy = Receiver::start(0);
    let mut settings = h.settings(vec![broken.webhook(0), healthy.webhook(0)]);
    settings.notifier.max_attempts = 3;
    let _stop = h.start_with(settings).await;
    let id = h.create("kibana").await;
    let down = h.set(id, "kibana", "down").await;
    let failed = eventually(30, "the api to list it as failed", || async {
        let list = get_json(&h.http, &format!("{}/notifications?status=failed", h.api)).await?;
        (list.as_array()?.len() == 1).then_some(list)
    })
    .await;
    assert_eq!(failed[0]["Key"], down.to_string());
    assert_eq!(failed[0]["Service"], "kibana");
    assert_eq!(failed[0]["Attempts"], 3);
    assert_eq!(failed[0]["LastError"], "HTTP 500");
    // The other webhook was not held up by it.
    assert_eq!(kinds(&healthy.got()), [format!("down {down}")]);
    let res = h
        .http
        .get(format!("{}/notifications?status=lost", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// Two notifier processes; the one that delivers is killed with SIGKILL in
/// the middle of 1,000 changes across 100 services. Every notification
/// arrives (by its Idempotency-Key), in order per service.
/// The receipts of a failed delivery through the api, then a retry through
/// the api that arrives under the notification's own key.
#[tokio::test]
async fn a_failed_notification_retried_through_the_api_arrives_under_its_key() {
    let h = Harness::new().await;
    // Down for the first three attempts: as many as the notifier makes.
    let receiver = Receiver::start(3);
    let mut settings = h.settings(vec![receiver.webhook(0)]);
    settings.notifier.max_attempts = 3;
    let _stop = h.start_with(settings).await;
    let id = h.create("kibana").await;
    let down = h.set(id, "kibana", "down").await;
    let failed = eventually(30, "the notification to fail", || async {
        let list = get_json(&h.http, &format!("{}/notifications?status=failed", h.api)).await?;
        list.as_array()?.first().cloned()
    })
    .await;
    let url = format!("{}/notifications/{}", h.api, failed["Id"]);
    let detail = get_json(&h.http, &url).await.unwrap();
    let attempts = detail["Attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{detail}");
    for a in attempts {
        assert_eq!(
            (&a["StatusCode"], &a["Error"]),
            (&json!(500), &json!("HTTP 500"))
        );
        assert!(
            a["LatencyMs"].as_i64().is_some() && a["At"].is_string(),
            "{a}"
        );
    }

    let retry = format!("{url}/retry");
    let res = h.http.post(&retry).send().await.unwrap();
    assert_eq!(res.status(), 401, "a retry needs a key");
    let res = h.http.post(&retry).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["State"], "pending");
    assert_eq!(body["Attempts"].as_array().map(Vec::len), Some(3), "{body}");
    let got = eventually(20, "the retried notification", || async {
        receiver.got().into_iter().next()
    })
    .await;
    assert_eq!(
        got.key,
        down.to_string(),
        "the same key as every attempt before"
    );
    let detail = eventually(20, "the notification to be sent", || async {
        let d = get_json(&h.http, &url).await?;
        (d["State"] == "sent").then_some(d)
    })
    .await;
    let attempts = detail["Attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(
        (&attempts[3]["StatusCode"], &attempts[3]["Error"]),
        (&json!(200), &Value::Null)
    );

    let missing = format!("{}/notifications/999999/retry", h.api);
    let res = h.http.post(&missing).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = h
        .http
        .get(format!("{}/notifications/x", h.api))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn kill_9_of_the_delivering_notifier_loses_and_reorders_nothing() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0);
    let config = std::env::temp_dir().join(format!("elk-notifier-{}.toml", h.db.short_id()));
    std::fs::write(
        &config,
        format!(
            "[notifier]\npoll_ms = 20\nretry_initial_ms = 50\nretry_max_secs = 1\n\
             [[notifier.webhooks]]\nurl = \"{}\"\nflap_max_changes = 0\n",
            receiver.url
        ),
    )
    .unwrap();
    let spawn = |port: u16| -> Killed {
        Killed(
            program(env!("CARGO_BIN_EXE_elkservice-notifier"))
                .arg("--config")
                .arg(&config)
                .env("DATABASE_URL", &h.db.url)
                .env("ELK_NOTIFIER__LISTEN", format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        )
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = Some(spawn(port_a));
    wait_delivering(port_a).await;
    let _b = spawn(port_b);

    let names: Vec<String> = (0..100).map(|i| format!("svc-{i:03}")).collect();
    let mut ids = Vec::new();
    for n in &names {
        ids.push(h.create(n).await);
    }
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for round in 0..10 {
        let status = if round % 2 == 0 { "down" } else { "normal" };
        for (id, name) in ids.iter().zip(&names) {
            let seq = h.set(*id, name, status).await;
            expected
                .entry(name.clone())
                .or_default()
                .push(seq.to_string());
        }
        if round == 4 {
            drop(a.take()); // SIGKILL
        }
    }
    wait_delivering(port_b).await;
    let total: usize = expected.values().map(Vec::len).sum();
    let got = eventually(60, "every notification", || async {
        let got = receiver.got();
        let keys: HashSet<_> = got.iter().map(|g| g.key.clone()).collect();
        (keys.len() >= total).then_some(got)
    })
    .await;
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut unique = HashSet::new();
    for g in &got {
        if unique.insert(g.key.clone()) {
            let name = g.body["Name"].as_str().unwrap().to_owned();
            seen.entry(name).or_default().push(g.key.clone());
        }
    }
    eprintln!(
        "{} notifications expected, {} deliveries, {} repeats (dropped by key)",
        total,
        got.len(),
        got.len() - unique.len()
    );
    assert_eq!(seen, expected, "every key once, in order per service");
    let _ = std::fs::remove_file(&config);
}

#[tokio::test]
async fn it_answers_on_its_ops_port_and_exits_0_on_sigterm() {
    let db = TestDatabase::new();
    let port = free_port();
    let child = program(env!("CARGO_BIN_EXE_elkservice-notifier"))
        .env("DATABASE_URL", &db.url)
        .env("ELK_NOTIFIER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_delivering(port).await;
    let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        elkservice_testkit::scrape(port, "elkservice_notifier_leader").await,
        1.0
    );
    assert_eq!(
        elkservice_testkit::terminate(child, std::time::Duration::from_secs(10)).await,
        Some(0)
    );
}

#[test]
fn a_bad_webhook_is_one_clear_line_and_exit_2() {
    let out = program(env!("CARGO_BIN_EXE_elkservice-notifier"))
        .env("ELK_NOTIFIER__POLL_MS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notifier.poll_ms"), "{stderr}");
    let dir = std::env::temp_dir().join(format!("elk-notifier-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (body, key) in [
        (
            "[[notifier.webhooks]]\nurl = \"ftp://x\"\n",
            "notifier.webhooks[0].url",
        ),
        (
            "[[notifier.webhooks]]\nurl = \"http://x\"\nservices = \"a b\"\n",
            "services",
        ),
        (
            "[[notifier.webhooks]]\nurl = \"http://x\"\nformat = \"xml\"\n",
            r#"got "xml""#,
        ),
        (
            "[[notifier.webhooks]]\nurl = \"http://x\"\nsecret = \"whsec_short\"\n",
            "notifier.webhooks[0].secret must be whsec_",
        ),
        (
            "[[notifier.webhooks]]\nurl = \"https://events.pagerduty.com/v2/enqueue\"\nformat = \"pagerduty\"\n",
            "needs routing_key",
        ),
        // A section the notifier does not have.
        ("[notifer]\npoll_ms = 50\n", "unknown field `notifer`"),
    ] {
        let file = dir.join("n.toml");
        std::fs::write(&file, body).unwrap();
        let out = program(env!("CARGO_BIN_EXE_elkservice-notifier"))
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {stderr}");
        assert!(stderr.contains(key), "{body}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
