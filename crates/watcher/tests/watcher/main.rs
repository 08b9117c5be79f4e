//! The watcher against a real Podman API socket and a real RabbitMQ: each test
//! watches containers under a label key of its own and reads what is published
//! from a queue in a vhost of its own.

mod config;
mod probes;

use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{LogFormat, LogSettings};
use elkservice_core::StatusEvent;
use elkservice_testkit::{
    consume_events, eventually, podman, run_labelled, Container, TestVhost, IMAGE,
};
use elkservice_watcher::settings::{DockerSettings, Settings, WatcherSettings};
use elkservice_watcher::Watcher;
use std::process::Command;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///run/elk-podman.sock".into())
}

struct Harness {
    vhost: TestVhost,
    label: String,
    events: mpsc::UnboundedReceiver<StatusEvent>,
    _conn: lapin::Connection,
}

impl Harness {
    async fn new() -> Self {
        let vhost = TestVhost::create().await;
        let (conn, events) = consume_events(&vhost).await;
        let label = format!("elktest.{}", vhost.short_id());
        Harness {
            vhost,
            label,
            events,
            _conn: conn,
        }
    }

    fn settings(&self, docker_host: String) -> Settings {
        Settings {
            watcher: WatcherSettings {
                id: "test-watcher".into(),
                listen: "127.0.0.1:0".parse().unwrap(),
                label: self.label.clone(),
                // Longer than any test: what arrives comes through the event stream,
                // so a broken stream fails the tests instead of waiting for a poll.
                events: true,
                poll_interval_secs: 3600.0,
                idle_watchdog_secs: 60,
                resync_interval_secs: 300,
                heartbeat_secs: 30,
                unhealthy_is_down: false,
            },
            docker: DockerSettings { host: docker_host },
            amqp: AmqpSettings::with_url(&self.vhost.url),
            log: LogSettings {
                format: LogFormat::Json,
            },
            services: vec![],
        }
    }

    fn start(&self, settings: Settings) -> watch::Sender<bool> {
        let watcher = Watcher::build(settings).unwrap();
        let (stop, shutdown) = watch::channel(false);
        tokio::spawn(watcher.run(shutdown));
        stop
    }

    /// A labelled container running `cmd`, plus any extra `podman run` options.
    fn run(&self, service: &str, extra: &[&str], cmd: &[&str]) -> Container {
        run_labelled(&self.label, service, extra, cmd)
    }

    /// Wait for an event about `service` that satisfies `check`.
    async fn expect(
        &mut self,
        service: &str,
        what: &str,
        check: impl Fn(&StatusEvent) -> bool,
    ) -> StatusEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if e.service.as_str() == service && check(&e) => return e,
                Ok(Some(e)) => seen.push(format!("{} {} {:?}", e.service, e.status, e.detail)),
                _ => panic!("no event for {service} with {what} within 30 s; saw {seen:?}"),
            }
        }
    }
}

use elkservice_core::Status::{Degraded, Down, Normal, Starting, Unknown};

#[tokio::test]
async fn a_labelled_container_is_followed_through_its_life() {
    let mut h = Harness::new().await;
    let _stop = h.start(h.settings(docker_host()));
    let c = h.run("web", &[], &["/bin/sleep", "1000"]);
    let e = h.expect("web", "normal", |e| e.status == Normal).await;
    assert!(e.running);
    assert_eq!(e.watcher, "test-watcher");

    podman(&["kill", &c.0]);
    let e = h.expect("web", "down", |e| e.status == Down).await;
    assert!(!e.running);
    assert!(
        e.detail
            .as_deref()
            .unwrap_or_default()
            .contains("exit code 137"),
        "{:?}",
        e.detail
    );

    podman(&["start", &c.0]);
    h.expect("web", "normal again", |e| e.status == Normal && e.running)
        .await;

    // sleep ignores SIGTERM as PID 1, so stop ends in SIGKILL after the timeout.
    podman(&["stop", "-t", "1", &c.0]);
    h.expect("web", "down once stopped", |e| {
        e.status == Down && !e.running
    })
    .await;

    podman(&["restart", "-t", "0", &c.0]);
    h.expect("web", "normal after a restart", |e| {
        e.status == Normal && e.running
    })
    .await;

    podman(&["rm", "-f", "-t", "0", &c.0]);
    let e = h
        .expect("web", "down once removed", |e| e.status == Down)
        .await;
    assert_eq!(e.detail.as_deref(), Some("container removed"));
}

