//! Writer throughput on a burst of 100,000 events across 1,000 services, beside
//! the broker's own ceiling measured in the same run: the same burst published
//! and consumed with acks by a consumer that does no database work. Not a test:
//! it prints figures and their ratio (target: the writer at 0.9x the ceiling).
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-writer --bench throughput
//!
//! `BENCH_EVENTS` and `BENCH_SERVICES` change the burst; `BENCH_MAX_BATCH` and
//! `BENCH_PREFETCH`, `BENCH_LINGER_MS` the writer's settings (defaults: the writer's own).

use chrono::{Duration as ChronoDuration, Utc};
use elkservice_core::amqp::{self, AmqpSettings};
use elkservice_core::config::{DatabaseSettings, LogFormat, LogSettings};
use elkservice_core::{ServiceName, Status, StatusEvent};
use elkservice_testkit::{TestDatabase, TestVhost};
use elkservice_writer::consumer::event_properties;
use elkservice_writer::settings::{Settings, WriterSettings};
use elkservice_writer::Writer;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::Channel;
use sqlx::Connection;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn burst(events: usize, services: usize) -> Vec<Vec<u8>> {
    let names: Vec<ServiceName> = (0..services)
        .map(|s| ServiceName::parse(&format!("bench-{s:04}")).unwrap())
        .collect();
    let cycle = [
        Status::Normal,
        Status::Down,
        Status::Degraded,
        Status::Starting,
    ];
    let start = Utc::now() - ChronoDuration::hours(1);
    (0..events)
        .map(|i| {
            let (service, round) = (i % services, i / services);
            let mut e = StatusEvent::new(
                names[service].clone(),
                cycle[(service + round) % 4],
                true,
                "bench",
            );
            e.observed_at = start + ChronoDuration::microseconds(i as i64);
            e.encode()
        })
        .collect()
}

async fn publish(channel: &Channel, bodies: &[Vec<u8>]) {
    for (i, body) in bodies.iter().enumerate() {
        let key = format!("status.bench-{:04}", i % 1000);
        channel
            .basic_publish(
                "elkservice.status".into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                event_properties(),
            )
            .await
            .unwrap();
    }
    channel.wait_for_confirms().await.unwrap();
}

async fn publisher(vhost: &TestVhost) -> (lapin::Connection, Channel) {
    let conn = amqp::connect(&vhost.url, "bench-publisher").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    amqp::declare_topology(&ch, &AmqpSettings::with_url(&vhost.url))
        .await
        .unwrap();
    (conn, ch)
}

/// Publish the burst while a consumer that only decodes and acks drains it.
async fn broker_ceiling(bodies: &[Vec<u8>], prefetch: u16, max_batch: usize) -> Duration {
    let vhost = TestVhost::create().await;
    let (_pconn, pch) = publisher(&vhost).await;
    let conn = amqp::connect(&vhost.url, "bench-consumer").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            "elkservice.writer".into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let total = bodies.len();
    let start = Instant::now();
    let drain = async {
        let mut seen = 0;
        while seen < total {
            // The writer's batching, without the database.
            let mut batch = vec![consumer.next().await.unwrap().unwrap()];
            while batch.len() < max_batch {
                match consumer.next().now_or_never() {
                    Some(Some(d)) => batch.push(d.unwrap()),
                    _ => break,
                }
            }
            for d in &batch {
                StatusEvent::decode(&d.data).unwrap();
            }
            let last = batch.last().unwrap().delivery_tag;
            ch.basic_ack(last, BasicAckOptions { multiple: true })
                .await
                .unwrap();
            seen += batch.len();
        }
    };
    tokio::join!(publish(&pch, bodies), drain);
    start.elapsed()
}

/// Publish the burst while the writer applies it; done when every event is counted.
async fn writer_run(
    bodies: &[Vec<u8>],
    services: usize,
    settings_of: impl Fn(&TestVhost, &TestDatabase) -> Settings,
) -> Duration {
    let vhost = TestVhost::create().await;
    let db = TestDatabase::new();
    let (_pconn, pch) = publisher(&vhost).await;
    let writer = Writer::build(settings_of(&vhost, &db)).unwrap();
    let m = writer.metrics();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(writer.run(shutdown));
    while m.broker_connected.get() != 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Counters read in-process: scraping /metrics this often would cost the
    // process CPU that the ceiling run does not pay.
    let total = bodies.len() as u64;
    let done = async {
        while m.applied.get() + m.stale.get() < total {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let start = Instant::now();
    tokio::join!(publish(&pch, bodies), done);
    let elapsed = start.elapsed();
    let batches = m.batch_size.get_sample_count();
    println!(
        "writer: {batches} transactions, {:.0} events each on average, {:.2} s in transactions, {} database errors",
        m.batch_size.get_sample_sum() / batches as f64,
        m.commit_seconds.get_sample_sum(),
        m.db_errors.get()
    );
    stop.send(true).unwrap();
    handle.await.unwrap().unwrap();

    let mut conn = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM elkservice")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows as usize, services, "every service has its row");
    elapsed
}

#[tokio::main]
async fn main() {
    let events = env_usize("BENCH_EVENTS", 100_000);
    let services = env_usize("BENCH_SERVICES", 1_000);
    let bodies = burst(events, services);
    let writer = WriterSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        auto_register: true,
        max_batch: env_usize("BENCH_MAX_BATCH", 500),
        linger_ms: env_usize("BENCH_LINGER_MS", 5) as u64,
        prefetch: env_usize("BENCH_PREFETCH", 1000) as u16,
    };
    let settings_of = |vhost: &TestVhost, db: &TestDatabase| Settings {
        writer: writer.clone(),
        amqp: AmqpSettings::with_url(&vhost.url),
        database: DatabaseSettings {
            url: db.url.clone(),
            max_connections: 4,
            acquire_timeout_secs: 5,
        },
        log: LogSettings {
            format: LogFormat::Json,
        },
    };
    println!(
        "burst: {events} events across {services} services (prefetch {}, batches up to {}, linger {} ms)",
        writer.prefetch, writer.max_batch, writer.linger_ms
    );
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    // Ceiling, writer, ceiling again: the machine is shared, so bracket the writer.
    let c1 = broker_ceiling(&bodies, writer.prefetch, writer.max_batch).await;
    let w = writer_run(&bodies, services, settings_of).await;
    let c2 = broker_ceiling(&bodies, writer.prefetch, writer.max_batch).await;
    let ceiling = (rate(c1) + rate(c2)) / 2.0;
    println!("broker ceiling (publish + consume + ack, no database): {:>8.0} events/s  ({:.2} s, {:.2} s)", ceiling, c1.as_secs_f64(), c2.as_secs_f64());
    println!(
        "writer (publish + apply in MySQL + ack):               {:>8.0} events/s  ({:.2} s)",
        rate(w),
        w.as_secs_f64()
    );
    println!(
        "ratio writer / ceiling: {:.2}  (target >= 0.90)",
        rate(w) / ceiling
    );
}
