//! Writer throughput on a burst of 100,000 events across 1,000 services, beside
//! the broker's own ceiling measured in the same run: the same burst published
//! and consumed with acks, in the writer's own batches (the same `gather`),
//! with no database work. So the ratio is what the database work costs. Not a
//! test: it prints figures and their ratio (target: the writer at 0.85x the
//! ceiling), for two shapes of burst: `live` (published while consumed) and
//! `backlog` (published first, then drained, as after an outage).
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-writer --bench throughput
//!
//! The machine is shared and noisy, so the two are alternated (`BENCH_ROUNDS`
//! writer runs, each between two ceiling runs) and the median ratio is the
//! result. Where the broker and the database run on this machine, the CPU
//! time each party spent per run is printed too: on two cores the writer's
//! database work comes out of the broker's and the publisher's share.
//!
//! `BENCH_MODE` (`live` or `backlog`) runs one shape only; `BENCH_EVENTS` and
//! `BENCH_SERVICES` change the burst; `BENCH_MAX_BATCH`, `BENCH_PREFETCH` and
//! `BENCH_LINGER_MS` the writer's settings (defaults: the writer's own).

use chrono::{Duration as ChronoDuration, Utc};
use elkservice_core::amqp::{self, AmqpSettings};
use elkservice_core::config::{DatabaseSettings, LogFormat, LogSettings};
use elkservice_core::event::publish_properties;
use elkservice_core::program::Program;
use elkservice_core::{ServiceName, Status, StatusEvent};
use elkservice_testkit::{cpu_seconds, TestDatabase, TestVhost};
use elkservice_writer::consumer::gather;
use elkservice_writer::settings::{Settings, WriterSettings};
use elkservice_writer::Writer;
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

/// CPU seconds used so far by the local broker, the local database server and
/// this process (None where a process is not on this machine).
#[derive(Clone, Copy)]
struct CpuUse([Option<f64>; 3]);

impl CpuUse {
    fn now() -> Self {
        // The server is the process of that name with the most CPU time (the
        // broker's command-line tools run a short-lived beam.smp of their own).
        fn by_name(name: &str) -> Option<f64> {
            std::fs::read_dir("/proc")
                .ok()?
                .flatten()
                .filter_map(|entry| {
                    let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
                    if comm.trim_end() != name {
                        return None;
                    }
                    cpu_seconds(&entry.path().join("stat"))
                })
                .max_by(f64::total_cmp)
        }
        CpuUse([
            by_name("beam.smp"),
            by_name("mariadbd"),
            cpu_seconds("/proc/self/stat".as_ref()),
        ])
    }

    /// "broker 6.6, database 1.9, bench process 2.8" for the time since `self`.
    fn since(self) -> String {
        let now = Self::now();
        ["broker", "database", "bench process"]
            .iter()
            .zip(self.0.iter().zip(now.0))
            .filter_map(|(name, (a, b))| Some(format!("{name} {:.1}", b? - (*a)?)))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
                publish_properties(),
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
    amqp::declare_topology(&conn, &AmqpSettings::with_url(&vhost.url))
        .await
        .unwrap();
    (conn, ch)
}

/// How the burst meets the consumer.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Published while the consumer runs: the whole path, end to end.
    Live,
    /// Published first; the consumer then works through the backlog (as after
    /// an outage). Only the draining is timed.
    Backlog,
}

