//! The read model: reads answered from memory are the database's answers,
//! at most `read_model_max_lag_ms` late, and a process's own writes at once.

use crate::helpers::{spawn_app_with, TestApp};
use elkservice_testkit::eventually;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MAX_LAG_MS: u64 = 300;

/// A GET's status, `ETag` (or, for a listing, `X-Total-Count`) and body.
async fn get(app: &TestApp, path: &str) -> (u16, Option<String>, Value) {
    let res = app.get(path).send().await.unwrap();
    let status = res.status().as_u16();
    let header = ["etag", "x-total-count"]
        .iter()
        .find_map(|h| res.headers().get(*h))
        .map(|v| v.to_str().unwrap().to_owned());
    (status, header, res.json().await.unwrap())
}

#[tokio::test]
async fn a_write_through_one_process_is_read_through_another_within_the_bound() {
    let lag = |s: &mut elkservice_api::settings::Settings| s.api.read_model_max_lag_ms = MAX_LAG_MS;
    let a = spawn_app_with(lag).await;
    let b = a.another(lag).await;
    let id = a.create("es", "normal").await["Id"].as_i64().unwrap();
    let path = format!("/elkservice/{id}");
    let mut seen_after = Vec::new();
    for i in 0..20 {
        let detail = format!("version {i}");
        let res = a
            .put_service(
                id,
                json!({"Name": "es", "Status": "normal", "Running": true, "FailedCount": 0, "Detail": detail}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let put_etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let written = Instant::now();
        // Its own write, read back at once, ETag and all.
        let (status, etag, row) = get(&a, &path).await;
        assert_eq!(
            (status, row["Detail"].as_str()),
            (200, Some(detail.as_str()))
        );
        assert_eq!(etag.as_deref(), Some(put_etag.as_str()));
        // The other process, as soon as it has it...
        eventually(5, "the other process to read the write", || async {
            let (_, etag, row) = get(&b, &path).await;
            (row["Detail"] == detail && etag.as_deref() == Some(put_etag.as_str())).then_some(())
        })
        .await;
        seen_after.push(written.elapsed());
    }
    // ...and always once the bound has passed: not a wait for readiness but
    // the promise itself (a model further behind sends the read to the database).
    let res = a
        .put_service(
            id,
            json!({"Name": "es", "Status": "down", "Running": false, "FailedCount": 1, "Detail": "last"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(MAX_LAG_MS)).await;
    let (_, _, row) = get(&b, &path).await;
    assert_eq!(
        (row["Status"].as_str(), row["Detail"].as_str()),
        (Some("down"), Some("last"))
    );

    let res = a.authed(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get(&a, &path).await.0, 404, "its own delete, at once");
    tokio::time::sleep(Duration::from_millis(MAX_LAG_MS)).await;
    assert_eq!(get(&b, &path).await.0, 404);

    seen_after.sort();
    eprintln!(
        "a write through one process read through another after: median {:?}, max {:?}",
        seen_after[seen_after.len() / 2],
        seen_after.last().unwrap()
    );
}

/// The listings and rows of a process with the model and of one without it
/// (every read from the database) agree, once the model has caught up:
/// after creations, edits and deletions through both processes, and check
/// times that move without a feed entry, as a watcher's confirmation does.
#[tokio::test]
async fn the_model_answers_as_the_database_does() {
    let memory = spawn_app_with(|s| s.api.read_model_max_lag_ms = MAX_LAG_MS).await;
    let database = memory.another(|s| s.api.read_model_max_lag_ms = 0).await;
    let statuses = ["normal", "down", "degraded", "starting", "unknown"];
    let mut ids = Vec::new();
    for i in 0..30 {
        let via = if i % 2 == 0 { &memory } else { &database };
        let body = json!({
            "Name": format!("svc-{i}"),
            "Status": statuses[i % statuses.len()],
            "Running": i % 3 != 0,
            "FailedCount": i % 4,
            "Detail": if i % 5 == 0 { Value::Null } else { json!(format!("detail {i}")) },
        });
        let res = via.post_service(body).await;
        assert_eq!(res.status(), 201);
        ids.push(res.json::<Value>().await.unwrap()["Id"].as_i64().unwrap());
    }
    for (i, id) in ids.iter().enumerate().step_by(3) {
        let via = if i % 2 == 0 { &database } else { &memory };
        let res = via
            .put_service(*id, json!({"Name": format!("svc-{i}"), "Status": "down", "Running": false, "FailedCount": 7}))
            .await;
        assert_eq!(res.status(), 200);
    }
    for id in &ids[25..] {
        let res = database
            .authed(Method::DELETE, &format!("/elkservice/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
    }
    let mut conn = memory.db.connect().await;
    sqlx::query("UPDATE elkservice SET last_checked_at = NOW(6) WHERE id IN (?, ?)")
        .bind(ids[1])
        .bind(ids[2])
        .execute(&mut conn)
        .await
        .unwrap();

    let mut paths: Vec<String> = [
        "",
        "?limit=0",
        "?query=Status:down",
        "?query=Status__in:down|degraded,Running:false&sortby=Name&order=desc",
        "?sortby=StatusChangedAt,FailedCount&order=desc,asc&limit=7&offset=3",
        "?query=Name__startswith:svc-1&fields=Name,Id",
        "?query=Detail__isnull:true",
        "?query=FailedCount__gte:2,LastCheckedAt__isnull:false",
        "?sortby=LastCheckedAt&order=desc&limit=3",
    ]
    .iter()
    .map(|q| format!("/elkservice{q}"))
    .collect();
    paths.extend(ids.iter().map(|id| format!("/elkservice/{id}")));
    for path in &paths {
        eventually(
            5,
            &format!("the model to answer {path} as the database does"),
            || async {
                let (from_memory, from_database) =
                    (get(&memory, path).await, get(&database, path).await);
                (from_memory == from_database).then_some(())
            },
        )
        .await;
    }
    let (status, _, body) = get(&memory, "/elkservice?limit=0").await;
    assert_eq!((status, body.as_array().unwrap().len()), (200, 25));
    // Answered from memory indeed (all but what came before the first load).
    let reads = |source: &str| {
        memory.metric(format!(
            "elkservice_api_row_reads_total{{source=\"{source}\"}}"
        ))
    };
    let (from_memory, from_database) = (reads("memory").await, reads("database").await);
    assert!(
        from_memory >= paths.len() as f64,
        "reads from memory: {from_memory}, from the database: {from_database}"
    );
}

/// A model that fell behind only lately (here its reader is held up by a
/// lock on the feed's table) makes a read wait for the reader rather than
/// send it to the database; the reader's next read answers it from memory,
/// with what was committed before the read came.
#[tokio::test]
async fn a_read_waits_for_a_late_model_instead_of_going_to_the_database() {
    let app = spawn_app_with(|s| s.api.read_model_max_lag_ms = 1000).await;
    let id = app.create("es", "normal").await["Id"].as_i64().unwrap();
    let path = format!("/elkservice/{id}");
    let metric = |name: &str| app.metric(format!("elkservice_api_{name}"));
    eventually(5, "a read from memory", || async {
        get(&app, &path).await;
        (metric("row_reads_total{source=\"memory\"}").await > 0.0).then_some(())
    })
    .await;

    let mut lock = app.db.connect().await;
    sqlx::query("LOCK TABLES elkservice_change_page WRITE")
        .execute(&mut lock)
        .await
        .unwrap();
    eventually(5, "the model to fall behind", || async {
        (metric("read_model_lag_seconds").await > 1.0).then_some(())
    })
    .await;
    let from_database = metric("row_reads_total{source=\"database\"}").await;
    let read = tokio::spawn({
        let (client, url) = (reqwest::Client::new(), app.url(&path));
        async move { client.get(url).send().await.unwrap() }
    });
    eventually(5, "the read to wait for the model", || async {
        (metric("reads_waiting_for_model").await == 1.0).then_some(())
    })
    .await;
    sqlx::query("UNLOCK TABLES")
        .execute(&mut lock)
        .await
        .unwrap();

    let res = read.await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["Name"], "es");
    assert_eq!(metric("reads_waiting_for_model").await, 0.0);
    assert_eq!(
        metric("row_reads_total{source=\"database\"}").await,
        from_database,
        "no read went to the database"
    );
}
