//! Faults: the database going away mid-stream, the broker dropping the
//! connection, kill -9 and SIGTERM mid-stream, and two writers on one queue.

use crate::harness::{event, metric, Harness};
use elkservice_core::amqp::QueueType;
use elkservice_core::config::DatabaseSettings;
use elkservice_core::{db, Status, StatusEvent};
use elkservice_testkit::{eventually, free_port, mysql_server_url, program, terminate, SqlOnDrop};
use rand::seq::SliceRandom;
use std::process::{Child, Stdio};
use std::time::Duration;

/// `services` services with `per_service` events each, alternating statuses,
/// shuffled so that delivery order differs from observation order.
fn shuffled_stream(prefix: &str, services: usize, per_service: usize) -> Vec<StatusEvent> {
    let cycle = [
        Status::Normal,
        Status::Down,
        Status::Degraded,
        Status::Down,
        Status::Starting,
    ];
    let mut events: Vec<_> = (0..services)
        .flat_map(|s| {
            (0..per_service).map(move |i| {
                event(
                    &format!("{prefix}-{s:03}"),
                    cycle[(s + i) % cycle.len()],
                    i as i64,
                )
            })
        })
        .collect();
    events.shuffle(&mut rand::rng());
    events
}

/// Every service's history must chain: each transition starts where the last ended.
async fn assert_histories_chain(h: &Harness, events: &[StatusEvent]) {
    let names: std::collections::BTreeSet<_> =
        events.iter().map(|e| e.service.to_string()).collect();
    for name in names {
        let history = h.history(&name).await;
        assert_eq!(history[0].0, "unknown", "{name}: {history:?}");
        for pair in history.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{name}: {history:?}");
        }
    }
}

#[tokio::test]
async fn a_database_outage_mid_stream_loses_nothing() {
    let h = Harness::new().await;
    // The schema exists first; the writer then logs in as a user whose table
    // grants the test can take away and give back.
    let admin = DatabaseSettings {
        url: h.db.url.clone(),
        max_connections: 1,
        acquire_timeout_secs: 5,
    };
    db::connect_and_migrate(&admin).await.unwrap().close().await;
    let user = format!("w{}", h.db.short_id());
    let hosts = ["%", "localhost", "127.0.0.1"];
    let accounts = hosts.map(|host| format!("'{user}'@'{host}'")).join(", ");
    let _drop_user = SqlOnDrop(vec![format!("DROP USER IF EXISTS {accounts}")]);
    let dbn = &h.db.name;
    let grant = format!("GRANT SELECT, INSERT, UPDATE ON `{dbn}`.`elkservice` TO {accounts}");
    let revoke = format!("REVOKE SELECT, INSERT, UPDATE ON `{dbn}`.`elkservice` FROM {accounts}");
    let mut conn = h.db.connect().await;
    for host in hosts {
        sqlx::query(&format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw'"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for sql in [
        format!("GRANT CREATE ON `{dbn}`.* TO {accounts}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{dbn}`.`_sqlx_migrations` TO {accounts}"),
        format!("GRANT SELECT, INSERT ON `{dbn}`.`elkservice_event` TO {accounts}"),
        format!("GRANT SELECT ON `{dbn}`.`elkservice_tombstone` TO {accounts}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{dbn}`.`elkservice_vote` TO {accounts}"),
        format!("GRANT INSERT ON `{dbn}`.`elkservice_change_page` TO {accounts}"),
        format!("GRANT SELECT, UPDATE ON `{dbn}`.`elkservice_feed` TO {accounts}"),
        grant.clone(),
    ] {
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
    }
    let host = mysql_server_url()
        .rsplit_once('@')
        .map(|(_, h)| h.to_owned())
        .unwrap_or_else(|| "127.0.0.1:3306".into());
    let mut settings = h.settings();
    settings.database.url = format!(
        "mysql://{user}:pw@{}/{dbn}",
        host.trim_start_matches("mysql://")
    );
    let w = h.start_writer(settings).await;

    let before: Vec<_> = (0..20)
        .map(|i| event(&format!("svc-{i:02}"), Status::Normal, 1))
        .collect();
    h.publish(&before).await;
    h.wait_for_newest(&before, 20).await;

    sqlx::query(&revoke).execute(&mut conn).await.unwrap();
    let during: Vec<_> = (0..20)
        .map(|i| event(&format!("svc-{i:02}"), Status::Down, 2))
        .collect();
    h.publish(&during).await;
    eventually(20, "the writer to hit the outage", || async {
        (w.metric("db_errors_total").await >= 2.0).then_some(())
    })
    .await;
    // A batch that keeps failing makes the writer not ready, and only then.
    let readyz = || async { ready(w.port).await };
    assert_eq!(readyz().await, 200, "a fresh failure is not yet a problem");
    eventually(35, "/readyz to answer 503", || async {
        (readyz().await == 503).then_some(())
    })
    .await;
    sqlx::query(&grant).execute(&mut conn).await.unwrap();

    let rows = h.wait_for_newest(&during, 30).await;
    eventually(10, "/readyz to answer 200 again", || async {
        (readyz().await == 200).then_some(())
    })
    .await;
    assert!(rows.values().all(|r| r.failed_count == 1), "{rows:?}");
    w.stop().await;
}

#[tokio::test]
async fn the_writer_reconnects_when_the_broker_drops_it() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let first = [event("es", Status::Normal, 1)];
    h.publish(&first).await;
    h.wait_for_newest(&first, 20).await;

    eventually(
        30,
        "the broker to list and close the writer's connection",
        || async { (h.vhost.close_connections("elkservice-writer").await > 0).then_some(()) },
    )
    .await;
    eventually(30, "a new session", || async {
        (w.metric("broker_reconnects_total").await >= 1.0
            && w.metric("broker_connected").await == 1.0)
            .then_some(())
    })
    .await;
    let second = [
        event("es", Status::Down, 2),
        event("kibana", Status::Normal, 2),
    ];
    h.publish(&second).await;
    h.wait_for_newest(&second, 20).await;
    w.stop().await;
}

