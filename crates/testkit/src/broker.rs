//! A RabbitMQ vhost of each test's own, removed with its guard, and
//! status events consumed from it or published to it.

use crate::{block_on_thread, short_id, unique};

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