#[tokio::test]
async fn health_checks_drive_starting_normal_and_degraded() {
    let mut h = Harness::new().await;
    let _stop = h.start(h.settings(docker_host()));
    let c = h.run(
        "es",
        &[
            "--health-cmd",
            "cat /tmp/ok",
            "--health-retries",
            "1",
            "--health-interval",
            "1h",
        ],
        &["/bin/sh", "-c", "echo ok > /tmp/ok; exec /bin/sleep 1000"],
    );
    h.expect("es", "starting", |e| e.status == Starting).await;
    podman(&["healthcheck", "run", &c.0]);
    h.expect("es", "normal once healthy", |e| e.status == Normal)
        .await;
    podman(&["exec", &c.0, "/bin/busybox", "rm", "/tmp/ok"]);
    let _ = Command::new("podman")
        .args(["healthcheck", "run", &c.0])
        .output(); // exits 1: unhealthy
    let e = h
        .expect("es", "degraded once unhealthy", |e| e.status == Degraded)
        .await;
    assert!(e.running);
}

#[tokio::test]
async fn when_the_engine_goes_away_services_are_unknown_not_down() {
    let mut h = Harness::new().await;
    // An engine socket of this test's own, which it can take away.
    let sock = format!("/tmp/{}.sock", h.label);
    let mut service = Command::new("podman")
        .args(["system", "service", "--time=0", &format!("unix://{sock}")])
        .spawn()
        .unwrap();
    eventually(30, "the private engine socket", || async {
        std::path::Path::new(&sock).exists().then_some(())
    })
    .await;
    let _stop = h.start(h.settings(format!("unix://{sock}")));
    let _c = h.run("kibana", &[], &["/bin/sleep", "1000"]);
    h.expect("kibana", "normal", |e| e.status == Normal).await;

    service.kill().unwrap();
    service.wait().unwrap();
    let _ = std::fs::remove_file(&sock);
    let e = h.expect("kibana", "unknown", |e| e.status == Unknown).await;
    assert!(
        e.detail
            .as_deref()
            .unwrap_or_default()
            .contains("cannot reach"),
        "{:?}",
        e.detail
    );
}

#[tokio::test]
async fn a_change_during_a_broker_outage_is_published_after_it() {
    let mut h = Harness::new().await;
    let _stop = h.start(h.settings(docker_host()));
    let c = h.run("nginx", &[], &["/bin/sleep", "1000"]);
    h.expect("nginx", "normal", |e| e.status == Normal).await;
    eventually(
        30,
        "the broker to drop the watcher's connection",
        || async { (h.vhost.close_connections("elkservice-watcher").await > 0).then_some(()) },
    )
    .await;
    podman(&["kill", &c.0]);
    h.expect("nginx", "down after the outage", |e| e.status == Down)
        .await;
}

#[tokio::test]
async fn containers_that_share_a_name_are_reported_as_one_service() {
    let mut h = Harness::new().await;
    let _stop = h.start(h.settings(docker_host()));
    let label = format!("{}=api", h.label);
    let replica = |i: u32| {
        let name = format!("{}-api-{i}", h.label.replace('.', "-"));
        let guard = Container(name.clone());
        podman(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &label,
            IMAGE,
            "/bin/sleep",
            "1000",
        ]);
        guard
    };
    let (a, b) = (replica(1), replica(2));
    h.expect("api", "both healthy", |e| {
        e.status == Normal && e.detail.as_deref() == Some("2 of 2 containers healthy")
    })
    .await;

    podman(&["kill", &a.0]);
    let e = h.expect("api", "degraded", |e| e.status == Degraded).await;
    assert!(e.running);
    assert_eq!(e.detail.as_deref(), Some("1 of 2 containers healthy"));

    podman(&["kill", &b.0]);
    let e = h.expect("api", "down", |e| e.status == Down).await;
    assert!(e
        .detail
        .unwrap()
        .starts_with("none of 2 containers running"));
}
