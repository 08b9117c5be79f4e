//! A database and a vhost of the test's own, writers started in-process or as
//! processes, a confirming publisher, and readers of the resulting state.

use chrono::{DateTime, Duration, TimeZone, Utc};
use elkservice_core::amqp::{self, AmqpSettings, QueueType};
use elkservice_core::config::{DatabaseSettings, LogFormat, LogSettings};
use elkservice_core::program::Program;
use elkservice_core::{ServiceName, Status, StatusEvent};
use elkservice_testkit::{eventually, TestDatabase, TestVhost};
use elkservice_writer::apply::Counting;
use elkservice_writer::settings::{SelfcheckSettings, Settings, WriterSettings};
use elkservice_writer::Writer;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use sqlx::{Connection as _, Row};
use std::collections::HashMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Harness {
    pub queue_type: QueueType,
    pub db: TestDatabase,
    pub vhost: TestVhost,
    publisher: Channel,
    _conn: Connection,
}

/// What a row holds, as the tests compare it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowState {
    pub status: String,
    pub running: bool,
    pub failed_count: u32,
    pub detail: Option<String>,
    pub observed_ns: Option<i64>,
}

pub struct RunningWriter {
    stop: watch::Sender<bool>,
    handle: JoinHandle<anyhow::Result<()>>,
    pub port: u16,
}

impl RunningWriter {
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        self.handle.await.unwrap().unwrap();
    }

    /// The value of a metric line (`name` or `name{labels}`), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        metric(self.port, name).await
    }
}

pub async fn metric(port: u16, name: &str) -> f64 {
    elkservice_testkit::scrape(port, &format!("elkservice_writer_{name}")).await
}

/// An event observed `ms` milliseconds after a fixed instant in the recent past.
pub fn event(name: &str, status: Status, ms: i64) -> StatusEvent {
    let base: DateTime<Utc> = Utc.timestamp_opt(Utc::now().timestamp() - 3600, 0).unwrap();
    let mut e = StatusEvent::new(
        ServiceName::parse(name).unwrap(),
        status,
        status != Status::Down,
        "test-watcher",
    );
    e.observed_at = base + Duration::milliseconds(ms);
    e.detail = Some(format!("{status} at {ms}"));
    e
}

