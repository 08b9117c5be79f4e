//! Beego's GetAll parameters against real rows.

use crate::helpers::{assert_error, spawn_app, TestApp};
use serde_json::{json, Value};

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let list = app.get_json(&format!("/elkservice?{query}"), 200).await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_owned())
        .collect()
}

async fn seeded() -> TestApp {
    let app = spawn_app().await;
    for (name, status, failed, detail) in [
        ("elasticsearch", "normal", 0, Some("green")),
        ("kibana", "degraded", 1, None),
        ("logstash", "down", 3, Some("exit code 137")),
        ("nginx", "normal", 0, Some("100%_up")),
        ("Elastic-backup", "unknown", 2, None),
    ] {
        let res = app
            .post_service(json!({"Name": name, "Status": status, "FailedCount": failed, "Detail": detail, "Running": status != "down"}))
            .await;
        assert_eq!(res.status(), 201);
    }
    app
}

#[tokio::test]
async fn an_empty_list_is_an_empty_array() {
    let app = spawn_app().await;
    let res = app.get("/elkservice").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "0");
    assert_eq!(res.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn limit_defaults_to_ten_and_the_total_counts_every_match() {
    let app = spawn_app().await;
    for i in 0..25 {
        app.create(&format!("svc-{i:02}"), "normal").await;
    }
    let res = app.get("/elkservice").send().await.unwrap();
    assert_eq!(res.headers()["x-total-count"], "25");
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        10
    );
    assert_eq!(names(&app, "limit=0").await.len(), 25);
    assert_eq!(
        names(&app, "limit=5&offset=20").await,
        ["svc-20", "svc-21", "svc-22", "svc-23", "svc-24"]
    );
    assert!(names(&app, "offset=100").await.is_empty());
}

#[tokio::test]
async fn query_filters_with_beego_operators() {
    let app = seeded().await;
    assert_eq!(
        names(&app, "query=Status:normal").await,
        ["elasticsearch", "nginx"]
    );
    assert_eq!(
        names(&app, "query=Name__startswith:elastic").await,
        ["elasticsearch"]
    );
    assert_eq!(
        names(&app, "query=Name__istartswith:elastic").await,
        ["elasticsearch", "Elastic-backup"]
    );
    assert_eq!(
        names(&app, "query=Name__contains:s").await,
        ["elasticsearch", "logstash", "Elastic-backup"]
    );
    assert_eq!(
        names(&app, "query=Name__contains:E").await,
        ["Elastic-backup"],
        "contains is case-sensitive"
    );
    assert_eq!(
        names(&app, "query=Name__icontains:ELASTIC").await,
        ["elasticsearch", "Elastic-backup"]
    );
    assert_eq!(names(&app, "query=Name__endswith:na").await, ["kibana"]);
    assert_eq!(
        names(&app, "query=Status__in:down|degraded").await,
        ["kibana", "logstash"]
    );
    assert_eq!(
        names(&app, "query=FailedCount__gt:1").await,
        ["logstash", "Elastic-backup"]
    );
    assert_eq!(
        names(&app, "query=FailedCount__lte:1,Status:normal").await,
        ["elasticsearch", "nginx"]
    );
    assert_eq!(
        names(&app, "query=Detail__isnull:true").await,
        ["kibana", "Elastic-backup"]
    );
    assert_eq!(names(&app, "query=Running:0").await, ["logstash"]);
    assert_eq!(
        names(&app, "query=name:kibana").await,
        ["kibana"],
        "column names work too"
    );
    // LIKE wildcards in a value are literal characters.
    assert_eq!(names(&app, "query=Detail__contains:%25_").await, ["nginx"]);
    assert_eq!(names(&app, "query=Detail__contains:_").await, ["nginx"]);
    assert!(
        names(&app, "query=Name:ELASTICSEARCH").await.is_empty(),
        "exact is case-sensitive"
    );
    assert_eq!(
        names(&app, "query=Name__iexact:ELASTICSEARCH").await,
        ["elasticsearch"]
    );
    let future = "2999-01-01T00:00:00Z";
    assert!(names(&app, &format!("query=CreatedAt__gt:{future}"))
        .await
        .is_empty());
    assert_eq!(
        names(&app, &format!("query=CreatedAt__lt:{future}"))
            .await
            .len(),
        5
    );

    let res = app
        .get("/elkservice?query=Status:down")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-total-count"], "1");
}

#[tokio::test]
async fn fields_select_keys_in_the_order_given() {
    let app = seeded().await;
    let res = app
        .get("/elkservice?fields=Status,Name&limit=1")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert_eq!(text, r#"[{"Status":"normal","Name":"elasticsearch"}]"#);
}

#[tokio::test]
async fn sortby_and_order_sort_as_beego_does() {
    let app = seeded().await;
    assert_eq!(
        names(&app, "sortby=Name&order=desc").await,
        [
            "nginx",
            "logstash",
            "kibana",
            "elasticsearch",
            "Elastic-backup"
        ]
    );
    assert_eq!(
        names(&app, "sortby=Status,FailedCount&order=desc,asc").await,
        [
            "Elastic-backup",
            "elasticsearch",
            "nginx",
            "logstash",
            "kibana"
        ]
    );
    assert_eq!(
        names(&app, "order=desc").await,
        [
            "Elastic-backup",
            "nginx",
            "logstash",
            "kibana",
            "elasticsearch"
        ],
        "order alone reverses the default Id order"
    );
    assert_eq!(
        names(&app, "sortby=FailedCount").await,
        [
            "elasticsearch",
            "nginx",
            "kibana",
            "Elastic-backup",
            "logstash"
        ],
        "ties are broken by Id"
    );
}

#[tokio::test]
async fn unknown_names_and_bad_values_are_400_not_500() {
    let app = seeded().await;
    for q in [
        "query=Nope:1",
        "query=Name__regex:x",
        "query=Name",
        "query=Id:abc",
        "query=Status:sideways",
        "query=CreatedAt__gt:yesterday",
        "query=FailedCount__contains:1",
        "fields=Id,Password",
        "sortby=Nope",
        "sortby=Name&order=sideways",
        "sortby=Name,Id,Status&order=asc,desc",
        "order=desc,asc",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "offset=-5",
        "colour=blue",
    ] {
        let res = app.get(&format!("/elkservice?{q}")).send().await.unwrap();
        assert_eq!(res.status(), 400, "{q}");
        assert_error(res, 400).await;
    }
}