fn spawn_writer(h: &Harness, port: u16) -> Child {
    program(env!("CARGO_BIN_EXE_elkservice-writer"))
        .env("DATABASE_URL", &h.db.url)
        .env("AMQP_URL", &h.vhost.url)
        .env("ELK_WRITER__LISTEN", format!("127.0.0.1:{port}"))
        // The harness's observations are an hour old: not a silent watcher.
        .env("ELK_WRITER__STALE_AFTER_SECS", "0")
        .env(
            "ELK_AMQP__QUEUE_TYPE",
            match h.queue_type {
                QueueType::Classic => "classic",
                QueueType::Quorum => "quorum",
            },
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the writer binary starts")
}

#[tokio::test]
async fn kill_9_mid_stream_then_a_restart_leaves_the_state_right() {
    kill_9_mid_stream_then_a_restart(QueueType::Classic).await;
}

#[tokio::test]
async fn kill_9_mid_stream_on_quorum_queues_loses_nothing() {
    kill_9_mid_stream_then_a_restart(QueueType::Quorum).await;
}

async fn kill_9_mid_stream_then_a_restart(queue_type: QueueType) {
    let h = Harness::with_queues(queue_type).await;
    let port = free_port();
    let mut child = spawn_writer(&h, port);
    eventually(30, "the writer process to consume", || async {
        (metric(port, "broker_connected").await == 1.0).then_some(())
    })
    .await;

    let events = shuffled_stream("k9", 100, 40);
    h.publish(&events).await;
    eventually(30, "the stream to be under way", || async {
        (metric(port, "events_applied_total").await + metric(port, "events_stale_total").await
            >= 300.0)
            .then_some(())
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let seen_before = h.rows().await.len();
    assert!(seen_before > 0);

    let child = spawn_writer(&h, port);
    h.wait_for_newest(&events, 60).await;
    assert_histories_chain(&h, &events).await;

    // SIGTERM: finish, ack, exit 0.
    assert_eq!(terminate(child, Duration::from_secs(15)).await, Some(0));
    if queue_type == QueueType::Quorum {
        for queue in ["elkservice.writer", "elkservice.dead"] {
            let info = h.vhost.queue_info(queue).await.expect("the queue exists");
            assert_eq!(info["type"], "quorum", "{queue}: {info}");
        }
    }
}

#[tokio::test]
async fn sigterm_mid_stream_exits_0_and_a_restart_finishes_the_backlog() {
    let h = Harness::new().await;
    // A backlog, so that the writer is still busy with it when it is told to stop.
    let events = shuffled_stream("term", 200, 100);
    h.publish(&events).await;
    let port = free_port();
    let child = spawn_writer(&h, port);
    eventually(30, "the backlog to be under way", || async {
        (metric(port, "events_applied_total").await >= 500.0).then_some(())
    })
    .await;

    assert_eq!(
        terminate(child, Duration::from_secs(15)).await,
        Some(0),
        "mid-stream SIGTERM"
    );

    // What it had not applied went back to the queue with its connection.
    let ready = h.ready_in_queue().await as usize;
    assert!(
        ready > 0 && ready < events.len(),
        "{ready} of {} left: stopped mid-stream",
        events.len()
    );

    let w = h.start_writer(h.settings()).await;
    h.wait_for_newest(&events, 60).await;
    assert_histories_chain(&h, &events).await;
    w.stop().await;
}

/// The writer applies batches on a connection of its own; when the database
/// drops it (a restart, a failover, `KILL`), the next batch connects again.
#[tokio::test]
async fn the_writer_goes_on_after_the_database_drops_its_connections() {
    let h = Harness::new().await;
    let w = h.start_writer(h.settings()).await;
    let first: Vec<_> = (0..5)
        .map(|i| event(&format!("kill-{i}"), Status::Normal, 1))
        .collect();
    h.publish(&first).await;
    h.wait_for_newest(&first, 20).await;

    assert!(h.db.kill_connections().await > 0, "the writer is connected");

    let then: Vec<_> = (0..5)
        .map(|i| event(&format!("kill-{i}"), Status::Down, 2))
        .collect();
    h.publish(&then).await;
    let rows = h.wait_for_newest(&then, 30).await;
    assert!(rows.values().all(|r| r.failed_count == 1), "{rows:?}");
    w.stop().await;
}

#[tokio::test]
async fn two_writers_on_one_queue_end_up_consistent() {
    let h = Harness::new().await;
    let mut settings = h.settings();
    // Small batches, so that the two take turns at the same services.
    settings.writer.max_batch = 20;
    settings.writer.prefetch = 40;
    let a = h.start_writer(settings.clone()).await;
    let b = h.start_writer(settings).await;
    let events = shuffled_stream("two", 50, 30);
    h.publish(&events).await;
    h.wait_for_newest(&events, 60).await;
    assert_histories_chain(&h, &events).await;
    eventually(20, "every delivery to be counted once", || async {
        let mut seen = 0.0;
        for w in [&a, &b] {
            seen += w.metric("events_applied_total").await + w.metric("events_stale_total").await;
        }
        (seen == events.len() as f64).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// The status code of the writer's `/readyz`.
async fn ready(port: u16) -> u16 {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .map_or(0, |r| r.status().as_u16())
}
