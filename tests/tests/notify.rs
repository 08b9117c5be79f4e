//! Notifications from real containers: the watcher, writer, api and notifier
//! as processes, a webhook receiver in the test, on each engine.

use elkservice_e2e::System;
use elkservice_testkit::{eventually, get_json, on_both_engines, Engine, Receiver};
use std::time::{Duration, Instant};

on_both_engines!(
    a_killed_container_is_told_and_so_is_its_start,
    a_ten_second_restart_with_min_down_30_sends_nothing,
);

fn webhook(receiver: &Receiver, extra: &str) -> String {
    format!(
        "[[notifier.webhooks]]\nurl = \"{}\"\n{extra}\n",
        receiver.url
    )
}

fn kinds(receiver: &Receiver) -> Vec<String> {
    receiver
        .got()
        .iter()
        .map(|g| g.body["Notification"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn a_killed_container_is_told_and_so_is_its_start(engine: Engine) {
    let sys = System::start(engine).await;
    let receiver = Receiver::start(0);
    let _notifier = sys.start_notifier(&webhook(&receiver, "")).await;
    let c = sys.run_container("elasticsearch");
    eventually(30, "elasticsearch normal", || async {
        sys.row("elasticsearch")
            .await
            .filter(|r| r["Status"] == "normal")
    })
    .await;
    // A new container is no problem: nothing was sent for its start.
    assert!(receiver.got().is_empty(), "{:?}", kinds(&receiver));

    let killed = Instant::now();
    c.cli(&["kill"]);
    let got = eventually(30, "the down notification", || async {
        receiver.got().first().cloned()
    })
    .await;
    // The figure is 1 s; on a shared machine it is reported, not asserted.
    eprintln!(
        "{engine:?}: kill → receiver has down: {} ms",
        (got.at - killed).as_millis()
    );
    assert_eq!(got.body["Notification"], "down");
    assert_eq!(got.body["Name"], "elasticsearch");

    let started = Instant::now();
    c.cli(&["start"]);
    let got = eventually(30, "the resolved notification", || async {
        receiver.got().get(1).cloned()
    })
    .await;
    eprintln!(
        "{engine:?}: start → receiver has resolved: {} ms",
        (got.at - started).as_millis()
    );
    assert_eq!(kinds(&receiver), ["down", "resolved"]);
}

async fn a_ten_second_restart_with_min_down_30_sends_nothing(engine: Engine) {
    let sys = System::start(engine).await;
    let receiver = Receiver::start(0);
    let _notifier = sys
        .start_notifier(&webhook(&receiver, "min_down_secs = 30"))
        .await;
    let c = sys.run_container("logstash");
    eventually(30, "logstash normal", || async {
        sys.row("logstash")
            .await
            .filter(|r| r["Status"] == "normal")
    })
    .await;
    c.cli(&["kill"]);
    eventually(30, "logstash down", || async {
        sys.row("logstash").await.filter(|r| r["Status"] == "down")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await; // the restart takes 10 s
    c.cli(&["start"]);
    // Once its notification is withdrawn, it can never be sent.
    eventually(30, "the down notification to be withdrawn", || async {
        let list = get_json(&sys.client, &format!("{}/notifications", sys.api)).await?;
        let states: Vec<_> = list
            .as_array()?
            .iter()
            .map(|n| n["State"].clone())
            .collect();
        (states == ["cancelled"]).then_some(())
    })
    .await;
    assert!(receiver.got().is_empty(), "{:?}", kinds(&receiver));
}

/// Killed and started every 5 s for 2 minutes: down, resolved, then one
/// flapping note (the default: more than 2 beginnings and ends in 10 minutes).
#[tokio::test]
async fn a_container_restarted_every_5_s_for_2_minutes_sends_at_most_3() {
    let sys = System::start(Engine::Docker).await;
    let receiver = Receiver::start(0);
    let _notifier = sys.start_notifier(&webhook(&receiver, "")).await;
    let c = sys.run_container("kibana");
    eventually(30, "kibana normal", || async {
        sys.row("kibana").await.filter(|r| r["Status"] == "normal")
    })
    .await;
    let until = Instant::now() + Duration::from_secs(120);
    let mut cycles = 0;
    while Instant::now() < until {
        c.cli(&["kill"]);
        tokio::time::sleep(Duration::from_millis(2500)).await; // the test's rhythm
        c.cli(&["start"]);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        cycles += 1;
    }
    let row = sys.row("kibana").await.unwrap();
    eprintln!(
        "{cycles} kill/start cycles; FailedCount {}",
        row["FailedCount"]
    );
    assert!(row["FailedCount"].as_i64().unwrap() >= 20, "{row}");
    eventually(30, "the flapping note", || async {
        (kinds(&receiver).len() >= 3).then_some(())
    })
    .await;
    assert_eq!(kinds(&receiver), ["down", "resolved", "flapping"]);
}
