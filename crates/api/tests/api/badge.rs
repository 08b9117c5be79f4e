//! Status and uptime badges: SVG that says what it shows, cacheable with
//! `ETag` and `If-None-Match`, and a grey badge for a name nobody has.

use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn a_status_badge_follows_the_row_and_answers_304_while_unchanged() {
    let app = spawn_app().await;
    let row = app.create("kibana", "normal").await;
    let res = app.get("/badge/kibana/status.svg").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let svg = res.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<title>status: normal</title>"),
        "{svg}"
    );

    let res = app
        .get("/badge/kibana/status.svg")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert!(res.bytes().await.unwrap().is_empty());

    let id = row["Id"].as_i64().unwrap();
    let res = app
        .put_service(
            id,
            json!({"Name": "kibana", "Status": "down", "Running": false, "FailedCount": 1}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .get("/badge/kibana/status.svg")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "changed, so sent again");
    assert_ne!(res.headers()["etag"].to_str().unwrap(), etag);
    let svg = res.text().await.unwrap();
    assert!(
        svg.contains("status: down") && svg.contains("#e05d44"),
        "{svg}"
    );
}

#[tokio::test]
async fn an_uptime_badge_takes_a_window_and_an_unknown_name_is_a_grey_404() {
    let app = spawn_app().await;
    app.create("es", "normal").await;
    for window in ["24h", "7d", "30d", "90d"] {
        let res = app
            .get(&format!("/badge/es/uptime.svg?window={window}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{window}");
        let svg = res.text().await.unwrap();
        assert!(svg.contains(&format!("uptime {window}: 100%")), "{svg}");
    }
    let res = app
        .get("/badge/es/uptime.svg?window=1y")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("24h, 7d, 30d or 90d"), "{body}");
    for path in ["/badge/nobody/status.svg", "/badge/no%20such/uptime.svg"] {
        let res = app.get(path).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.text().await.unwrap().contains(": not found</title>"));
    }
}
