//! Server-Sent Events: every change, in order, resumable with `Last-Event-ID`
//! with nothing missed and nothing twice, kept alive by comments.

use crate::helpers::{spawn_app, TestApp};
use serde_json::Value;
use std::time::Duration;

/// A connected event stream and what it has sent so far.
struct Events {
    res: reqwest::Response,
    /// Bytes, not text: a chunk may end inside a character.
    buffer: Vec<u8>,
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
            buffer: Vec::new(),
        }
    }

    /// The next frame, within `seconds`.
    async fn next(&mut self, seconds: u64) -> Frame {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.buffer.drain(..end + 2).collect()).unwrap();
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
            self.buffer.extend_from_slice(&chunk);
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
async fn a_client_that_leaves_is_let_go_at_once_not_at_the_next_heartbeat() {
    let app = spawn_app().await;
    let open = || app.metric("elkservice_api_streams_open".into());
    let mut staying = Events::open(&app, "", None).await;
    let mut leaving = Events::open(&app, "", None).await;
    for events in [&mut staying, &mut leaving] {
        match events.next(10).await {
            Frame::Comment(text) => assert_eq!(text, "connected"),
            other => panic!("expected the greeting, got {other:?}"),
        }
    }
    assert_eq!(open().await, 2.0);
    // The client closes its connection while the feed is quiet: nothing is
    // written to it that could fail, and the heartbeat is 15 s away.
    drop(leaving);
    elkservice_testkit::eventually(5, "the api to let the stream go", || async {
        (open().await == 1.0).then_some(())
    })
    .await;
    // The other stream is untouched.
    app.create("after", "normal").await;
    let (_, event, data) = staying.entry().await;
    assert_eq!(
        (event.as_str(), data["Name"].as_str()),
        ("created", Some("after"))
    );
    assert_eq!(open().await, 1.0);
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

/// A browser that reconnects with the last id of a database since made afresh
/// is told so (the status page then lists again), rather than kept waiting
/// for Seqs that mean other changes.
#[tokio::test]
async fn a_cursor_ahead_of_the_feed_is_410() {
    let app = spawn_app().await;
    app.create("a", "normal").await;
    let res = app
        .get("/elkservice/stream")
        .header("Last-Event-ID", "500")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let mut events = Events::open(&app, "", Some(1)).await;
    app.create("b", "normal").await;
    loop {
        if let Frame::Entry(id, _, data) = events.next(10).await {
            assert_eq!((id, data["Name"].as_str()), (2, Some("b")));
            break;
        }
    }
}

/// A client that stops taking frames while the feed runs on costs the api
/// no more than its socket's buffers, is cut off once it is further behind
/// than the api keeps, and loses nothing: what it got runs without a gap, and
/// resuming from its last id gives exactly the rest.
#[tokio::test]
async fn a_client_that_falls_too_far_behind_is_cut_off_and_resumes_with_nothing_lost() {
    use elkservice_core::store::feed::{self, ChangeKind, NewChange};
    use elkservice_core::store::services;
    use sqlx::Acquire;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let id = app.create("flood", "normal").await["Id"].as_i64().unwrap();
    // A small receive window, and nothing read until the flood is over.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let mut client = socket.connect(address).await.unwrap();
    client
        .write_all(b"GET /elkservice/stream?since=1 HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();

    // The stream is under way (its greeting sent) before the flood begins.
    let mut raw = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    while !String::from_utf8_lossy(&raw).contains(": connected") {
        let n = client.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the connection closed before the greeting");
        raw.extend_from_slice(&buffer[..n]);
    }

    // 3,000 entries of about 4 KiB each (a Detail of 1,024 four-byte
    // characters): more than the broadcast holds, and far more than the
    // sockets can buffer. First fewer than the broadcast holds, so that the
    // stream is busy sending (not waiting for its turn, which would read a
    // gap from the database) when the rest go past.
    let mut conn = app.db.connect().await;
    let mut row = services::fetch(&mut conn, id).await.unwrap().unwrap();
    row.detail = Some("🌊".repeat(1024));
    let entry = NewChange {
        kind: ChangeKind::Updated,
        service_id: id,
        name: row.name.clone(),
        at: row.updated_at,
        from: Some(row.status),
        service: Some(row),
        source: elkservice_core::store::feed::Source::Api,
    };
    for (count, last_seq) in [(1000, 1001), (2000, 3001)] {
        let mut tx = conn.begin().await.unwrap();
        feed::record(&mut tx, &vec![entry.clone(); count])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The api has broadcast them once its last Seq is there.
        let res = app
            .get(&format!(
                "/elkservice/changes?since={}&wait=30",
                last_seq - 1
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-last-seq"], last_seq.to_string().as_str());
    }

    // Now read: the stream ends by itself (the last chunk), after a run of
    // entries from 2 on with no gap, short of the end.
    let read_to_the_end = async {
        while !raw.ends_with(b"\r\n0\r\n\r\n") {
            let n = client.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the connection closed before the stream ended");
            raw.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_to_the_end)
        .await
        .expect("the api ends the stream of a client that fell too far behind");
    let got: Vec<i64> = String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(|line| line.strip_prefix("id: "))
        .map(|id| id.parse().unwrap())
        .collect();
    let last = *got.last().expect("some entries before the cut");
    assert!(last < 3001, "the slow client was not cut off");
    assert_eq!(got, (2..=last).collect::<Vec<_>>());

    let mut events = Events::open(&app, "", Some(last)).await;
    for expected in last + 1..=3001 {
        assert_eq!(events.entry().await.0, expected);
    }
    app.create("after", "normal").await;
    let (id, _, data) = events.entry().await;
    assert_eq!((id, data["Name"].as_str()), (3002, Some("after")));
}
