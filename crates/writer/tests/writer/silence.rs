//! Staleness and deletion, at the writer: a silent watcher's services turn
//! `unknown` once whatever the number of writers, and a deleted row is not
//! brought back by an observation made before its deletion.

use crate::harness::{event, staleness_pass, Harness};
use elkservice_core::store::services;
use elkservice_core::Status;
use elkservice_writer::staleness;

#[tokio::test]
async fn writers_racing_to_silence_a_service_do_it_once() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    // Observed an hour ago (the harness's events are): long silent.
    let seen = [event("es", Status::Normal, 1), event("kb", Status::Down, 1)];
    h.publish(&seen).await;
    h.wait_for_newest(&seen, 10).await;
    w.stop().await;

    let (pool, counting) = staleness_pass(&h).await;
    let passes = (0..4).map(|_| staleness::silence(&pool, counting, None));
    let silenced: usize = futures_util::future::join_all(passes)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(silenced, 2);
    let rows = h.rows().await;
    assert!(rows.values().all(|r| r.status == "unknown"), "{rows:?}");
    assert!(rows["es"]
        .detail
        .as_deref()
        .unwrap()
        .contains("test-watcher"));
    assert_eq!(
        h.history("es").await.last().unwrap(),
        &("normal".into(), "unknown".into())
    );
    assert_eq!(
        h.history("es").await.len(),
        2,
        "one transition into unknown"
    );
    // A down → unknown → down blip is not a second failure.
    let w = h.start_writer(h.settings()).await;
    let again = [event("kb", Status::Down, 2)];
    h.publish(&again).await;
    let rows = h.wait_for_newest(&again, 10).await;
    assert_eq!(rows["kb"].failed_count, 1);
    w.stop().await;
}

#[tokio::test]
async fn a_deleted_service_comes_back_only_for_an_observation_made_after_the_deletion() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let seen = [event("ls", Status::Down, 1)];
    h.publish(&seen).await;
    h.wait_for_newest(&seen, 10).await;

    let mut conn = h.db.connect().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM elkservice WHERE name = 'ls'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let row = services::fetch(&mut conn, id).await.unwrap().unwrap();
    services::delete(&mut conn, &row).await.unwrap();

    // The same observation again (a resync), then one made later but still
    // before the deletion: neither re-creates the row.
    let old = [event("ls", Status::Down, 1), event("ls", Status::Down, 500)];
    h.publish(&old).await;
    crate::harness::eventually_stale(&w, 2).await;
    assert!(!h.rows().await.contains_key("ls"));

    // An observation made now does: the container is still there.
    let mut now = event("ls", Status::Normal, 0);
    now.observed_at = chrono::Utc::now();
    let now = [now];
    h.publish(&now).await;
    h.wait_for_newest(&now, 10).await;
    w.stop().await;
}
