//! The writer rule, observed through the rows.

use crate::harness::{event, Harness};
use elkservice_core::Status;
use elkservice_testkit::eventually;
use sqlx::Connection;

#[tokio::test]
async fn events_delivered_out_of_order_leave_the_newest_state() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let events = [
        event("es", Status::Normal, 300),
        event("es", Status::Down, 100),
        event("es", Status::Degraded, 200),
    ];
    h.publish(&events).await;
    let rows = h.wait_for_newest(&events, 20).await;
    assert_eq!(rows["es"].status, "normal");
    assert_eq!(rows["es"].detail.as_deref(), Some("normal at 300"));
    // Whatever arrived after the newest one was stale: the history never goes backwards.
    let history = h.history("es").await;
    assert_eq!(history.last().unwrap().1, "normal");
    for pair in history.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "transitions chain: {history:?}");
    }
    w.stop().await;
}

#[tokio::test]
async fn duplicates_are_harmless() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let down = event("kibana", Status::Down, 10);
    let up = event("kibana", Status::Normal, 20);
    h.publish(&[down.clone(), down.clone(), down.clone()]).await;
    h.publish(&[up.clone(), down.clone(), up.clone()]).await;
    let rows = h.wait_for_newest(&[down, up], 20).await;
    assert_eq!(rows["kibana"].failed_count, 1, "one transition into down");
    eventually(10, "all six deliveries to be counted", || async {
        let seen = w.metric("events_applied_total").await + w.metric("events_stale_total").await;
        (seen == 6.0).then_some(())
    })
    .await;
    assert_eq!(w.metric("events_applied_total").await, 2.0);
    assert_eq!(
        h.history("kibana").await,
        [
            ("unknown".into(), "down".into()),
            ("down".into(), "normal".into())
        ]
    );
    w.stop().await;
}

#[tokio::test]
async fn failed_count_rises_on_each_transition_into_down() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let events: Vec<_> = [
        Status::Down,
        Status::Normal,
        Status::Down,
        Status::Down,
        Status::Starting,
        Status::Down,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, s)| event("logstash", s, i as i64 * 10))
    .collect();
    // One at a time, so that each is applied on its own.
    for e in &events {
        h.publish(std::slice::from_ref(e)).await;
        h.wait_for_newest(std::slice::from_ref(e), 20).await;
    }
    // Three transitions into down, but the last came back through `starting`
    // from a service that was already down: not a new failure.
    assert_eq!(h.rows().await["logstash"].failed_count, 2);
    assert_eq!(h.history("logstash").await.len(), 5);
    w.stop().await;
}

#[tokio::test]
async fn a_row_locked_elsewhere_holds_up_only_its_own_service() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let names: Vec<String> = (0..40).map(|i| format!("svc-{i:02}")).collect();
    let first: Vec<_> = names
        .iter()
        .map(|n| event(n, Status::Starting, 1))
        .collect();
    h.publish(&first).await;
    h.wait_for_newest(&first, 20).await;

    // Another client is in the middle of changing svc-00 (as the API's PUT does).
    let mut other = sqlx::MySqlConnection::connect(&h.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT id FROM elkservice WHERE name = 'svc-00' FOR UPDATE")
        .fetch_all(&mut other)
        .await
        .unwrap();
    // A batch naming most of the table still locks only its own rows, so it
    // goes through well before the lock wait (50 s by default) would end.
    let second: Vec<_> = names[1..]
        .iter()
        .map(|n| event(n, Status::Normal, 2))
        .collect();
    h.publish(&second).await;
    h.wait_for_newest(&second, 20).await;

    let held = event("svc-00", Status::Down, 2);
    h.publish(std::slice::from_ref(&held)).await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    h.wait_for_newest(&[held], 20).await;
    w.stop().await;
}

#[tokio::test]
async fn an_unknown_service_is_registered_from_its_event() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let e = event("nginx-new", Status::Starting, 1);
    h.publish(std::slice::from_ref(&e)).await;
    let rows = h.wait_for_newest(std::slice::from_ref(&e), 20).await;
    assert_eq!(rows["nginx-new"].status, "starting");
    w.stop().await;
}

