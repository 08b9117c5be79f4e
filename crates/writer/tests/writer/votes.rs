//! Several watchers on one service: the row follows the quorum of their votes,
//! so a watcher that cannot reach the target is outvoted, and watchers that
//! fall silent make the service `unknown`, never `down`.

use crate::harness::{event, staleness_pass, Harness, RunningWriter};
use chrono::Utc;
use elkservice_core::{Status, StatusEvent};
use elkservice_testkit::eventually;
use elkservice_writer::staleness;

fn vote(watcher: &str, status: Status, ms: i64) -> StatusEvent {
    StatusEvent {
        watcher: watcher.into(),
        detail: Some(format!("{watcher}: {status}")),
        ..event("web", status, ms)
    }
}

async fn applied(w: &RunningWriter, n: usize) {
    eventually(10, "the writer to take every vote", || async {
        let taken = w.metric("events_applied_total").await + w.metric("events_stale_total").await;
        (taken >= n as f64).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_watcher_cut_off_from_the_target_is_outvoted_and_never_flips_the_row() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let mut sent = Vec::new();
    for round in 0..6 {
        let ms = round * 1000;
        // c cannot reach the target; a and b can. Delivered in any order.
        let votes = [
            vote("c", Status::Down, ms + 1),
            vote("a", Status::Normal, ms + 2),
            vote("b", Status::Normal, ms + 3),
        ];
        h.publish(&votes).await;
        sent.extend(votes);
        applied(&w, sent.len()).await;
    }
    let rows = h.rows().await;
    assert_eq!(rows["web"].status, "normal", "{:?}", rows["web"]);
    let detail = rows["web"].detail.as_deref().unwrap();
    assert!(detail.ends_with("(normal: 2 of 3 watchers)"), "{detail}");
    assert_eq!(rows["web"].failed_count, 1, "c's first down, alone");
    // The very first vote (c's down, alone) decided down; after that, a and b
    // outvote it in every round: no flipping at every heartbeat.
    assert_eq!(
        h.history("web").await,
        [
            ("unknown".into(), "down".into()),
            ("down".into(), "normal".into())
        ]
    );

    // A real outage: a and b see it too. One transition, one failure.
    let outage = [
        vote("a", Status::Down, 10_000),
        vote("b", Status::Down, 10_001),
        vote("c", Status::Down, 10_002),
    ];
    h.publish(&outage).await;
    sent.extend(outage);
    applied(&w, sent.len()).await;
    let rows = h.rows().await;
    assert_eq!(rows["web"].status, "down");
    let detail = rows["web"].detail.as_deref().unwrap();
    assert!(detail.ends_with("(down: 3 of 3 watchers)"), "{detail}");
    assert_eq!(
        rows["web"].failed_count, 2,
        "c's lone first down, then this"
    );
    assert_eq!(h.history("web").await.len(), 3);
    w.stop().await;
}

#[tokio::test]
async fn watchers_that_fall_silent_make_a_service_unknown_never_down() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    // a and b spoke an hour ago; c speaks now and sees the service down.
    let mut c_now = vote("c", Status::Down, 0);
    c_now.observed_at = Utc::now();
    let votes = [
        vote("a", Status::Normal, 0),
        vote("b", Status::Normal, 1),
        c_now,
    ];
    h.publish(&votes).await;
    applied(&w, votes.len()).await;
    w.stop().await;
    assert_eq!(h.rows().await["web"].status, "normal", "2 of 3 normal");

    let (pool, counting) = staleness_pass(&h).await;
    assert_eq!(staleness::silence(&pool, counting, None).await.unwrap(), 1);
    let rows = h.rows().await;
    assert_eq!(
        rows["web"].status, "unknown",
        "1 fresh vote of 3 is no majority"
    );
    let detail = rows["web"].detail.clone().unwrap();
    assert!(
        detail.starts_with("no observation from watchers a since") && detail.contains(", b since"),
        "{detail}"
    );
    assert_eq!(rows["web"].failed_count, 0);
    // Nothing more to decide on a second pass.
    assert_eq!(staleness::silence(&pool, counting, None).await.unwrap(), 0);

    // Once a and b are forgotten, c alone is the whole base.
    let forget = Some(std::time::Duration::from_secs(600));
    staleness::silence(&pool, counting, forget).await.unwrap();
    let w = h.start_writer(h.settings()).await;
    let mut again = vote("c", Status::Down, 0);
    again.observed_at = Utc::now();
    h.publish(std::slice::from_ref(&again)).await;
    applied(&w, 1).await;
    let rows = h.rows().await;
    assert_eq!(rows["web"].status, "down", "{:?}", rows["web"]);
    w.stop().await;
}
