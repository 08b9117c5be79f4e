//! Watcher figures against a real engine and broker. Not a test: it prints.
//!
//! 1. Latency from killing a labelled container (through the engine's API) to
//!    the watcher's event arriving at a consumer bound to the exchange (so after
//!    the broker confirmed it), p50 and p99 over `BENCH_TRIALS` (100) trials,
//!    with the event stream, beside the same with polling alone (every 1 s).
//! 2. The watcher process's CPU and RSS while it watches `BENCH_IDLE` (200) idle
//!    containers for `BENCH_IDLE_SECS` (20) seconds.
//!
//! Against Podman (`DOCKER_HOST`), or the Docker Engine with `BENCH_ENGINE=docker`:
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-watcher --bench watcher

use bollard::Docker;
use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{LogFormat, LogSettings};
use elkservice_core::program::Program;
use elkservice_core::{Status, StatusEvent};
use elkservice_testkit::bench::env_num;
use elkservice_testkit::{consume_events, Engine, TestVhost};
use elkservice_watcher::settings::{DockerSettings, Settings, WatcherSettings};
use elkservice_watcher::Watcher;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

fn engine() -> Engine {
    match std::env::var("BENCH_ENGINE").as_deref() {
        Ok("docker") => Engine::Docker,
        _ => Engine::Podman,
    }
}

fn docker_host() -> String {
    engine().host()
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<StatusEvent>, service: &str, status: Status) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if e.service.as_str() == service && e.status == status => return,
            Ok(Some(_)) => {}
            _ => panic!("no {status} event for {service} within 30 s"),
        }
    }
}

fn settings(vhost: &TestVhost, label: &str, events: bool, poll: f64) -> Settings {
    Settings {
        watcher: WatcherSettings {
            id: "bench".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            label: label.into(),
            events,
            poll_interval_secs: poll,
            idle_watchdog_secs: 60,
            resync_interval_secs: 300,
            heartbeat_secs: 30,
            unhealthy_is_down: false,
        },
        docker: DockerSettings {
            host: docker_host(),
        },
        amqp: AmqpSettings::with_url(&vhost.url),
        log: LogSettings {
            format: LogFormat::Json,
        },
        services: vec![],
    }
}

/// Kill-to-delivery latencies, sorted.
async fn latencies(
    vhost: &TestVhost,
    label: &str,
    events: bool,
    poll: f64,
    trials: usize,
) -> Vec<Duration> {
    let (conn, mut rx) = consume_events(vhost).await;
    let watcher = Watcher::build(settings(vhost, label, events, poll)).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let handle = tokio::spawn(watcher.run(shutdown));
    let docker = Docker::connect_with_host(&docker_host()).unwrap();
    let mut out = Vec::with_capacity(trials);
    for i in 0..trials {
        let service = format!("lat-{}-{i}", if events { "ev" } else { "poll" });
        let container = engine().run_labelled(label, &service, &[], &["/bin/sleep", "1000"]);
        wait_for(&mut rx, &service, Status::Normal).await;
        // Not right after the poll that reported it: kill at a random point of the cycle.
        tokio::time::sleep(Duration::from_secs_f64(rand::random::<f64>())).await;
        let start = Instant::now();
        docker
            .kill_container(
                &container.name,
                None::<bollard::query_parameters::KillContainerOptions>,
            )
            .await
            .unwrap();
        wait_for(&mut rx, &service, Status::Down).await;
        out.push(start.elapsed());
    }
    stop.send(true).unwrap();
    let _ = handle.await;
    let _ = conn.close(200, "done".into()).await;
    out.sort();
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let trials: usize = env_num("BENCH_TRIALS", 100);
    let idle: usize = env_num("BENCH_IDLE", 200);
    let idle_secs: u64 = env_num("BENCH_IDLE_SECS", 20);
    let vhost = TestVhost::create().await;
    let label = format!("elkbench.{}", vhost.short_id());

    let ev = latencies(&vhost, &label, true, 3600.0, trials).await;
    let poll = latencies(&vhost, &label, false, 1.0, trials).await;
    println!("kill → event at a consumer, {trials} trials:");
    println!(
        "  event stream:         p50 {:>7.1} ms   p99 {:>7.1} ms",
        percentile(&ev, 0.5),
        percentile(&ev, 0.99)
    );
    println!(
        "  polling alone (1 s):  p50 {:>7.1} ms   p99 {:>7.1} ms",
        percentile(&poll, 0.5),
        percentile(&poll, 0.99)
    );

    // Idle containers, watched by the watcher as a process of its own.
    let _containers: Vec<_> = (0..idle)
        .map(|i| {
            engine().run_labelled(&label, &format!("idle-{i}"), &[], &["/bin/sleep", "100000"])
        })
        .collect();
    let (_conn, mut rx) = consume_events(&vhost).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_elkservice-watcher"))
        .env("DOCKER_HOST", docker_host())
        .env("AMQP_URL", &vhost.url)
        .env("ELK_WATCHER__LABEL", &label)
        .env("ELK_WATCHER__LISTEN", "127.0.0.1:0")
        .env("ELK_LOG__FORMAT", "json")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < idle {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(e)) if e.service.as_str().starts_with("idle-") => {
                seen.insert(e.service.to_string());
            }
            Ok(Some(_)) => {}
            _ => panic!("only {} of {idle} idle containers reported", seen.len()),
        }
    }
    let startup = started.elapsed();
    let pid = child.id();
    let ticks0 = proc_cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await; // the measurement window
    let cpu = (proc_cpu_ticks(pid) - ticks0) as f64 / 100.0 / idle_secs as f64 * 100.0;
    let rss = proc_rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    println!("watching {idle} idle containers: all reported {:.1} s after start; then CPU {cpu:.2}% of one core, RSS {:.1} MiB ({idle_secs} s window, default 30 s poll)",
        startup.as_secs_f64(), rss as f64 / 1024.0);
}
