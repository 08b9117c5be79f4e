//! The problems' Atom feed, read by a standard feed parser (feed-rs).

use crate::helpers::spawn_app;
use serde_json::json;

async fn set(app: &crate::helpers::TestApp, id: i64, name: &str, status: &str) {
    let res = app
        .put_service(
            id,
            json!({"Name": name, "Status": status, "Running": status != "down", "FailedCount": 0,
                   "Detail": format!("set to {status}")}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_feed_reader_gets_each_problem_and_its_end_once_newest_first() {
    let app = spawn_app().await;
    let es = app.create("es", "normal").await["Id"].as_i64().unwrap();
    let kibana = app.create("kibana", "normal").await["Id"].as_i64().unwrap();
    set(&app, es, "es", "down").await;
    set(&app, kibana, "kibana", "degraded").await;
    set(&app, es, "es", "normal").await;
    // Not a problem, not in the feed.
    set(&app, kibana, "kibana", "starting").await;

    let read = || async {
        let res = app.get("/status/feed.atom").send().await.unwrap();
        if res.status() != 200 {
            panic!("{}: {}", res.status(), res.text().await.unwrap());
        }
        assert_eq!(
            res.headers()["content-type"],
            "application/atom+xml; charset=utf-8"
        );
        let body = res.bytes().await.unwrap();
        feed_rs::parser::parse(&body[..]).expect("a feed a standard parser reads")
    };
    let feed = read().await;
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.title.unwrap().content, "elkservice: problems");
    let titles: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.title.as_ref().unwrap().content.clone())
        .collect();
    assert_eq!(
        titles,
        [
            "kibana is starting again after being degraded",
            "es is normal again after being down",
            "kibana is degraded",
            "es is down",
        ]
    );
    assert_eq!(
        feed.entries[3]
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .as_deref(),
        Some("set to down")
    );
    assert!(feed.entries[0].links[0].href.ends_with("/status/?q=kibana"));
    // The same ids when read again: a reader shows nothing twice.
    let ids: Vec<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
    let again: Vec<String> = read().await.entries.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, again);
    assert!(ids
        .iter()
        .all(|id| id.starts_with("urn:elkservice:transition:")));
}
