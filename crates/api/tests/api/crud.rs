use crate::helpers::{assert_error, spawn_app};
use serde_json::json;

#[tokio::test]
async fn post_creates_a_row_that_get_returns() {
    let app = spawn_app().await;
    let res = app
        .post_service(json!({"Id": 7, "Name": "elasticsearch", "Status": "normal", "Running": true, "Detail": "green"}))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], "/elkservice/7");
    let created: serde_json::Value = res.json().await.unwrap();
    assert_eq!(created["Id"], 7);
    assert_eq!(created["Name"], "elasticsearch");
    assert_eq!(created["Status"], "normal");
    assert_eq!(created["Running"], true);
    assert_eq!(created["FailedCount"], 0);
    assert_eq!(created["Detail"], "green");
    assert!(created["StatusChangedAt"].is_string());
    assert!(created["LastCheckedAt"].is_null());

    let fetched = app.get_json("/elkservice/7", 200).await;
    assert_eq!(fetched, created);
}

#[tokio::test]
async fn post_assigns_an_id_and_defaults() {
    let app = spawn_app().await;
    let a = app.post_service(json!({"Name": "kibana"})).await;
    assert_eq!(a.status(), 201);
    let a: serde_json::Value = a.json().await.unwrap();
    assert!(a["Id"].as_i64().unwrap() >= 1);
    assert_eq!(a["Status"], "unknown");
    assert_eq!(a["Running"], false);
    let b = app.create("logstash", "down").await;
    assert!(b["Id"].as_i64() > a["Id"].as_i64());
}

#[tokio::test]
async fn integers_may_be_written_with_a_zero_fraction() {
    let app = spawn_app().await;
    let res = app
        .post_service(json!({"Id": 503.0, "Name": "a", "FailedCount": 2.0}))
        .await;
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        (body["Id"].as_i64(), body["FailedCount"].as_i64()),
        (Some(503), Some(2))
    );
}

#[tokio::test]
async fn the_largest_client_id_still_leaves_ids_to_assign() {
    let app = spawn_app().await;
    let res = app
        .post_service(json!({"Name": "top", "Id": 9007199254740991u64}))
        .await;
    assert_eq!(res.status(), 201);
    let next = app.create("next", "normal").await;
    assert_eq!(next["Id"], 9007199254740992u64);
}

#[tokio::test]
async fn running_accepts_one_and_zero_as_beego_clients_send() {
    let app = spawn_app().await;
    let res = app.post_service(json!({"Name": "a", "Running": 1})).await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["Running"],
        true
    );
    let res = app.post_service(json!({"Name": "b", "Running": 0})).await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["Running"],
        false
    );
    let res = app.post_service(json!({"Name": "c", "Running": 2})).await;
    assert_error(res, 422).await;
    let res = app
        .post_service(json!({"Name": "d", "Running": "yes"}))
        .await;
    assert_error(res, 422).await;
}

#[tokio::test]
async fn duplicate_id_or_name_is_a_conflict_that_writes_nothing() {
    let app = spawn_app().await;
    app.post_service(json!({"Id": 1, "Name": "nginx"})).await;
    let body = assert_error(
        app.post_service(json!({"Id": 1, "Name": "other"})).await,
        409,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("Id"));
    let body = assert_error(
        app.post_service(json!({"Id": 2, "Name": "nginx"})).await,
        409,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("Name"));
    assert_eq!(
        app.rows().await,
        vec![(1, "nginx".into(), "unknown".into())]
    );
}

#[tokio::test]
async fn names_are_case_sensitive() {
    let app = spawn_app().await;
    app.create("Kibana", "normal").await;
    app.create("kibana", "down").await;
    assert_eq!(app.rows().await.len(), 2);
}