#[tokio::test]
async fn without_auto_registration_an_unknown_service_is_dead_lettered() {
    let h = Harness::new().await;
    let mut settings = h.settings();
    settings.writer.auto_register = false;
    let w = h.start_writer(settings).await;
    h.publish(&[event("stranger", Status::Down, 1)]).await;
    eventually(20, "a dead letter", || async {
        (w.metric("events_dead_lettered_total{reason=\"unknown_service\"}")
            .await
            == 1.0)
            .then_some(())
    })
    .await;
    let dead = h.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].1.contains("stranger") && dead[0].1.contains("auto_register"),
        "{}",
        dead[0].1
    );
    assert!(h.rows().await.is_empty());
    w.stop().await;
}

#[tokio::test]
async fn poison_messages_go_to_the_dead_letter_queue_with_the_reason() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    h.publish_raw("status.x", b"{not json").await;
    h.publish_raw("status.x", br#"{"schema":2,"service":"x"}"#)
        .await;
    h.publish_raw(
        "status.x",
        br#"{"schema":1,"service":"bad name","status":"down","running":false,"observed_at":"2026-01-01T00:00:00Z","watcher":"w"}"#,
    )
    .await;
    // A known service's event, its fields in order as an array: not an event.
    h.publish_raw(
        "status.after-poison",
        br#"[1,"after-poison","down",false,"2026-01-01T00:00:00Z","w"]"#,
    )
    .await;
    // The writer keeps going after poison.
    let good = event("after-poison", Status::Normal, 5);
    h.publish(std::slice::from_ref(&good)).await;
    h.wait_for_newest(std::slice::from_ref(&good), 20).await;
    eventually(20, "four dead letters", || async {
        (w.metric("events_dead_lettered_total{reason=\"invalid\"}")
            .await
            == 4.0)
            .then_some(())
    })
    .await;
    let mut reasons: Vec<String> = h.dead_letters().await.into_iter().map(|(_, r)| r).collect();
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(
        reasons[0].starts_with("invalid event") && reasons[0].contains("Name"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("invalid event") && reasons[1].contains("expected a JSON object"),
        "{reasons:?}"
    );
    assert!(reasons[2].starts_with("malformed JSON"), "{reasons:?}");
    assert!(
        reasons[3].starts_with("unsupported schema version 2"),
        "{reasons:?}"
    );
    // No redelivery loop: the queue is empty and nothing else was dead-lettered.
    eventually(20, "an empty queue", || async {
        (h.vhost.queue_counts("elkservice.writer").await == Some((0, 0))).then_some(())
    })
    .await;
    assert_eq!(
        w.metric("events_dead_lettered_total{reason=\"invalid\"}")
            .await,
        4.0
    );
    w.stop().await;
}

/// A feed entry carries the row as a read returns it just after the change
/// (the api's read model serves it as such): times to the microsecond, as
/// the table keeps them, though observations are timed to the nanosecond.
/// All but the votes, which move at every observation and are read with the
/// row, not kept in the feed.
#[tokio::test]
async fn a_feed_entry_holds_the_row_as_stored() {
    use elkservice_core::store::{feed, services};
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let mut events = [
        event("es", Status::Normal, 100),
        event("es", Status::Down, 200),
    ];
    for e in &mut events {
        e.observed_at += chrono::Duration::nanoseconds(123_456_789);
    }
    h.publish(&events).await;
    h.wait_for_newest(&events, 20).await;
    let mut conn = sqlx::MySqlConnection::connect(&h.db.url).await.unwrap();
    let entries = feed::after(&mut conn, 0, 100).await.unwrap();
    let last = entries.last().unwrap();
    let mut row = services::fetch(&mut conn, last.id).await.unwrap().unwrap();
    assert_eq!(row.votes.len(), 1, "one watcher, one vote");
    row.votes.clear();
    assert_eq!(
        serde_json::to_value(last.service.as_ref().unwrap()).unwrap(),
        serde_json::to_value(&row).unwrap()
    );
    w.stop().await;
}
