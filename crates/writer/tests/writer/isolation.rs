//! One bad event never stops the queue: what the database refuses for what an
//! event holds is found, dead-lettered with the reason, and the rest applies.

use crate::harness::{event, Harness};
use elkservice_core::db;
use elkservice_core::Status;
use elkservice_testkit::eventually;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_event_the_database_refuses_goes_to_the_dlq_and_the_rest_of_its_batch_applies() {
    let h = Harness::new().await;
    // The schema first, then a rule of the operator's own that one name breaks.
    let mut settings = h.settings();
    settings.database.max_connections = 1;
    db::connect_and_migrate(&settings.database)
        .await
        .unwrap()
        .close()
        .await;
    let mut conn = h.db.connect().await;
    sqlx::query("ALTER TABLE elkservice ADD CONSTRAINT no_bad_detail CHECK (detail IS NULL OR detail NOT LIKE '%poison%')")
        .execute(&mut conn)
        .await
        .unwrap();

    // Published before the writer starts, so that they arrive as one batch.
    let mut bad = event("svc-07", Status::Down, 2);
    bad.detail = Some("poison".into());
    let mut events: Vec<_> = (0..16)
        .map(|i| event(&format!("svc-{i:02}"), Status::Normal, 1))
        .collect();
    events.push(bad);
    let good: Vec<_> = (0..16)
        .filter(|i| *i != 7)
        .map(|i| event(&format!("svc-{i:02}"), Status::Down, 3))
        .collect();
    events.extend(good.iter().cloned());
    h.publish(&events).await;
    let w = h.start_writer(h.settings()).await;
    let started = Instant::now();

    h.wait_for_newest(&good, 10).await;
    let rows = h.rows().await;
    assert_eq!(
        rows["svc-07"].status, "normal",
        "the refused event changed nothing"
    );
    let dead = eventually(10, "the refused event in the DLQ", || async {
        let dead = h.dead_letters().await;
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let body: serde_json::Value = serde_json::from_slice(&dead[0].0).unwrap();
    assert_eq!(
        (body["service"].as_str(), body["detail"].as_str()),
        (Some("svc-07"), Some("poison"))
    );
    assert!(
        dead[0].1.contains("refused") && dead[0].1.contains("no_bad_detail"),
        "{}",
        dead[0].1
    );

    // The queue keeps moving: another service's change is applied at once.
    let next = [event("later", Status::Normal, 4)];
    h.publish(&next).await;
    h.wait_for_newest(&next, 2).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        w.metric("events_dead_lettered_total{reason=\"refused\"}")
            .await,
        1.0
    );
    w.stop().await;
}

#[tokio::test]
async fn failed_count_stops_at_its_maximum_instead_of_failing() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let first = [event("kib", Status::Normal, 1)];
    h.publish(&first).await;
    h.wait_for_newest(&first, 10).await;
    let mut conn = h.db.connect().await;
    sqlx::query("UPDATE elkservice SET failed_count = 4294967295 WHERE name = 'kib'")
        .execute(&mut conn)
        .await
        .unwrap();

    let then = [
        event("kib", Status::Down, 2),
        event("other", Status::Down, 2),
    ];
    h.publish(&then).await;
    let rows = h.wait_for_newest(&then, 5).await;
    assert_eq!(rows["kib"].failed_count, u32::MAX);
    assert_eq!(rows["other"].failed_count, 1);
    assert!(h.dead_letters().await.is_empty());
    w.stop().await;
}

#[tokio::test]
async fn the_dead_letter_queue_is_bounded_in_length_and_age() {
    let h = Harness::new().await;
    let info = h.vhost.queue_info("elkservice.dead").await.unwrap();
    assert_eq!(info["arguments"]["x-max-length"], 100_000, "{info}");
    assert_eq!(
        info["arguments"]["x-message-ttl"], 1_209_600_000_u64,
        "{info}"
    );
}

#[tokio::test]
async fn a_dead_letter_queue_declared_without_bounds_is_still_used() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    // As an older version left it: no bounds.
    let vhost = elkservice_testkit::TestVhost::create().await;
    let conn = elkservice_core::amqp::connect(&vhost.url, "old")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("elkservice.dead".into(), durable, FieldTable::default())
        .await
        .unwrap();
    let settings = elkservice_core::amqp::AmqpSettings::with_url(&vhost.url);
    elkservice_core::amqp::declare_topology(&conn, &settings)
        .await
        .expect("the old queue is accepted as it is");
    let info = vhost.queue_info("elkservice.writer").await.unwrap();
    assert_eq!(
        info["arguments"]["x-dead-letter-exchange"],
        "elkservice.dead"
    );
}
