//! Test support shared by the programs' integration tests: each test gets a
//! database and a RabbitMQ vhost of its own on the real servers, removed when
//! the guard is dropped (also when the test panics), so tests run in parallel
//! and leave nothing behind.
//!
//! `DATABASE_URL` and `AMQP_URL` name the servers (as `scripts/services`
//! prints them); `ELK_TEST_RABBITMQ_API` the management API. Also: the
//! container engines ([`Engine`]), test certificates ([`TestPki`]) and a
//! webhook receiver ([`Receiver`]).

use sqlx::{Connection, MySqlConnection};
use std::future::Future;

/// CPU time, user and system, in seconds, from a `stat` file of /proc (a
/// process's or a thread's); None if it cannot be read. For benches that
/// show what each party spent.
pub fn cpu_seconds(stat: &std::path::Path) -> Option<f64> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // The fields after the command's closing parenthesis: utime and stime
    // are the 12th and 13th of them, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The server part of DATABASE_URL (default: local MariaDB as root), without a database.
pub fn mysql_server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/elkservice".into());
    let (scheme, rest) = url.split_once("://").expect("DATABASE_URL is scheme://...");
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

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

/// A command for a program under test, with none of the caller's `ELK_*`
/// settings, so that only what the test sets reaches the program.
pub fn program(path: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(path);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ELK_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// Send SIGTERM to a child process.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// SIGTERM `child` and return its exit code; it must exit within `within`.
pub async fn terminate(mut child: std::process::Child, within: std::time::Duration) -> Option<i32> {
    sigterm(&child);
    tokio::time::timeout(within, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .unwrap_or_else(|_| panic!("no exit within {within:?} of SIGTERM"))
        .expect("the waiting thread")
        .expect("wait on the child")
        .code()
}

/// A database name that no one uses; dropped with the guard.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// 12 hex digits unique to this database.
    pub fn short_id(&self) -> &str {
        short_id(&self.name)
    }

    /// A name and URL only: the program under test creates the database.
    pub fn new() -> Self {
        let name = unique("elktest");
        let url = format!("{}/{name}", mysql_server_url());
        TestDatabase { name, url }
    }

    pub async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                "cannot connect to {}: {e}\nStart the services with: eval \"$(scripts/services)\"",
                self.url
            )
            })
    }
}

impl TestDatabase {
    /// End every connection open on this database, as a database restart or
    /// failover would; returns how many there were.
    pub async fn kill_connections(&self) -> usize {
        let mut admin = MySqlConnection::connect(&mysql_server_url())
            .await
            .expect("the database server");
        kill_connections_to(&mut admin, &self.name)
            .await
            .expect("the process list")
    }
}

/// Kill the connections (other than `admin`) open on the database `name`;
/// returns how many there were.
async fn kill_connections_to(
    admin: &mut MySqlConnection,
    name: &str,
) -> Result<usize, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
    )
    .bind(name)
    .fetch_all(&mut *admin)
    .await?;
    for id in &ids {
        // One may end by itself meanwhile.
        let _ = sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(&mut *admin)
            .await;
    }
    Ok(ids.len())
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_thread(async move {
            let Ok(mut conn) = MySqlConnection::connect(&mysql_server_url()).await else {
                return;
            };
            // A connection still in a transaction on this database (a pool of
            // the failing test's, whose runtime is busy here) would hold DROP
            // DATABASE on its metadata lock forever: end those first.
            let _ = kill_connections_to(&mut conn, &name).await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .execute(&mut conn)
                .await;
        });
    }
}

/// Runs SQL statements on the server when dropped: cleanup that must happen
/// even when a test fails (dropping a user it created, say).
pub struct SqlOnDrop(pub Vec<String>);

