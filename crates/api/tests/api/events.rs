use crate::helpers::{assert_error, spawn_app};
use serde_json::json;

#[tokio::test]
async fn events_list_status_transitions_newest_first() {
    let app = spawn_app().await;
    let id = app.create("elasticsearch", "starting").await["Id"]
        .as_i64()
        .unwrap();
    let put = |status: &str| json!({"Name": "elasticsearch", "Status": status, "Running": true, "FailedCount": 0});
    for status in ["normal", "normal", "degraded", "down"] {
        assert_eq!(app.put_service(id, put(status)).await.status(), 200);
    }
    let res = app
        .get(&format!("/elkservice/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-total-count"],
        "4",
        "normal→normal is not a transition"
    );
    let events: serde_json::Value = res.json().await.unwrap();
    let pairs: Vec<(serde_json::Value, serde_json::Value)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["FromStatus"].clone(), e["Status"].clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (json!("degraded"), json!("down")),
            (json!("normal"), json!("degraded")),
            (json!("starting"), json!("normal")),
            (json!(null), json!("starting")),
        ]
    );
    assert_eq!(events[0]["ServiceId"], id);
    assert_eq!(events[0]["Source"], "api");

    let page = app
        .get_json(&format!("/elkservice/{id}/events?limit=2&offset=1"), 200)
        .await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["Status"], "degraded");
}

#[tokio::test]
async fn events_reject_bad_paging_and_vanish_with_the_service() {
    let app = spawn_app().await;
    let id = app.create("nginx", "normal").await["Id"].as_i64().unwrap();
    for q in ["limit=-1", "limit=1001", "offset=x", "sortby=Id"] {
        let res = app
            .get(&format!("/elkservice/{id}/events?{q}"))
            .send()
            .await
            .unwrap();
        assert_error(res, 400).await;
    }
    let res = app
        .authed(reqwest::Method::DELETE, &format!("/elkservice/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .get(&format!("/elkservice/{id}/events"))
        .send()
        .await
        .unwrap();
    assert_error(res, 404).await;
}
