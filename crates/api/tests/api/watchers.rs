//! The watchers' votes, as the api shows them: with each row in
//! `GET /elkservice/{Id}` (from the read model, refreshed within a second or
//! so), per watcher in `GET /watchers`, and forgotten by `DELETE /watchers/{Id}`.

use crate::helpers::{assert_error, spawn_app};
use chrono::Utc;
use elkservice_testkit::eventually;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn votes_show_with_the_row_and_per_watcher_until_forgotten() {
    let app = spawn_app().await;
    let id = app.create("web", "normal").await["Id"].as_i64().unwrap();
    let now_ns = Utc::now().timestamp_nanos_opt().unwrap();
    let mut conn = app.db.connect().await;
    // What the writer records as it applies each watcher's observation.
    for (watcher, status, fresh, age_s) in [("a", "normal", true, 0), ("b", "down", false, 600)] {
        sqlx::query(
            "INSERT INTO elkservice_vote (service_id, watcher, status, running, detail, observed_ns, fresh) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(watcher)
        .bind(status)
        .bind(status == "normal")
        .bind(format!("{watcher} says {status}"))
        .bind(now_ns - age_s * 1_000_000_000)
        .bind(fresh)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let row = eventually(10, "the row to carry its votes", || async {
        let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
        (row["Votes"].as_array().map(Vec::len) == Some(2)).then_some(row)
    })
    .await;
    let votes = row["Votes"].as_array().unwrap();
    assert_eq!(votes[0]["Watcher"], "a");
    assert_eq!(votes[0]["Fresh"], true);
    assert_eq!(votes[1]["Watcher"], "b");
    assert_eq!(votes[1]["Status"], "down");
    assert_eq!(votes[1]["Detail"], "b says down");
    assert_eq!(votes[1]["Fresh"], false);

    let watchers = app.get_json("/watchers", 200).await;
    let ids: Vec<&str> = watchers
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(watchers[0]["Services"], 1);
    assert_eq!(watchers[1]["Fresh"], false, "b has gone silent");

    // Forgetting needs a key; then b is gone from the list and from the row.
    let res = app
        .client
        .delete(app.url("/watchers/b"))
        .send()
        .await
        .unwrap();
    assert_error(res, 401).await;
    let res = app
        .authed(Method::DELETE, "/watchers/b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let left = app.get_json("/watchers", 200).await;
    assert_eq!(left.as_array().unwrap().len(), 1);
    let res = app
        .authed(Method::DELETE, "/watchers/b")
        .send()
        .await
        .unwrap();
    let body: Value = assert_error(res, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("\"b\""), "{body}");
    eventually(10, "the forgotten vote to leave the row", || async {
        let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
        (row["Votes"].as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
}
