//! Optimistic concurrency: GET's ETag, and If-Match on PUT and DELETE.

use crate::helpers::{assert_error, spawn_app};
use serde_json::json;

#[tokio::test]
async fn a_put_with_a_stale_if_match_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app.create("kibana", "normal").await;
    let id = created["Id"].as_i64().unwrap();
    let read = app.get(&format!("/elkservice/{id}")).send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let mut body: serde_json::Value = read.json().await.unwrap();

    // Someone else changes the row (as the writer would: a new failure).
    let res = app
        .put_service(
            id,
            json!({"Name": "kibana", "Status": "down", "Running": false, "FailedCount": 1}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let newer = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag, "a change makes a new ETag");

    // The first reader sends back what it read, with only Detail changed.
    body["Detail"] = json!("edited");
    let res = app
        .authed(reqwest::Method::PUT, &format!("/elkservice/{id}"))
        .header("If-Match", &etag)
        .json(&body)
        .send()
        .await
        .unwrap();
    let err = assert_error(res, 412).await;
    assert!(err["detail"].as_str().unwrap().contains(&newer), "{err}");
    let now = app.get_json(&format!("/elkservice/{id}"), 200).await;
    assert_eq!(
        (now["Status"].as_str(), now["FailedCount"].as_i64()),
        (Some("down"), Some(1))
    );

    // With the current ETag the write goes through.
    let res = app
        .authed(reqwest::Method::PUT, &format!("/elkservice/{id}"))
        .header("If-Match", &newer)
        .json(&json!({"Name": "kibana", "Status": "down", "Running": false, "FailedCount": 1, "Detail": "edited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let get = app.get(&format!("/elkservice/{id}")).send().await.unwrap();
    assert_eq!(get.headers()["etag"], res.headers()["etag"]);
}

#[tokio::test]
async fn a_delete_honours_if_match() {
    let app = spawn_app().await;
    let id = app.create("logstash", "normal").await["Id"]
        .as_i64()
        .unwrap();
    let path = format!("/elkservice/{id}");
    let delete = |tag: &'static str| {
        app.authed(reqwest::Method::DELETE, &path)
            .header("If-Match", tag)
            .send()
    };
    assert_error(delete("\"not-the-tag\"").await.unwrap(), 412).await;
    app.get_json(&path, 200).await;
    assert_error(delete("no quotes").await.unwrap(), 400).await;
    assert_eq!(delete("*").await.unwrap().status(), 204);
    assert_error(delete("*").await.unwrap(), 404).await;
}
