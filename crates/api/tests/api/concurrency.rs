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

/// Many PUTs at once (committed in groups): each gets the answer it would
/// get alone, a refused one changes nothing, and every row's history and
/// feed entries chain from its creation to its final state.
#[tokio::test]
async fn concurrent_puts_each_get_their_own_answer() {
    use futures_util::future::join_all;
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            app.create(&format!("svc-{i}"), "normal").await["Id"]
                .as_i64()
                .unwrap(),
        );
    }
    let etag = |res: &reqwest::Response| res.headers()["etag"].to_str().unwrap().to_owned();
    let current = app
        .get(&format!("/elkservice/{}", ids[13]))
        .send()
        .await
        .unwrap();
    let fresh_etag = etag(&current);

    let put = |id: i64, name: String, status: &str, if_match: Option<&str>| {
        let mut req = app
            .authed(reqwest::Method::PUT, &format!("/elkservice/{id}"))
            .json(&json!({"Name": name, "Status": status, "Running": status != "down", "FailedCount": 0}));
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let statuses = ["down", "normal", "degraded", "down", "normal"];
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for (i, id) in ids.iter().enumerate().take(10) {
        for status in statuses {
            expected.push(200);
            requests.push(put(*id, format!("svc-{i}"), status, None));
        }
    }
    expected.extend([412, 404, 409, 200]);
    requests.push(put(
        ids[10],
        "svc-10".into(),
        "down",
        Some("\"0123456789abcdef01234567\""),
    ));
    requests.push(put(999_999, "nobody".into(), "down", None));
    requests.push(put(ids[11], "svc-12".into(), "down", None));
    requests.push(put(ids[13], "svc-13".into(), "down", Some(&fresh_etag)));
    let answers = join_all(requests).await;
    assert_eq!(answers, expected);
    let group = |part: &str| app.metric(format!("elkservice_api_put_group_commit_size_{part}"));
    let (sum, count) = (group("sum").await, group("count").await);
    assert!(
        sum > count,
        "some PUTs were committed together: {sum} in {count} commits"
    );

    let changes = app.get_json("/elkservice/changes?limit=1000", 200).await;
    for (i, id) in ids.iter().enumerate() {
        let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
        let refused = i == 10 || i == 11;
        assert_eq!(row["Name"], format!("svc-{i}"));
        if refused {
            assert_eq!(row["Status"], "normal", "a refused PUT changes nothing");
        }
        // Newest first; each transition starts where the one before it ended.
        let history = app
            .get_json(&format!("/elkservice/{id}/events?limit=100"), 200)
            .await;
        let history = history.as_array().unwrap();
        assert_eq!(history[0]["Status"], row["Status"], "svc-{i}: {history:?}");
        for pair in history.windows(2) {
            assert_eq!(
                pair[0]["FromStatus"], pair[1]["Status"],
                "svc-{i}: {history:?}"
            );
        }
        let mine: Vec<_> = changes
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["Id"] == *id)
            .collect();
        assert_eq!(mine.last().unwrap()["Service"], row, "svc-{i}");
        let transitions = mine.iter().filter(|c| c["Kind"] == "transition").count();
        assert_eq!(transitions + 1, history.len(), "svc-{i}: {mine:?}");
        if refused || i > 13 {
            assert_eq!(mine.len(), 1, "only its creation: svc-{i}");
        }
    }
}

/// The PUT committer keeps a connection of its own: when the database drops
/// it (a restart, a failover, `KILL`), the next PUT is still answered, over
/// a new one.
#[tokio::test]
async fn puts_go_on_after_the_database_drops_the_connections() {
    let app = spawn_app().await;
    let id = app.create("es", "normal").await["Id"].as_i64().unwrap();
    let body =
        |status: &str| json!({"Name": "es", "Status": status, "Running": true, "FailedCount": 0});
    assert_eq!(app.put_service(id, body("degraded")).await.status(), 200);

    let killed = app.db.kill_connections().await;
    assert!(killed >= 2, "the pool's and the committer's: {killed}");
    let res = app.put_service(id, body("normal")).await;
    assert_eq!(res.status(), 200);
    let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
    assert_eq!(row["Status"], "normal");
}

/// A PUT commits whole or not at all: when the database refuses a statement
/// after the row's update (here the history row, by a rule of the
/// operator's own), the row, its history and the feed stay as they were,
/// and the next PUT is committed as usual.
#[tokio::test]
async fn a_put_refused_part_way_through_changes_nothing() {
    let app = spawn_app().await;
    let id = app.create("es", "normal").await["Id"].as_i64().unwrap();
    let mut conn = app.db.connect().await;
    sqlx::query(
        "ALTER TABLE elkservice_event ADD CONSTRAINT no_degraded CHECK (status <> 'degraded')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let body =
        |status: &str| json!({"Name": "es", "Status": status, "Running": true, "FailedCount": 0});
    let feed = || async {
        app.get_json("/elkservice/changes?limit=100", 200)
            .await
            .as_array()
            .unwrap()
            .len()
    };
    let entries = feed().await;

    let res = app.put_service(id, body("degraded")).await;
    assert_error(res, 500).await;
    assert_eq!(app.rows().await, [(id, "es".into(), "normal".into())]);
    let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
    assert_eq!(row["Status"], "normal");
    assert_eq!(feed().await, entries, "no feed entry for a refused PUT");

    let res = app.put_service(id, body("down")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.rows().await, [(id, "es".into(), "down".into())]);
    let history = app
        .get_json(&format!("/elkservice/{id}/events?limit=10"), 200)
        .await;
    let statuses: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["down", "normal"]);
    assert_eq!(feed().await, entries + 1);
}
