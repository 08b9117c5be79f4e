use crate::helpers::{assert_error, spawn_app, spawn_app_with, KEY};
use serde_json::json;

#[tokio::test]
async fn writes_without_a_known_key_are_401_and_change_nothing() {
    let app = spawn_app().await;
    let id = app.create("kibana", "normal").await["Id"].as_i64().unwrap();
    let path = format!("/elkservice/{id}");
    let body = json!({"Name": "kibana", "Status": "down", "Running": false, "FailedCount": 0});
    for auth in [
        None,
        Some("Bearer wrong-key"),
        Some("Basic dXNlcjpwYXNz"),
        Some(KEY),
    ] {
        let with = |rb: reqwest::RequestBuilder| match auth {
            Some(v) => rb.header("authorization", v),
            None => rb,
        };
        let attempts = [
            with(app.client.post(app.url("/elkservice"))).json(&json!({"Name": "x"})),
            with(app.client.put(app.url(&path))).json(&body),
            with(app.client.delete(app.url(&path))),
        ];
        for rb in attempts {
            let res = rb.send().await.unwrap();
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            assert_error(res, 401).await;
        }
    }
    assert_eq!(
        app.rows().await,
        vec![(id, "kibana".into(), "normal".into())]
    );
}

#[tokio::test]
async fn reads_are_open_unless_configured() {
    let app = spawn_app().await;
    assert_eq!(app.get("/elkservice").send().await.unwrap().status(), 200);

    let closed = spawn_app_with(|s| s.api.auth_reads = true).await;
    assert_error(closed.get("/elkservice").send().await.unwrap(), 401).await;
    assert_error(closed.get("/elkservice/1").send().await.unwrap(), 401).await;
    let res = closed
        .get("/elkservice")
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Health and docs stay open for probes and people.
    assert_eq!(closed.get("/healthz").send().await.unwrap().status(), 200);
}