/// The burst through a consumer that only decodes and acks.
async fn broker_ceiling(mode: Mode, bodies: &[Vec<u8>], settings: &WriterSettings) -> Duration {
    let vhost = TestVhost::create().await;
    let (_pconn, pch) = publisher(&vhost).await;
    if mode == Mode::Backlog {
        publish(&pch, bodies).await;
    }
    let conn = amqp::connect(&vhost.url, "bench-consumer").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(settings.prefetch, BasicQosOptions::default())
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
    // The writer's own batching (the same gather), without the database.
    let (_never, mut running) = tokio::sync::watch::channel(false);
    let drain = async {
        let mut seen = 0;
        while seen < total {
            let batch = gather(&mut consumer, settings, &mut running)
                .await
                .unwrap()
                .unwrap();
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
    // Read before the clock starts, as in writer_run: reading /proc takes time.
    let cpu = CpuUse::now();
    let start = Instant::now();
    match mode {
        Mode::Live => tokio::join!(publish(&pch, bodies), drain).1,
        Mode::Backlog => drain.await,
    }
    let elapsed = start.elapsed();
    println!(
        "  ceiling: {:.2} s; CPU s: {}",
        elapsed.as_secs_f64(),
        cpu.since()
    );
    elapsed
}

/// The burst through the writer; done when every event is counted.
async fn writer_run(
    mode: Mode,
    bodies: &[Vec<u8>],
    services: usize,
    settings_of: &impl Fn(&TestVhost, &TestDatabase) -> Settings,
) -> Duration {
    let vhost = TestVhost::create().await;
    let db = TestDatabase::new();
    let (_pconn, pch) = publisher(&vhost).await;
    if mode == Mode::Backlog {
        publish(&pch, bodies).await;
    }
    let writer = Writer::build(settings_of(&vhost, &db)).unwrap();
    let m = writer.metrics();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(writer.run(shutdown));
    // It is connected once its consumer is registered: from then on it drains.
    while m.broker_connected.get() != 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Counters read in-process: scraping /metrics this often would cost the
    // process CPU that the ceiling run does not pay.
    let total = bodies.len() as u64;
    let done = async {
        while m.applied.get() + m.stale.get() < total {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let cpu = CpuUse::now();
    let start = Instant::now();
    match mode {
        Mode::Live => tokio::join!(publish(&pch, bodies), done).1,
        Mode::Backlog => done.await,
    }
    let elapsed = start.elapsed();
    let batches = m.batch_size.get_sample_count();
    println!(
        "  writer:  {:.2} s; CPU s: {}; {batches} transactions of {:.0} events on average, {:.2} s in them, {} database errors",
        elapsed.as_secs_f64(),
        cpu.since(),
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
    let loaded = Settings::load(None).expect("the writer's settings");
    let defaults = loaded.writer;
    let writer = WriterSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        auto_register: true,
        max_batch: env_usize("BENCH_MAX_BATCH", defaults.max_batch),
        linger_ms: env_usize("BENCH_LINGER_MS", defaults.linger_ms as usize) as u64,
        prefetch: env_usize("BENCH_PREFETCH", defaults.prefetch.into()) as u16,
        // The burst's observations are in the past; nothing goes silent here.
        stale_after_secs: 0,
        ..defaults.clone()
    };
    let settings_of = |vhost: &TestVhost, db: &TestDatabase| Settings {
        writer: writer.clone(),
        selfcheck: loaded.selfcheck.clone(),
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
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let only = std::env::var("BENCH_MODE").unwrap_or_default();
    for (mode, name, title) in [
        (Mode::Live, "live", "live: published while consumed"),
        (
            Mode::Backlog,
            "backlog",
            "backlog: published first, then drained",
        ),
    ] {
        if !only.is_empty() && only != name {
            continue;
        }
        println!("{title}");
        let ceiling_run = || broker_ceiling(mode, &bodies, &writer);
        // The machine is shared and noisy: alternate ceiling and writer runs,
        // rate each writer run against the ceilings on either side of it, and
        // report the median of those ratios.
        let mut last_ceiling = rate(ceiling_run().await);
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            let w = rate(writer_run(mode, &bodies, services, &settings_of).await);
            let c = rate(ceiling_run().await);
            let ceiling = (last_ceiling + c) / 2.0;
            last_ceiling = c;
            ratios.push(w / ceiling);
            println!(
                "round {round}: writer {w:>6.0} events/s, broker ceiling {ceiling:>6.0} events/s (no database), ratio {:.2}",
                w / ceiling
            );
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{title}: median ratio writer / ceiling {:.2} over {rounds} rounds (lowest {:.2}, highest {:.2}; target >= 0.85)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}