#[tokio::test]
async fn invalid_fields_are_422_and_write_nothing() {
    let app = spawn_app().await;
    let long = "x".repeat(64);
    let detail = "d".repeat(1025);
    for body in [
        json!({}),
        json!({"Name": ""}),
        json!({"Name": long}),
        json!({"Name": "has space"}),
        json!({"Name": "semi;colon"}),
        json!({"Name": 5}),
        json!({"Name": "ok", "Status": "sideways"}),
        json!({"Name": "ok", "Status": "Normal"}),
        json!({"Name": "ok", "FailedCount": -1}),
        json!({"Name": "ok", "Id": 0}),
        json!({"Name": "ok", "Id": -3}),
        json!({"Name": "ok", "Id": 1.5}),
        json!({"Name": "ok", "Id": 9007199254740992u64}),
        json!({"Name": "ok", "Id": i64::MAX}),
        json!({"Name": "ok", "FailedCount": 4294967296u64}),
        json!({"Name": "ok", "Detail": detail}),
        json!({"Name": "ok", "Colour": "blue"}),
        json!(["Name", "ok"]),
        // Every field in order, as an array: no object, so no service.
        json!([7, "ok", "down", true, 2, null, null, null, null, null]),
        json!("ok"),
    ] {
        let res = app.post_service(body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        assert_error(res, 422).await;
    }
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    for raw in ["{", "", "not json", "{\"Name\": \"a\",}"] {
        let res = app
            .authed(reqwest::Method::POST, "/elkservice")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_error(res, 400).await;
    }
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(65 * 1024);
    let res = app
        .post_service(json!({"Name": "big", "Detail": padding}))
        .await;
    assert_error(res, 413).await;
    assert!(app.rows().await.is_empty());
}

#[tokio::test]
async fn put_replaces_the_row() {
    let app = spawn_app().await;
    let created = app.create("kibana", "normal").await;
    let id = created["Id"].as_i64().unwrap();
    let res = app
        .put_service(
            id,
            json!({"Name": "kibana-2", "Status": "down", "Running": 0, "FailedCount": 4}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let updated: serde_json::Value = res.json().await.unwrap();
    assert_eq!(updated["Name"], "kibana-2");
    assert_eq!(updated["Status"], "down");
    assert_eq!(updated["Running"], false);
    assert_eq!(updated["FailedCount"], 4);
    assert_eq!(updated["Detail"], serde_json::Value::Null);
    assert_ne!(updated["StatusChangedAt"], created["StatusChangedAt"]);
    assert_eq!(
        app.get_json(&format!("/elkservice/{id}"), 200).await,
        updated
    );

    // A row read with GET can be sent back as it is.
    let res = app.put_service(id, updated.clone()).await;
    assert_eq!(res.status(), 200);
    let again: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        again["StatusChangedAt"], updated["StatusChangedAt"],
        "status did not change"
    );
}

#[tokio::test]
async fn put_with_missing_fields_is_422_and_leaves_the_row() {
    let app = spawn_app().await;
    let created = app.create("nginx", "normal").await;
    let id = created["Id"].as_i64().unwrap();
    for body in [
        json!({"Name": "nginx"}),
        json!({"Name": "nginx", "Status": "down", "Running": false}),
        json!({"Status": "down", "Running": false, "FailedCount": 1}),
        json!({"Id": id + 1, "Name": "nginx", "Status": "down", "Running": false, "FailedCount": 1}),
        // The fields in order, as an array.
        json!([id, "nginx", "down", false, 1, null, null, null, null, null]),
    ] {
        assert_error(app.put_service(id, body).await, 422).await;
    }
    assert_eq!(
        app.get_json(&format!("/elkservice/{id}"), 200).await,
        created
    );
}

#[tokio::test]
async fn put_onto_another_name_is_409_and_unknown_id_is_404() {
    let app = spawn_app().await;
    app.create("a", "normal").await;
    let b = app.create("b", "normal").await;
    let full =
        |name: &str| json!({"Name": name, "Status": "down", "Running": false, "FailedCount": 0});
    let id = b["Id"].as_i64().unwrap();
    assert_error(app.put_service(id, full("a")).await, 409).await;
    assert_eq!(app.get_json(&format!("/elkservice/{id}"), 200).await, b);
    assert_error(app.put_service(999, full("c")).await, 404).await;
}

#[tokio::test]
async fn delete_removes_the_row() {
    let app = spawn_app().await;
    let id = app.create("logstash", "normal").await["Id"]
        .as_i64()
        .unwrap();
    let path = format!("/elkservice/{id}");
    let res = app
        .authed(reqwest::Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_error(app.get(&path).send().await.unwrap(), 404).await;
    let res = app
        .authed(reqwest::Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert_error(res, 404).await;
}

#[tokio::test]
async fn unknown_or_malformed_ids_are_404_or_400() {
    let app = spawn_app().await;
    for path in ["/elkservice/42", "/elkservice/42/events", "/elkservice/0"] {
        assert_error(app.get(path).send().await.unwrap(), 404).await;
    }
    for path in [
        "/elkservice/abc",
        "/elkservice/1.5",
        "/elkservice/99999999999999999999",
    ] {
        assert_error(app.get(path).send().await.unwrap(), 400).await;
    }
}

#[tokio::test]
async fn the_v1_path_serves_the_same_resource() {
    let app = spawn_app().await;
    let res = app
        .authed(reqwest::Method::POST, "/v1/elkservice")
        .json(&json!({"Name": "es"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["Id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get_json(&format!("/v1/elkservice/{id}"), 200).await,
        app.get_json(&format!("/elkservice/{id}"), 200).await
    );
    let list = app.get_json("/v1/elkservice", 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    assert_error(app.get("/nope").send().await.unwrap(), 404).await;
    let res = app
        .authed(reqwest::Method::PATCH, "/elkservice/1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, PUT, DELETE");
    assert_error(res, 405).await;
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/elkservice",
        "/v1/elkservice/1/events",
    ] {
        let res = app
            .client
            .request(trace.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_error(res, 405).await;
    }
}
