//! The dead man's switch: the ping goes out only while a selfcheck goes
//! through the broker and a writer into the database.

use crate::harness::Harness;
use elkservice_testkit::eventually;
use elkservice_writer::settings::SelfcheckSettings;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, sleep_until, Instant};

/// A dead man's switch service: an HTTP/1.1 server that answers every
/// request 200 and counts them.
pub struct Pings {
    pub url: String,
    count: Arc<Mutex<usize>>,
}

impl Pings {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ping/elkservice", listener.local_addr().unwrap());
        let count = Arc::new(Mutex::new(0));
        let counted = count.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if head.starts_with(b"GET /ping/elkservice ") {
                        *counted.lock().unwrap() += 1;
                    }
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = stream.write_all(answer).await;
                });
            }
        });
        Pings { url, count }
    }

    pub fn count(&self) -> usize {
        *self.count.lock().unwrap()
    }
}

#[tokio::test]
async fn the_ping_stops_while_no_selfcheck_reaches_the_database_and_comes_back() {
    let h = Harness::new().await;
    let pings = Pings::start().await;
    let mut settings = h.settings();
    settings.selfcheck = SelfcheckSettings {
        ping_url: pings.url.clone(),
        interval_secs: 1,
        deadline_secs: 1,
    };
    let writer = h.start_writer(settings).await;
    eventually(20, "two pings", || async {
        (pings.count() >= 2).then_some(())
    })
    .await;

    // The table the selfchecks arrive in is locked: none can arrive.
    let mut lock = h.db.connect().await;
    sqlx::query("LOCK TABLES elkservice_selfcheck WRITE")
        .execute(&mut lock)
        .await
        .unwrap();
    let locked = Instant::now();
    // The contract: the pings stop within deadline_secs + one interval ...
    sleep_until(locked + Duration::from_millis(2_500)).await;
    let stopped_at = pings.count();
    // ... and stay stopped while the fault lasts.
    sleep(Duration::from_secs(4)).await;
    assert_eq!(
        pings.count(),
        stopped_at,
        "pinged while no selfcheck could reach the database"
    );

    sqlx::query("UNLOCK TABLES")
        .execute(&mut lock)
        .await
        .unwrap();
    eventually(20, "the pings to resume", || async {
        (pings.count() > stopped_at).then_some(())
    })
    .await;
    // A selfcheck is no service: nothing was registered, nothing changed.
    let (rows, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM elkservice), (SELECT COUNT(*) FROM elkservice_event)",
    )
    .fetch_one(&mut lock)
    .await
    .unwrap();
    assert_eq!((rows, events), (0, 0));
    writer.stop().await;
}