/// The newest event of each service: what the rows must end up holding.
pub fn newest(events: &[StatusEvent]) -> HashMap<String, &StatusEvent> {
    let mut map: HashMap<String, &StatusEvent> = HashMap::new();
    for e in events {
        let slot = map.entry(e.service.to_string()).or_insert(e);
        if e.observed_at > slot.observed_at {
            *slot = e;
        }
    }
    map
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_queues(QueueType::Classic).await
    }

    /// A harness whose queues are of `queue_type`.
    pub async fn with_queues(queue_type: QueueType) -> Self {
        let db = TestDatabase::new();
        let vhost = TestVhost::create().await;
        let conn = amqp::connect(&vhost.url, "elkservice-test-publisher")
            .await
            .unwrap();
        let publisher = conn.create_channel().await.unwrap();
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        // The queue must exist before anything is published, or it would be unroutable.
        let amqp = AmqpSettings {
            queue_type,
            ..AmqpSettings::with_url(&vhost.url)
        };
        amqp::declare_topology(&conn, &amqp).await.unwrap();
        Harness {
            queue_type,
            db,
            vhost,
            publisher,
            _conn: conn,
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            writer: WriterSettings {
                listen: "127.0.0.1:0".parse().unwrap(),
                auto_register: true,
                max_batch: 500,
                linger_ms: 5,
                prefetch: 1000,
                stale_after_secs: 0,
                quorum: elkservice_writer::quorum::Rule::Majority,
                forget_watcher_secs: 0,
            },
            selfcheck: SelfcheckSettings {
                ping_url: String::new(),
                interval_secs: 60,
                deadline_secs: 30,
            },
            amqp: AmqpSettings {
                queue_type: self.queue_type,
                ..AmqpSettings::with_url(&self.vhost.url)
            },
            database: DatabaseSettings {
                url: self.db.url.clone(),
                max_connections: 4,
                acquire_timeout_secs: 5,
            },
            log: LogSettings {
                format: LogFormat::Json,
            },
        }
    }

    /// Start a writer in this process and wait until it consumes.
    pub async fn start_writer(&self, settings: Settings) -> RunningWriter {
        let writer = Writer::build(settings).unwrap();
        let port = writer.port();
        let (stop, shutdown) = watch::channel(false);
        let handle = tokio::spawn(writer.run(shutdown));
        eventually(30, "the writer to consume", || async {
            (metric(port, "broker_connected").await == 1.0).then_some(())
        })
        .await;
        RunningWriter { stop, handle, port }
    }

    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        let confirm = self
            .publisher
            .basic_publish(
                "elkservice.status".into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                elkservice_core::event::publish_properties(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }

    /// Publish all, then wait for every confirm (pipelined).
    pub async fn publish(&self, events: &[StatusEvent]) {
        elkservice_testkit::publish_events(&self.publisher, events).await;
    }

    /// Messages ready in the writer's queue, as the broker counts them now
    /// (a passive declare; the management API's figures lag).
    pub async fn ready_in_queue(&self) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.publisher
            .queue_declare("elkservice.writer".into(), passive, FieldTable::default())
            .await
            .unwrap()
            .message_count()
    }

    pub async fn rows(&self) -> HashMap<String, RowState> {
        let Ok(mut conn) = sqlx::MySqlConnection::connect(&self.db.url).await else {
            return HashMap::new();
        };
        let Ok(rows) = sqlx::query(
            "SELECT CONVERT(name USING utf8mb4) AS name, status, running, failed_count, detail, observed_ns FROM elkservice",
        )
        .fetch_all(&mut conn)
        .await
        else {
            return HashMap::new();
        };
        rows.into_iter()
            .map(|r| {
                (
                    r.get("name"),
                    RowState {
                        status: r.get("status"),
                        running: r.get("running"),
                        failed_count: r.get("failed_count"),
                        detail: r.get("detail"),
                        observed_ns: r.get("observed_ns"),
                    },
                )
            })
            .collect()
    }

    /// Wait until every service's row holds its newest event; returns the rows.
    pub async fn wait_for_newest(
        &self,
        events: &[StatusEvent],
        seconds: u64,
    ) -> HashMap<String, RowState> {
        let want = newest(events);
        eventually(
            seconds,
            "every row to hold its newest observation",
            || async {
                let rows = self.rows().await;
                let done = want.iter().all(|(name, e)| {
                    rows.get(name).is_some_and(|r| {
                        r.observed_ns == Some(e.observed_ns())
                            && r.status == e.status.as_str()
                            && r.running == e.running
                            && r.detail == e.detail
                    })
                });
                done.then_some(rows)
            },
        )
        .await
    }

    /// `(from, to)` of a service's transitions, oldest first.
    pub async fn history(&self, name: &str) -> Vec<(String, String)> {
        let mut conn = self.db.connect().await;
        sqlx::query_as(
            "SELECT e.from_status, e.status FROM elkservice_event e JOIN elkservice s ON s.id = e.service_id \
             WHERE s.name = ? ORDER BY e.observed_at, e.id",
        )
        .bind(name)
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }

    /// Take every message from the dead-letter queue: `(body, reason header)`.
    pub async fn dead_letters(&self) -> Vec<(Vec<u8>, String)> {
        let mut out = Vec::new();
        while let Some(m) = self
            .publisher
            .basic_get("elkservice.dead".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let reason = m
                .delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get(elkservice_core::event::ERROR_HEADER).cloned())
                .and_then(|v| match v {
                    lapin::types::AMQPValue::LongString(s) => {
                        Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            out.push((m.delivery.data, reason));
        }
        out
    }
}

/// A pool on the test's database, and the counting of a writer whose votes
/// go stale after a minute: what a staleness pass is run with here.
pub async fn staleness_pass(h: &Harness) -> (sqlx::MySqlPool, Counting) {
    let pool = elkservice_core::db::connect_and_migrate(&h.settings().database)
        .await
        .unwrap();
    let counting = Counting {
        stale_after_ns: Some(60_000_000_000),
        ..Counting::default()
    };
    (pool, counting)
}

/// Wait until the writer has counted `n` stale events in all.
pub async fn eventually_stale(w: &RunningWriter, n: u64) {
    eventually(10, "the writer to take the events as stale", || async {
        (w.metric("events_stale_total").await >= n as f64).then_some(())
    })
    .await;
}
