//! Test support shared by the programs' integration tests: each test gets a
//! database and a RabbitMQ vhost of its own on the real servers, removed when
//! the guard is dropped (also when the test panics), so tests run in parallel
//! and leave nothing behind.
//!
//! `DATABASE_URL` and `AMQP_URL` name the servers (as `scripts/services`
//! prints them); `ELK_TEST_RABBITMQ_API` the management API. Also: the
//! container engines ([`Engine`]), test certificates ([`TestPki`]) and a
//! webhook receiver ([`Receiver`]).

pub mod bench;
mod broker;
#[cfg(feature = "db")]
mod db;
mod process;

pub use bench::cpu_seconds;
pub use broker::*;
#[cfg(feature = "db")]
pub use db::*;
pub use process::*;

use std::future::Future;

/// Run `f` to completion on a runtime of its own, on a thread of its own: usable
/// from `Drop`, inside or outside a test's runtime, and during a panic.
fn block_on_thread<F: Future<Output = ()> + Send + 'static>(f: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f)
    })
    .join()
    .ok();
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// 12 hex digits of a name made by [`unique`]: short enough for a label key or
/// a MySQL user name, and as unique as the test's database or vhost.
fn short_id(name: &str) -> &str {
    let hex = name.rsplit('_').next().unwrap_or(name);
    &hex[..hex.len().min(12)]
}

/// Poll `check` until it returns `Some`, or panic with `what` after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {seconds} s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The JSON body of a GET; None when there is no such answer (yet), for
/// [`eventually`].
pub async fn get_json(client: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    client.get(url).send().await.ok()?.json().await.ok()
}

/// Wait until the notifier whose ops listener is on `port` is the one that
/// delivers (it holds the lock).
pub async fn wait_delivering(port: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    eventually(60, "a notifier to deliver", || async {
        let v = get_json(&client, &url).await?;
        (v["role"] == "delivering").then_some(())
    })
    .await;
}

/// The value of one metric line (`name` or `name{labels}`) at a program's
/// `/metrics` on `port`; 0 when it cannot be read or is absent.
pub async fn scrape(port: u16, metric: &str) -> f64 {
    let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
        return 0.0;
    };
    let prefix = format!("{metric} ");
    res.text()
        .await
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

mod engine;
mod pki;
mod receiver;

pub use engine::{podman, Container, Engine, IMAGE};
pub use pki::TestPki;
pub use receiver::{Got, Receiver};
