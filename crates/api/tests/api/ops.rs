use crate::helpers::{assert_error, spawn_app, test_settings};
use elkservice_api::startup::Application;
use elkservice_core::db;
use elkservice_testkit::TestDatabase;
use sqlx::mysql::MySqlPoolOptions;
use std::time::Duration;

#[tokio::test]
async fn health_and_readiness_answer_when_the_database_does() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz", 200).await["status"], "ok");
    assert_eq!(app.get_json("/readyz", 200).await["status"], "ready");
}

#[tokio::test]
async fn without_a_database_readyz_and_data_routes_are_503() {
    // A pool that can never connect: nothing listens on port 1.
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("mysql://root@127.0.0.1:1/none")
        .unwrap();
    let settings = test_settings("unused".into());
    let app = Application::with_pool(&settings.api, pool, 1).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "unavailable"
    );
    let res = client
        .get(format!("{base}/elkservice"))
        .send()
        .await
        .unwrap();
    let body = assert_error(res, 503).await;
    assert_eq!(body["error"], "database unavailable");
    // A PUT too (its committer connects on its own), twice: still answered.
    for _ in 0..2 {
        let res = client
            .put(format!("{base}/elkservice/1"))
            .bearer_auth(crate::helpers::KEY)
            .json(&serde_json::json!({"Name": "es", "Status": "down", "Running": false, "FailedCount": 1}))
            .send()
            .await
            .unwrap();
        let body = assert_error(res, 503).await;
        assert_eq!(body["error"], "database unavailable");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = spawn_app().await;
    app.get("/elkservice").send().await.unwrap();
    app.get("/elkservice/9").send().await.unwrap();
    app.get("/elkservice/9").send().await.unwrap();
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"elkservice_api_http_requests_total{method="GET",route="/elkservice/{Id}",status="404"} 2"#),
        "{text}"
    );
    assert!(text.contains(
        r#"elkservice_api_http_requests_total{method="GET",route="/elkservice",status="200"} 1"#
    ));
    assert!(text.contains("elkservice_api_http_request_duration_seconds_bucket"));
    assert!(text.contains("elkservice_api_db_pool_connections"));
    assert!(text.contains("elkservice_api_db_pool_max_connections 5"));
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz").send().await.unwrap();
    let b = app.get("/healthz").send().await.unwrap();
    let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
    assert_ne!(a, b);
    for id in [a, b] {
        let id = uuid::Uuid::parse_str(id.to_str().unwrap()).expect("a UUID");
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
    }
    let res = app
        .get("/nope")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
}

#[tokio::test]
async fn two_processes_migrating_a_new_database_at_once_both_succeed() {
    let db = TestDatabase::new();
    let settings = test_settings(db.url.clone()).database;
    let (a, b) = tokio::join!(
        db::connect_and_migrate(&settings),
        db::connect_and_migrate(&settings)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() \
         AND table_name IN ('elkservice', 'elkservice_event')",
    )
    .fetch_one(&a)
    .await
    .unwrap();
    assert_eq!(tables, 2);
    // Running them again is a no-op.
    db::migrate(&b).await.unwrap();
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for i in 0..1000 {
        let method =
            reqwest::Method::from_bytes(format!("JUNK{i:04}{}", "X".repeat(200)).as_bytes())
                .unwrap();
        let res = app
            .client
            .request(method, app.url("/elkservice"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.len() < 200_000, "/metrics is {} bytes", text.len());
    assert!(!text.contains("JUNK"));
    assert!(
        text.contains(r#"elkservice_api_http_requests_total{method="other",route="/elkservice",status="405"} 1000"#),
        "{text}"
    );
}
