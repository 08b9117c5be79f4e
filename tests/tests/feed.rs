//! The change feed under a race: two writers applying a stream of
//! observations and two api processes taking PUTs, while a reader follows the
//! feed through a third. The reader sees every Seq once, in order, with no
//! hole at any moment, and the feed agrees with every service's history.

use chrono::{Duration, Utc};
use elkservice_core::amqp;
use elkservice_core::{ServiceName, Status, StatusEvent};
use elkservice_e2e::{System, KEY};
use elkservice_testkit::{eventually, free_port};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use serde_json::{json, Value};
use std::collections::HashMap;

const SERVICES: usize = 8;
const EVENTS: usize = 1500;
const PUTS: usize = 150;

#[tokio::test]
async fn racing_writers_and_puts_make_one_gap_free_feed_that_matches_the_history() {
    let mut sys = System::start().await;
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

    // The reader follows through the first api, from the start.
    let reader = {
        let api = sys.api.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen: Vec<Value> = Vec::new();
            let mut quiet = 0;
            while quiet < 3 {
                let since = seen.last().map_or(0, |e| e["Seq"].as_i64().unwrap());
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
                quiet = if page.is_empty() { quiet + 1 } else { 0 };
                seen.extend(page);
            }
            seen
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
            for i in 0..EVENTS {
                let name = ServiceName::parse(&format!("svc-{}", i % SERVICES)).unwrap();
                let status = cycle[(i / SERVICES) % cycle.len()];
                let at = start + Duration::milliseconds(i as i64 * 10);
                let e =
                    StatusEvent::observed(name, status, status != Status::Down, at, "race", None);
                ch.basic_publish(
                    "elkservice.status".into(),
                    e.routing_key().as_str().into(),
                    BasicPublishOptions::default(),
                    &e.encode(),
                    elkservice_core::event::publish_properties(),
                )
                .await
                .unwrap();
            }
            ch.wait_for_confirms().await.unwrap();
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
    eventually(60, "the writers to drain the queue", || async {
        (sys.vhost.queue_counts("elkservice.writer").await == Some((0, 0))).then_some(())
    })
    .await;
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
}
