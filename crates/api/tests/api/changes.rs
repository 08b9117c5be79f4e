//! The change feed: every change through the API is an entry, numbered in
//! commit order, readable from a cursor, held open with `wait`.

use crate::helpers::{assert_error, spawn_app, spawn_app_on, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn changes(app: &TestApp, query: &str) -> (Vec<Value>, i64) {
    let res = app
        .get(&format!("/elkservice/changes?{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let last: i64 = res.headers()["x-last-seq"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (res.json().await.unwrap(), last)
}

#[tokio::test]
async fn every_change_through_the_api_is_an_entry_in_commit_order() {
    let app = spawn_app().await;
    let created = app.create("kibana", "normal").await;
    let id = created["Id"].as_i64().unwrap();
    let body = |status: &str, detail: &str| json!({"Name": "kibana", "Status": status, "Running": true, "FailedCount": 0, "Detail": detail});
    let down: Value = app
        .put_service(id, body("down", ""))
        .await
        .json()
        .await
        .unwrap();
    app.put_service(id, body("down", "edited")).await;
    app.put_service(id, body("down", "edited")).await; // changes nothing: no entry
    let res = app
        .authed(reqwest::Method::DELETE, &format!("/elkservice/{id}"))
        .send()
        .await;
    assert_eq!(res.unwrap().status(), 204);

    let (entries, last) = changes(&app, "since=0").await;
    let kinds: Vec<_> = entries
        .iter()
        .map(|e| e["Kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "transition", "updated", "deleted"]);
    let seqs: Vec<_> = entries.iter().map(|e| e["Seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(last, 4);
    assert_eq!(entries[0]["Service"], created);
    assert_eq!(entries[0]["FromStatus"], Value::Null);
    assert_eq!(
        entries[1]["Service"], down,
        "the row as GET returned it then"
    );
    assert_eq!(entries[1]["FromStatus"], "normal");
    assert_eq!(entries[2]["Service"]["Detail"], "edited");
    assert_eq!(entries[3]["Service"], Value::Null);
    assert_eq!(entries[3]["FromStatus"], "down");
    for e in &entries {
        assert_eq!(
            (e["Id"].as_i64(), e["Name"].as_str()),
            (Some(id), Some("kibana"))
        );
        assert!(e["At"].is_string());
    }

    // A cursor and a limit.
    let (page, _) = changes(&app, "since=1&limit=2").await;
    assert_eq!(
        page.iter()
            .map(|e| e["Seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    let (none, last) = changes(&app, "since=4").await;
    assert!(none.is_empty());
    assert_eq!(last, 4);
}

#[tokio::test]
async fn a_long_poll_answers_soon_after_a_change_and_never_early_without_one() {
    let app = spawn_app().await;
    let started = Instant::now();
    let (empty, last) = changes(&app, "since=0&wait=1").await;
    assert!(empty.is_empty() && last == 0);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "answered early"
    );

    let waiting = {
        let url = app.url("/elkservice/changes?since=0&wait=30");
        tokio::spawn(async move {
            let res = reqwest::get(url).await.unwrap();
            let entries: Vec<Value> = res.json().await.unwrap();
            (entries, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // the request is waiting
    app.create("logstash", "normal").await;
    let created = Instant::now();
    let (entries, answered) = waiting.await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["Name"], "logstash");
    // The target is 100 ms; on a shared machine it is reported, not asserted.
    eprintln!(
        "change → long poll answered: {} ms",
        answered.saturating_duration_since(created).as_millis()
    );
    assert!(answered.duration_since(created) < Duration::from_secs(5));
}

#[tokio::test]
async fn bad_parameters_are_400_and_a_pruned_cursor_is_410() {
    let app = spawn_app().await;
    for bad in [
        "since=-1",
        "since=x",
        "limit=0",
        "limit=1001",
        "wait=61",
        "wait=1.5",
        "nope=1",
    ] {
        let res = app
            .get(&format!("/elkservice/changes?{bad}"))
            .send()
            .await
            .unwrap();
        assert_error(res, 400).await;
    }
    for name in ["a", "b", "c"] {
        app.create(name, "normal").await;
    }
    // Retention removes the oldest entries, up to the first one at or after
    // its cutoff: here the third's time, then now.
    let (entries, _) = changes(&app, "since=0").await;
    let third: chrono::DateTime<chrono::Utc> = entries[2]["At"].as_str().unwrap().parse().unwrap();
    let mut conn = app.db.connect().await;
    use elkservice_core::store::feed::prune;
    assert_eq!(prune(&mut conn, third, 1000).await.unwrap(), 2);
    let res = app.get("/elkservice/changes?since=1").send().await.unwrap();
    assert_error(res, 410).await;
    let (entries, _) = changes(&app, "since=2").await;
    assert_eq!(entries.len(), 1);
    let gone = prune(&mut conn, chrono::Utc::now(), 1000).await.unwrap();
    assert_eq!(gone, 1);
    let res = app.get("/elkservice/changes?since=0").send().await.unwrap();
    let err = assert_error(res, 410).await;
    assert!(
        err["detail"].as_str().unwrap().contains("X-Last-Seq"),
        "{err}"
    );
    let (entries, last) = changes(&app, "since=3").await;
    assert!(entries.is_empty());
    assert_eq!(last, 3);
}

/// A cursor kept from another database (or from this one before it was made
/// afresh) is ahead of every Seq here: a long poll on it would wait for
/// entries that mean other changes, and skip the ones before. 410: list again.
#[tokio::test]
async fn a_cursor_ahead_of_the_feed_is_410() {
    let app = spawn_app().await;
    app.create("a", "normal").await;
    let res = app
        .get("/elkservice/changes?since=2&wait=1")
        .send()
        .await
        .unwrap();
    let err = assert_error(res, 410).await;
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("ahead") && detail.contains("X-Last-Seq"),
        "{err}"
    );
    // At the last Seq: nothing yet, and no error.
    let (entries, last) = changes(&app, "since=1").await;
    assert!(entries.is_empty());
    assert_eq!(last, 1);
}

/// A transaction's entries are kept in pages of up to 256; a reader who
/// starts anywhere, inside a page or at its edge, gets exactly the entries
/// after its cursor, in order, none twice.
#[tokio::test]
async fn a_cursor_anywhere_in_a_large_transaction_reads_exactly_what_follows() {
    use elkservice_core::store::feed::{self, ChangeKind, NewChange};
    use elkservice_core::ServiceName;
    use sqlx::Acquire;

    let app = spawn_app().await;
    let entry = |i: usize| NewChange {
        kind: ChangeKind::Deleted,
        service_id: i as i64,
        name: ServiceName::parse(&format!("gone-{i}")).unwrap(),
        at: chrono::Utc::now(),
        from: None,
        service: None,
        source: elkservice_core::store::feed::Source::Api,
    };
    let mut conn = app.db.connect().await;
    let mut tx = conn.begin().await.unwrap();
    let batch: Vec<_> = (1..=600).map(entry).collect();
    assert_eq!(feed::record(&mut tx, &batch).await.unwrap(), 1);
    tx.commit().await.unwrap();

    for (since, limit, expect) in [
        (0, 1000, 1..=600),
        (255, 2, 256..=257),
        (256, 1, 257..=257),
        (300, 500, 301..=600),
        (599, 10, 600..=600),
    ] {
        let (entries, last) = changes(&app, &format!("since={since}&limit={limit}")).await;
        assert_eq!(last, 600);
        let got: Vec<(i64, String)> = entries
            .iter()
            .map(|e| {
                (
                    e["Seq"].as_i64().unwrap(),
                    e["Name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = expect.map(|s| (s, format!("gone-{s}"))).collect();
        assert_eq!(got, want, "since={since}&limit={limit}");
    }
}

/// Entries recorded one row each, before the feed was kept in pages, read
/// the same after the upgrade's migration, and the feed goes on after them.
#[tokio::test]
async fn entries_recorded_before_the_feed_had_pages_still_read_after_the_upgrade() {
    use elkservice_core::config::DatabaseSettings;
    use elkservice_core::db;
    use elkservice_testkit::TestDatabase;

    let database = TestDatabase::new();
    let pool = db::connect_and_migrate(&DatabaseSettings {
        url: database.url.clone(),
        max_connections: 1,
        acquire_timeout_secs: 5,
    })
    .await
    .unwrap();
    // The database as the version before left it: its table of entries,
    // each row's form one of the two that version wrote or read.
    for statement in [
        "DELETE FROM _sqlx_migrations WHERE version BETWEEN 20261127000001 AND 20261127000003",
        "DROP TABLE elkservice_change_page",
        "CREATE TABLE elkservice_change (seq BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, \
         service_id BIGINT NOT NULL, name VARCHAR(63) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
         at DATETIME(6) NOT NULL, from_status VARCHAR(16) NULL, service TEXT NULL, PRIMARY KEY (seq))",
        r#"INSERT INTO elkservice_change VALUES
           (1, 'created', 7, 'kibana', '2026-11-26 10:00:00.000001', NULL,
            '{"Id":7,"Name":"kibana","Status":"unknown","Running":false,"FailedCount":0,"Detail":null,"StatusChangedAt":null,"LastCheckedAt":null,"CreatedAt":"2026-11-26T10:00:00.000001Z","UpdatedAt":"2026-11-26T10:00:00.000001Z"}'),
           (2, 'transition', 7, 'kibana', '2026-11-26 10:00:05.5', 'unknown',
            '["down",false,1,"exit \\"1\\"",1795687205500000,1795687205500000,1795687200000001,1795687206000000]'),
           (3, 'deleted', 7, 'kibana', '2026-11-26 10:01:00', NULL, NULL)"#,
        "UPDATE elkservice_feed SET value = 3 WHERE name = 'seq'",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    // The api's start runs the migration that moves them into pages.
    let app = spawn_app_on(database).await;
    let id = app.create("es", "normal").await["Id"].as_i64().unwrap();
    let (entries, last) = changes(&app, "since=0").await;
    assert_eq!(last, 4);
    let summary: Vec<(i64, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["Seq"].as_i64().unwrap(),
                e["Kind"].as_str().unwrap(),
                e["Service"]["Status"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", Some("unknown")),
            (2, "transition", Some("down")),
            (3, "deleted", None),
            (4, "created", Some("normal")),
        ]
    );
    assert_eq!(entries[3]["Id"], id);
    let down = &entries[1];
    assert_eq!(down["At"], "2026-11-26T10:00:05.500Z");
    assert_eq!(down["FromStatus"], "unknown");
    assert_eq!(down["Service"]["Detail"], "exit \"1\"");
    assert_eq!(down["Service"]["FailedCount"], 1);
    assert_eq!(down["Service"]["CreatedAt"], "2026-11-26T10:00:00.000001Z");
    assert_eq!(
        entries[0]["Service"]["CreatedAt"],
        "2026-11-26T10:00:00.000001Z"
    );
}