impl Drop for SqlOnDrop {
    fn drop(&mut self) {
        let statements = std::mem::take(&mut self.0);
        block_on_thread(async move {
            if let Ok(mut conn) = MySqlConnection::connect(&mysql_server_url()).await {
                for sql in statements {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            }
        });
    }
}

/// The management API of the RabbitMQ that AMQP_URL names.
pub fn rabbitmq_api() -> String {
    std::env::var("ELK_TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672".into())
}

fn amqp_base() -> (String, String) {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let (scheme, rest) = url.split_once("://").expect("AMQP_URL is amqp://...");
    let authority = rest.split('/').next().unwrap_or(rest);
    let user = authority
        .rsplit_once('@')
        .map(|(cred, _)| cred.split(':').next().unwrap_or("guest").to_owned())
        .unwrap_or_else(|| "guest".into());
    (format!("{scheme}://{authority}"), user)
}

fn management_credentials() -> (String, String) {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let cred = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .map(|(cred, _)| cred.to_owned())
        .unwrap_or_else(|| "guest:guest".into());
    let (user, pass) = cred.split_once(':').unwrap_or((&cred, ""));
    (user.to_owned(), pass.to_owned())
}

/// A RabbitMQ vhost of the test's own; deleted (with everything in it) with the guard.
pub struct TestVhost {
    pub name: String,
    /// An AMQP URL into the vhost.
    pub url: String,
    /// Users made with [`TestVhost::user`], deleted with the vhost.
    users: std::sync::Mutex<Vec<String>>,
}

impl TestVhost {
    /// 12 hex digits unique to this vhost: a label key of the test's own, say.
    pub fn short_id(&self) -> &str {
        short_id(&self.name)
    }

    pub async fn create() -> Self {
        let name = unique("elktest");
        let (base, user) = amqp_base();
        let (muser, mpass) = management_credentials();
        let client = reqwest::Client::new();
        let api = rabbitmq_api();
        let res = client
            .put(format!("{api}/api/vhosts/{name}"))
            .basic_auth(&muser, Some(&mpass))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("RabbitMQ management API at {api} is not reachable: {e}\nStart the services with: eval \"$(scripts/services)\"")
            });
        assert!(
            res.status().is_success(),
            "creating vhost {name}: {}",
            res.status()
        );
        let res = client
            .put(format!("{api}/api/permissions/{name}/{user}"))
            .basic_auth(&muser, Some(&mpass))
            .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "permissions on {name}: {}",
            res.status()
        );
        TestVhost {
            url: format!("{base}/{name}"),
            name,
            users: Default::default(),
        }
    }

    /// What the management API says of a queue (None if it has no such queue).
    pub async fn queue_info(&self, queue: &str) -> Option<serde_json::Value> {
        let (muser, mpass) = management_credentials();
        let res = reqwest::Client::new()
            .get(format!(
                "{}/api/queues/{}/{queue}",
                rabbitmq_api(),
                self.name
            ))
            .basic_auth(&muser, Some(&mpass))
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        res.json().await.ok()
    }

    /// A queue's message counts `(ready, unacknowledged)` from the management API.
    /// The API's counts lag the broker by up to its stats interval: poll them.
    pub async fn queue_counts(&self, queue: &str) -> Option<(u64, u64)> {
        let v = self.queue_info(queue).await?;
        Some((
            v["messages_ready"].as_u64()?,
            v["messages_unacknowledged"].as_u64()?,
        ))
    }
}

/// A broker user of a test's own, with permissions on its vhost only.
pub struct TestUser {
    pub name: String,
    /// An AMQP URL into the vhost as this user.
    pub url: String,
}

impl TestVhost {
    /// A user named after `role` and this vhost, with `[configure, write, read]`
    /// permissions here; deleted with the vhost's guard.
    pub async fn user(&self, role: &str, permissions: [&String; 3]) -> TestUser {
        let (muser, mpass) = management_credentials();
        let name = format!("{role}-{}", self.short_id());
        let password = uuid::Uuid::new_v4().simple().to_string();
        let client = reqwest::Client::new();
        let api = rabbitmq_api();
        let res = client
            .put(format!("{api}/api/users/{name}"))
            .basic_auth(&muser, Some(&mpass))
            .json(&serde_json::json!({"password": password, "tags": ""}))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "creating user {name}: {}",
            res.status()
        );
        let [configure, write, read] = permissions;
        let res = client
            .put(format!("{api}/api/permissions/{}/{name}", self.name))
            .basic_auth(&muser, Some(&mpass))
            .json(&serde_json::json!({"configure": configure, "write": write, "read": read}))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "permissions of {name}: {}",
            res.status()
        );
        self.users.lock().unwrap().push(name.clone());
        let (base, _) = amqp_base();
        let host = base.rsplit_once('@').map_or(base.as_str(), |(_, h)| h);
        let host = host.trim_start_matches("amqp://");
        TestUser {
            url: format!("amqp://{name}:{password}@{host}/{}", self.name),
            name,
        }
    }
}

