//! The change feed under a race: two writers applying a stream of
//! observations and two api processes taking PUTs, while a reader follows the
//! feed through a third. The reader sees every Seq once, in order, with no
//! hole at any moment, and the feed agrees with every service's history.

use chrono::{Duration, Utc};
use elkservice_core::amqp;
use elkservice_core::{ServiceName, Status, StatusEvent};
use elkservice_e2e::{System, KEY};
use elkservice_testkit::{eventually, free_port, publish_events, Engine};
use lapin::options::ConfirmSelectOptions;
use serde_json::{json, Value};
use std::collections::HashMap;

const SERVICES: usize = 8;
const EVENTS: usize = 1500;
const PUTS: usize = 150;

#[tokio::test]
async fn racing_writers_and_puts_make_one_gap_free_feed_that_matches_the_history() {
    let mut sys = System::start(Engine::Podman).await;
    let second_writer = free_port();
    let writer = sys.spawn_writer_on(second_writer);
    sys.programs.push(writer);
    let other_api = sys.start_api().await;

    // The services exist first, made through the API.
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..SERVICES {
        let res = client
            .post(format!("{}/elkservice", sys.api))
            .bearer_auth(KEY)
            .json(&json!({"Name": format!("svc-{i}"), "Status": "normal", "Running": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        ids.push(res.json::<Value>().await.unwrap()["Id"].as_i64().unwrap());
    }

    // The reader follows through the first api, from the start, until it has
    // reached the end that it is given once everything is applied.
    let (end_tx, mut end_rx) = tokio::sync::watch::channel(None::<i64>);
    let reader = {
        let api = sys.api.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen: Vec<Value> = Vec::new();
            loop {
                let since = seen.last().map_or(0, |e| e["Seq"].as_i64().unwrap());
                if end_rx.borrow_and_update().is_some_and(|end| since >= end) {
                    return seen;
                }
                let page: Vec<Value> = client
                    .get(format!(
                        "{api}/elkservice/changes?since={since}&limit=1000&wait=1"
                    ))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seen.extend(page);
            }
        })
    };

    // Observations for every service, through both writers.
    let publisher = {
        let url = sys.vhost.url.clone();
        tokio::spawn(async move {
            let conn = amqp::connect(&url, "race-publisher").await.unwrap();
            let ch = conn.create_channel().await.unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let start = Utc::now() - Duration::seconds(60);
            let cycle = [
                Status::Down,
                Status::Normal,
                Status::Degraded,
                Status::Normal,
            ];
            let events: Vec<_> = (0..EVENTS)
                .map(|i| {
                    let name = ServiceName::parse(&format!("svc-{}", i % SERVICES)).unwrap();
                    let status = cycle[(i / SERVICES) % cycle.len()];
                    let at = start + Duration::milliseconds(i as i64 * 10);
                    StatusEvent::observed(name, status, status != Status::Down, at, "race", None)
                })
                .collect();
            publish_events(&ch, &events).await;
        })
    };

    // And PUTs through the other api, at the same time.
    for i in 0..PUTS {
        let id = ids[i % SERVICES];
        let status = if i % 2 == 0 { "degraded" } else { "normal" };
        let res = client
            .put(format!("{other_api}/elkservice/{id}"))
            .bearer_auth(KEY)
            .json(
                &json!({"Name": format!("svc-{}", i % SERVICES), "Status": status,
                "Running": true, "FailedCount": 0, "Detail": format!("put {i}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    publisher.await.unwrap();
    let ports = [sys.writer_port, second_writer];
    eventually(60, "the writers to take every event", || async {
        let mut taken = 0.0;
        for port in ports {
            for metric in ["events_applied_total", "events_stale_total"] {
                taken +=
                    elkservice_testkit::scrape(port, &format!("elkservice_writer_{metric}")).await;
            }
        }
        (taken >= EVENTS as f64).then_some(())
    })
    .await;
    let end: i64 = client
        .get(format!("{}/elkservice/changes?limit=1", sys.api))
        .send()
        .await
        .unwrap()
        .headers()["x-last-seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    end_tx.send(Some(end)).unwrap();
    let feed = reader.await.unwrap();

    // Every Seq once, in order, from 1.
    let seqs: Vec<i64> = feed.iter().map(|e| e["Seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the reader saw a hole or a repeat");
    assert!(seqs.len() > SERVICES + PUTS, "{} entries", seqs.len());

    // Each service's transitions in the feed chain, and are its history.
    for (i, id) in ids.iter().enumerate() {
        let transitions: Vec<(Value, Value)> = feed
            .iter()
            .filter(|e| e["Id"] == *id && (e["Kind"] == "transition" || e["Kind"] == "created"))
            .map(|e| (e["FromStatus"].clone(), e["Service"]["Status"].clone()))
            .collect();
        for pair in transitions.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "svc-{i}: {transitions:?}");
        }
        let mut history = sys.events(*id).await;
        history.reverse(); // oldest first
        let count = |list: &[(Value, Value)]| {
            let mut m: HashMap<String, usize> = HashMap::new();
            for (from, to) in list {
                *m.entry(format!("{from}->{to}")).or_default() += 1;
            }
            m
        };
        assert_eq!(count(&transitions), count(&history), "svc-{i}");
        // The last entry's row is the row as it is now.
        let last = feed.iter().rev().find(|e| e["Id"] == *id).unwrap();
        let now = sys.row(&format!("svc-{i}")).await.unwrap();
        assert_eq!(last["Service"]["Status"], now["Status"], "svc-{i}");
        assert_eq!(
            last["Service"]["FailedCount"], now["FailedCount"],
            "svc-{i}"
        );
    }
    eprintln!("feed: {} entries, no hole, no repeat", seqs.len());

    // The first api answers from its read model, built from this feed; one
    // with the model off reads the table. Once caught up, they agree on every
    // row, to the microsecond and the ETag.
    let database = sys
        .start_api_with(&[("ELK_API__READ_MODEL_MAX_LAG_MS", "0".into())])
        .await;
    let mut paths = vec!["/elkservice?limit=0".to_owned()];
    paths.extend(ids.iter().map(|id| format!("/elkservice/{id}")));
    for path in &paths {
        let answer = |api: String| {
            let client = client.clone();
            let path = path.clone();
            async move {
                let res = client.get(format!("{api}{path}")).send().await.unwrap();
                let etag = res.headers().get("etag").cloned();
                (res.status(), etag, res.text().await.unwrap())
            }
        };
        eventually(
            5,
            &format!("the read model to answer {path} as the table"),
            || async {
                let (memory, table) = (
                    answer(sys.api.clone()).await,
                    answer(database.clone()).await,
                );
                (memory == table).then_some(())
            },
        )
        .await;
    }
}

/// Read SSE frames from `res` until the entry with Seq `until` (or the
/// connection ends); returns the Seqs seen. Comments are skipped.
async fn read_stream(mut res: reqwest::Response, until: i64, seqs: &mut Vec<i64>) {
    let mut buffer = String::new();
    loop {
        let chunk =
            match tokio::time::timeout(std::time::Duration::from_secs(20), res.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                _ => return, // the api went away, or nothing for a long time
            };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                let seq: i64 = id.parse().unwrap();
                seqs.push(seq);
                if seq >= until {
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_stream_resumed_after_its_api_died_misses_nothing_and_repeats_nothing() {
    const CHANGES: usize = 10_000;
    let mut sys = System::start(Engine::Podman).await;
    let mut stream_api = sys.start_api().await;
    let (publisher, start) = {
        let conn = amqp::connect(&sys.vhost.url, "resume-publisher")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ((conn, ch), Utc::now() - Duration::seconds(600))
    };
    // Each event a transition: two services flip between normal and down.
    let publish_range = |from: usize, to: usize| {
        let ch = publisher.1.clone();
        async move {
            let events: Vec<_> = (from..to)
                .map(|i| {
                    let name = ServiceName::parse(&format!("flip-{}", i % 2)).unwrap();
                    let status = if (i / 2) % 2 == 0 {
                        Status::Down
                    } else {
                        Status::Normal
                    };
                    let at = start + Duration::milliseconds(i as i64);
                    StatusEvent::observed(
                        name,
                        status,
                        status == Status::Normal,
                        at,
                        "resume",
                        None,
                    )
                })
                .collect();
            publish_events(&ch, &events).await;
        }
    };

    let client = reqwest::Client::new();
    let open = |api: String, after: i64| {
        let client = client.clone();
        async move {
            let res = client
                .get(format!("{api}/elkservice/stream?since=0"))
                .header("Last-Event-ID", after.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res
        }
    };
    let mut seqs = Vec::new();
    let first = open(stream_api.clone(), 0).await;
    publish_range(0, CHANGES / 2).await;
    // Read part of it, then the api serving the stream dies.
    read_stream(first, 2_000, &mut seqs).await;
    let index = sys.programs.len() - 1;
    let mut dying = sys.programs.remove(index);
    dying.0.kill().unwrap();
    dying.0.wait().unwrap();
    // Changes keep flowing while it is down.
    publish_range(CHANGES / 2, CHANGES).await;
    // Two creations and one transition per event.
    let last = (CHANGES + 2) as i64;
    eventually(120, "the writer to apply every change", || async {
        let res = client
            .get(format!("{}/elkservice/changes?since=0&limit=1", sys.api))
            .send()
            .await
            .ok()?;
        let seq: i64 = res
            .headers()
            .get("x-last-seq")?
            .to_str()
            .ok()?
            .parse()
            .ok()?;
        (seq >= last).then_some(())
    })
    .await;

    // A new api; the client resumes after the last id it received.
    stream_api = sys.start_api().await;
    let resumed = open(stream_api, *seqs.last().unwrap()).await;
    read_stream(resumed, last, &mut seqs).await;
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(seqs.len(), expected.len(), "missed or repeated entries");
    assert_eq!(seqs, expected);
    eprintln!(
        "resumed stream: {} entries, 0 missed, 0 repeated",
        seqs.len()
    );
}
