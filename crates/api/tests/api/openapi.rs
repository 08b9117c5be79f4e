use crate::helpers::{spawn_app, KEY};
use serde_json::Value;

const COMMITTED: &str = include_str!("../../../../openapi/openapi.json");

#[tokio::test]
async fn the_served_spec_matches_the_committed_one() {
    let app = spawn_app().await;
    let served = app.get_json("/api-docs/openapi.json", 200).await;
    let committed: Value = serde_json::from_str(COMMITTED).expect("openapi/openapi.json is JSON");
    assert!(
        served == committed,
        "openapi/openapi.json is out of date; regenerate it with:\n  \
         cargo run -q -p elkservice-api -- openapi > openapi/openapi.json"
    );
}

#[tokio::test]
async fn the_spec_covers_every_route_and_the_auth_scheme() {
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    for prefix in ["", "/v1"] {
        let p = &spec["paths"][format!("{prefix}/elkservice")];
        assert!(
            p["get"].is_object() && p["post"].is_object(),
            "{prefix}/elkservice"
        );
        let p = &spec["paths"][format!("{prefix}/elkservice/{{Id}}")];
        assert!(p["get"].is_object() && p["put"].is_object() && p["delete"].is_object());
        assert!(spec["paths"][format!("{prefix}/elkservice/{{Id}}/events")]["get"].is_object());
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert!(spec["paths"][path]["get"].is_object(), "{path}");
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    assert_eq!(
        spec["paths"]["/elkservice"]["post"]["security"][0]["api_key"],
        serde_json::json!([])
    );
    for schema in [
        "Service",
        "Status",
        "NewService",
        "ServiceUpdate",
        "ServiceEvent",
        "ErrorBody",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
}

/// OpenAPI requires every operationId to be unique; client generators name
/// their methods after them.
#[test]
fn every_operation_has_its_own_id() {
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("{id} names both {other} and {method} {path}");
            }
        }
    }
    assert!(seen.contains_key("listServices") && seen.contains_key("v1ListServices"));
    assert!(seen.contains_key("listSilences") && seen.contains_key("getStatusOverview"));
}

/// What a client author outside the project meets: the served document passes
/// a standard OpenAPI 3.1 validator, and a client generated from it (Python's
/// openapi-python-client) creates, reads, lists, replaces with If-Match and
/// deletes against a live api. scripts/openapi-client installs both tools.
#[tokio::test]
async fn a_client_generated_from_the_served_spec_works() {
    let app = spawn_app().await;
    let served = app
        .get("/api-docs/openapi.json")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spec = std::env::temp_dir().join(format!("elkservice-openapi-{}.json", std::process::id()));
    std::fs::write(&spec, served).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/openapi-client");
    let run = tokio::process::Command::new(script)
        .arg(&spec)
        .arg(&app.address)
        .arg(KEY)
        .output()
        .await
        .expect("scripts/openapi-client runs");
    std::fs::remove_file(&spec).ok();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(": OK"), "the validator's verdict: {stdout}");
    assert!(
        stdout.contains("ok: replace with a stale If-Match is refused with 412")
            && stdout.contains("ok: the deleted row is gone"),
        "{stdout}"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_without_a_cdn() {
    let app = spawn_app().await;
    let res = app.get("/swagger-ui/").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "no external assets: {html}"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let res = app
            .get(&format!("/swagger-ui/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{asset}");
        assert!(res.bytes().await.unwrap().len() > 100, "{asset}");
    }
    let init = app
        .get("/swagger-ui/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api-docs/openapi.json"), "{init}");
}