impl TestVhost {
    /// Close, from the broker's side, every connection to this vhost whose client
    /// calls itself `connection_name`; returns how many were closed. The
    /// management API lists a new connection only after its next stats refresh.
    pub async fn close_connections(&self, connection_name: &str) -> usize {
        let (muser, mpass) = management_credentials();
        let client = reqwest::Client::new();
        let api = rabbitmq_api();
        let Ok(res) = client
            .get(format!("{api}/api/vhosts/{}/connections", self.name))
            .basic_auth(&muser, Some(&mpass))
            .send()
            .await
        else {
            return 0;
        };
        let list: Vec<serde_json::Value> = res.json().await.unwrap_or_default();
        let mut closed = 0;
        for c in list {
            if c["client_properties"]["connection_name"] != connection_name {
                continue;
            }
            let name = c["name"].as_str().unwrap_or_default();
            let encoded: String = name
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let res = client
                .delete(format!("{api}/api/connections/{encoded}"))
                .basic_auth(&muser, Some(&mpass))
                .send()
                .await;
            if res.is_ok_and(|r| r.status().is_success()) {
                closed += 1;
            }
        }
        closed
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let api = rabbitmq_api();
        let mut urls = vec![format!("{api}/api/vhosts/{}", self.name)];
        for user in self.users.lock().unwrap().drain(..) {
            urls.push(format!("{api}/api/users/{user}"));
        }
        block_on_thread(async move {
            let (muser, mpass) = management_credentials();
            let client = reqwest::Client::new();
            for url in urls {
                let _ = client
                    .delete(url)
                    .basic_auth(&muser, Some(&mpass))
                    .send()
                    .await;
            }
        });
    }
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

/// Every status event published to the vhost's exchange from now on, read
/// through an exclusive queue of the caller's own. Keep the connection.
pub async fn consume_events(
    vhost: &TestVhost,
) -> (
    lapin::Connection,
    tokio::sync::mpsc::UnboundedReceiver<elkservice_core::StatusEvent>,
) {
    use futures_util::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    let settings = elkservice_core::amqp::AmqpSettings::with_url(&vhost.url);
    let conn = elkservice_core::amqp::connect(&vhost.url, "test-consumer")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    elkservice_core::amqp::declare_exchange(&ch, &settings)
        .await
        .unwrap();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = ch
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .unwrap();
    let name = queue.name().clone();
    ch.queue_bind(
        name.clone(),
        settings.exchange.as_str().into(),
        "status.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume(
            name,
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let _ = d.acker.ack(BasicAckOptions::default()).await;
            if let Ok(e) = elkservice_core::StatusEvent::decode(&d.data) {
                let _ = tx.send(e);
            }
        }
    });
    (conn, rx)
}

/// Publish `events` to the status exchange as watchers do, on a channel in
/// confirm mode, then wait until the broker has confirmed them all.
pub async fn publish_events(channel: &lapin::Channel, events: &[elkservice_core::StatusEvent]) {
    use lapin::options::BasicPublishOptions;
    for e in events {
        channel
            .basic_publish(
                "elkservice.status".into(),
                e.routing_key().as_str().into(),
                BasicPublishOptions::default(),
                &e.encode(),
                elkservice_core::event::publish_properties(),
            )
            .await
            .unwrap();
    }
    let returned = channel.wait_for_confirms().await.unwrap();
    assert!(
        returned.is_empty(),
        "the broker returned {} events",
        returned.len()
    );
}

/// A free TCP port on the loopback interface, for a program under test to
/// listen on. Chosen below the kernel's ephemeral range: a port the kernel
/// hands out (port 0) is free only until an outgoing connection of any test
/// is given the same one, before the program binds it.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (low.saturating_sub(12000).max(1024), low);
    loop {
        let port = from + (uuid::Uuid::new_v4().as_u128() % u128::from(to - from)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

mod engine;
mod pki;
mod receiver;

pub use engine::{podman, Container, Engine, IMAGE};
pub use pki::TestPki;
pub use receiver::{Got, Receiver};
