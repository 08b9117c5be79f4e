//! Server-Sent Events: every change, in order, resumable with `Last-Event-ID`
//! with nothing missed and nothing twice, kept alive by comments.

use crate::helpers::{spawn_app, TestApp};
use serde_json::Value;
use std::time::Duration;

/// A connected event stream and what it has sent so far.
struct Events {
    res: reqwest::Response,
    buffer: String,
}

/// One frame: `(id, event, data)` for an entry, or a comment.
#[derive(Debug)]
enum Frame {
    Entry(i64, String, Value),
    Comment(String),
}

impl Events {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<i64>) -> Self {
        let mut req = app.get(&format!("/elkservice/stream{query}"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events {
            res,
            buffer: String::new(),
        }
    }

    /// The next frame, within `seconds`.
    async fn next(&mut self, seconds: u64) -> Frame {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data, mut comment) = (None, None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    } else if let Some(v) = line.strip_prefix(':') {
                        comment = Some(v.trim().to_owned());
                    }
                }
                return match (id, event, data) {
                    (Some(id), Some(event), Some(data)) => Frame::Entry(id, event, data),
                    _ => Frame::Comment(comment.unwrap_or_default()),
                };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(seconds), self.res.chunk())
                .await
                .expect("a frame in time")
                .unwrap()
                .expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next entry, skipping comments.
    async fn entry(&mut self) -> (i64, String, Value) {
        loop {
            if let Frame::Entry(id, event, data) = self.next(10).await {
                return (id, event, data);
            }
        }
    }
}

#[tokio::test]
async fn the_stream_sends_every_change_and_resumes_after_the_last_event_id() {
    let app = spawn_app().await;
    let mut events = Events::open(&app, "?since=0", None).await;
    for name in ["a", "b", "c"] {
        app.create(name, "normal").await;
    }
    let mut last = 0;
    for name in ["a", "b", "c"] {
        let (id, event, data) = events.entry().await;
        assert_eq!((id, event.as_str()), (last + 1, "created"));
        assert_eq!(data["Seq"], id);
        assert_eq!(data["Name"], name);
        assert_eq!(data["Service"]["Status"], "normal");
        last = id;
    }
    drop(events); // the client goes away

    for name in ["d", "e"] {
        app.create(name, "down").await;
    }
    let mut events = Events::open(&app, "", Some(last)).await;
    let missed: Vec<_> = [events.entry().await, events.entry().await]
        .into_iter()
        .map(|(id, _, data)| (id, data["Name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(missed, [(4, "d".to_owned()), (5, "e".to_owned())]);
    // Then live, with nothing sent twice.
    app.create("f", "normal").await;
    let (id, _, data) = events.entry().await;
    assert_eq!((id, data["Name"].as_str()), (6, Some("f")));
}

#[tokio::test]
async fn without_a_cursor_the_stream_starts_from_now_and_keeps_alive() {
    let app = spawn_app().await;
    app.create("old", "normal").await;
    let mut events = Events::open(&app, "", None).await;
    app.create("new", "normal").await;
    let (id, _, data) = events.entry().await;
    assert_eq!((id, data["Name"].as_str()), (2, Some("new")));
    // Quiet now: a comment line within 15 s (plus slack) keeps the connection.
    match events.next(20).await {
        Frame::Comment(text) => assert_eq!(text, "keep-alive"),
        other => panic!("expected a keep-alive comment, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bad_cursor_is_400() {
    let app = spawn_app().await;
    for query in ["?since=x", "?since=-2", "?nope=1"] {
        let res = app
            .get(&format!("/elkservice/stream{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{query}");
    }
    let res = app
        .get("/elkservice/stream")
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
