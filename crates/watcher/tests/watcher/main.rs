//! The watcher against the real engines (Podman's API socket and a Docker
//! Engine, one test body for each) and a real RabbitMQ: each test watches
//! containers under a label key of its own and reads what is published from a
//! queue in a vhost of its own.

mod config;
mod probes;

use elkservice_core::amqp::AmqpSettings;
use elkservice_core::config::{LogFormat, LogSettings};
use elkservice_core::program::Program;
use elkservice_core::StatusEvent;
use elkservice_testkit::{
    consume_events, eventually, on_both_engines, Container, Engine, TestVhost,
};
use elkservice_watcher::settings::{DockerSettings, Settings, WatcherSettings};
use elkservice_watcher::Watcher;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

struct Harness {
    engine: Engine,
    vhost: TestVhost,
    label: String,
    events: mpsc::UnboundedReceiver<StatusEvent>,
    _conn: lapin::Connection,
}

impl Harness {
    async fn new(engine: Engine) -> Self {
        let vhost = TestVhost::create().await;
        let (conn, events) = consume_events(&vhost).await;
        let label = format!("elktest.{}", vhost.short_id());
        Harness {
            engine,
            vhost,
            label,
            events,
            _conn: conn,
        }
    }

    /// Settings that watch this test's engine.
    fn settings(&self) -> Settings {
        self.settings_on(self.engine.host())
    }

    fn settings_on(&self, docker_host: String) -> Settings {
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

    /// A labelled container running `cmd`, plus any extra `run` options.
    fn run(&self, service: &str, extra: &[&str], cmd: &[&str]) -> Container {
        self.engine.run_labelled(&self.label, service, extra, cmd)
    }

    /// Wait for an event about `service` that satisfies `check`.
    async fn expect(
        &mut self,
        service: &str,
        what: &str,
        check: impl Fn(&StatusEvent) -> bool,
    ) -> StatusEvent {
        let mut until = self.until(service, what, check).await;
        until.pop().expect("the matching event")
    }

    /// `service`'s events up to and including the first that satisfies `check`.
    async fn until(
        &mut self,
        service: &str,
        what: &str,
        check: impl Fn(&StatusEvent) -> bool,
    ) -> Vec<StatusEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if e.service.as_str() == service => {
                    let done = check(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                Ok(Some(_)) => {}
                _ => {
                    let seen: Vec<_> = seen
                        .iter()
                        .map(|e| format!("{} {:?}", e.status, e.detail))
                        .collect();
                    panic!("no event for {service} with {what} within 30 s; saw {seen:?}")
                }
            }
        }
    }
}

use elkservice_core::Status::{Degraded, Down, Normal, Starting, Unknown};

on_both_engines!(
    a_labelled_container_is_followed_through_its_life,
    health_transitions_are_reported_from_the_engines_events,
    when_the_engine_goes_away_services_are_unknown_not_down,
    the_engine_is_reached_over_tcp,
    a_change_during_a_broker_outage_is_published_after_it,
    containers_that_share_a_name_are_reported_as_one_service,
);

async fn a_labelled_container_is_followed_through_its_life(engine: Engine) {
    let mut h = Harness::new(engine).await;
    let _stop = h.start(h.settings());
    let c = h.run("web", &[], &["/bin/sleep", "1000"]);
    // Created, then running: never `down` on the way.
    let start = h.until("web", "normal", |e| e.status == Normal).await;
    assert!(
        start
            .iter()
            .all(|e| e.status == Starting || e.status == Normal),
        "{start:?}"
    );
    let e = start.last().unwrap();
    assert!(e.running);
    assert_eq!(e.watcher, "test-watcher");

    c.cli(&["kill"]);
    let e = h.expect("web", "down", |e| e.status == Down).await;
    assert!(!e.running && !e.planned, "a kill is a failure: {e:?}");
    assert_eq!(e.detail.as_deref(), Some("container exited, exit code 137"));

    c.cli(&["start"]);
    h.expect("web", "normal again", |e| e.status == Normal && e.running)
        .await;

    // Paused, it answers nothing, though the engine counts it as running; an
    // operator paused it, so it is no failure.
    c.cli(&["pause"]);
    let e = h
        .expect("web", "down while paused", |e| e.status == Down)
        .await;
    assert!(!e.running && e.planned, "{e:?}");
    assert_eq!(e.detail.as_deref(), Some("container paused"));
    c.cli(&["unpause"]);
    h.expect("web", "normal once unpaused", |e| {
        e.status == Normal && e.running
    })
    .await;

    // sleep ignores SIGTERM as PID 1, so stop ends in SIGKILL after the timeout.
    c.cli(&["stop", "-t", "1"]);
    let e = h
        .expect("web", "down once stopped", |e| {
            e.status == Down && !e.running
        })
        .await;
    let detail = e.detail.as_deref().unwrap_or_default();
    if engine.reports_stops() {
        assert!(
            e.planned,
            "a stop the operator asked for is no failure: {e:?}"
        );
    }
    // Podman 4.3 sends its `stop` event only at times: either way, the detail
    // says what the watcher knows.
    if e.planned {
        assert_eq!(
            detail,
            "container exited, stopped on request, exit code 137"
        );
    } else {
        assert_eq!(detail, "container exited, exit code 137");
    }

    c.cli(&["restart", "-t", "0"]);
    h.expect("web", "normal after a restart", |e| {
        e.status == Normal && e.running
    })
    .await;

    c.remove();
    let e = h
        .expect("web", "down once removed", |e| e.status == Down)
        .await;
    assert_eq!(e.detail.as_deref(), Some("container removed"));
}

/// Healthy → unhealthy → healthy, `ELK_TEST_HEALTH_CYCLES` times (default
/// 50): every transition arrives through the event stream (the harness polls
/// once an hour). Docker checks every second on its own, and its
/// `health_status` events carry the new health; Podman checks when told to,
/// and sends its event before the check's result can be inspected.
async fn health_transitions_are_reported_from_the_engines_events(engine: Engine) {
    let cycles: usize = std::env::var("ELK_TEST_HEALTH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut h = Harness::new(engine).await;
    let _stop = h.start(h.settings());
    let interval = match engine {
        Engine::Docker => "1s",
        Engine::Podman => "1h",
    };
    let c = h.run(
        "es",
        &[
            "--health-cmd",
            "cat /tmp/ok",
            "--health-retries",
            "1",
            "--health-interval",
            interval,
        ],
        &["/bin/sh", "-c", "exec /bin/sleep 1000"],
    );
    h.expect("es", "starting", |e| e.status == Starting).await;
    let mut engine_events = HealthEvents::follow(engine, &c.name);
    let check = || {
        if engine == Engine::Podman {
            // Exits 1 when the check fails.
            engine.try_cli(&["healthcheck", "run", &c.name]);
        }
    };
    let (mut delays, mut unseen) = (Vec::new(), 0);
    for cycle in 0..cycles {
        for (health, status, file_op) in
            [("healthy", Normal, "touch"), ("unhealthy", Degraded, "rm")]
        {
            c.exec(&["/bin/busybox", file_op, "-f", "/tmp/ok"]);
            check();
            let e = h
                .expect("es", health, |e| e.status == status && e.running)
                .await;
            let received = chrono::Utc::now();
            assert!(
                e.detail.as_deref().unwrap_or_default().ends_with(health),
                "cycle {cycle}: {e:?}"
            );
            // The figure only: a second client's stream may miss an event.
            match engine_events.next(health).await {
                Some(sent) => delays.push((received - sent).num_milliseconds()),
                None => unseen += 1,
            }
        }
    }
    assert!(
        delays.len() >= cycles,
        "the engine's own events were seen for only {} of {} transitions",
        delays.len(),
        2 * cycles
    );
    delays.sort_unstable();
    eprintln!(
        "{engine:?}: {} health transitions ({unseen} whose engine event the second client \
         missed); from the engine's event to the published status: p50 {} ms, p99 {} ms, max {} ms",
        2 * cycles,
        delays[delays.len() / 2],
        delays[delays.len() * 99 / 100],
        delays.last().unwrap()
    );
}

/// The engine's own `health_status` events for one container, as a second
/// client sees them: when each was sent, for the delay figures.
struct HealthEvents(mpsc::UnboundedReceiver<(chrono::DateTime<chrono::Utc>, Option<String>)>);

impl HealthEvents {
    fn follow(engine: Engine, container: &str) -> Self {
        use futures_util::StreamExt;
        let docker = bollard::Docker::connect_with_unix(
            engine.host().trim_start_matches("unix://"),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        let filters = std::collections::HashMap::from([
            ("container".to_owned(), vec![container.to_owned()]),
            ("event".to_owned(), vec!["health_status".to_owned()]),
        ]);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // From before the container's first check. A stream that ends or
            // fails (seen with Podman under the full suite's load) is opened
            // again from the last event it gave; a replayed event is dropped.
            let mut last_nanos = (chrono::Utc::now().timestamp() - 2) * 1_000_000_000;
            loop {
                let mut stream = docker.events(Some(bollard::query_parameters::EventsOptions {
                    since: Some((last_nanos / 1_000_000_000).to_string()),
                    until: None,
                    filters: Some(filters.clone()),
                }));
                while let Some(item) = stream.next().await {
                    let e = match item {
                        Ok(e) => e,
                        Err(err) => {
                            eprintln!("the second client's event stream failed: {err}");
                            break;
                        }
                    };
                    let nanos = e.time_nano.unwrap_or_default();
                    if nanos <= last_nanos {
                        continue;
                    }
                    last_nanos = nanos;
                    let at = chrono::DateTime::from_timestamp_nanos(nanos);
                    let value = e
                        .action
                        .unwrap_or_default()
                        .split_once(':')
                        .map(|(_, v)| v.trim().to_owned());
                    if tx.send((at, value)).is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        HealthEvents(rx)
    }

    /// When the engine sent the event of this check (Docker names the health;
    /// Podman sends one per check, so the newest so far is taken); None if
    /// this client saw none within 5 s.
    async fn next(&mut self, health: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        let mut last = None;
        loop {
            let wait = if last.is_some() { 0 } else { 5 };
            match tokio::time::timeout(Duration::from_secs(wait), self.0.recv()).await {
                Ok(Some((at, Some(value)))) if value == health => return Some(at),
                Ok(Some((_, Some(_)))) => {}
                Ok(Some((at, None))) => last = Some(at),
                _ => return last,
            }
        }
    }
}

async fn when_the_engine_goes_away_services_are_unknown_not_down(engine: Engine) {
    let mut h = Harness::new(engine).await;
    // The engine behind a socket of this test's own, which it can take away.
    let sock = format!("/tmp/{}.sock", h.label);
    let proxy = SocketProxy::start(&sock, engine.host());
    let _stop = h.start(h.settings_on(format!("unix://{sock}")));
    let _c = h.run("kibana", &[], &["/bin/sleep", "1000"]);
    h.expect("kibana", "normal", |e| e.status == Normal).await;

    drop(proxy);
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

/// A socket (Unix, or TCP on the loopback interface) that forwards every
/// connection to an engine's Unix socket; when dropped, the socket and every
/// connection through it are gone, as when the engine dies.
struct SocketProxy {
    path: Option<String>,
    task: tokio::task::JoinHandle<()>,
}

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(match self {
            Listener::Unix(l) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => Box::new(l.accept().await?.0),
        })
    }
}

impl SocketProxy {
    /// On a Unix socket at `path`.
    fn start(path: &str, engine_host: String) -> Self {
        let _ = std::fs::remove_file(path);
        let listener = Listener::Unix(tokio::net::UnixListener::bind(path).unwrap());
        SocketProxy {
            path: Some(path.to_owned()),
            task: Self::forward(engine_host, listener),
        }
    }

    /// On a TCP port of the loopback interface; returns it with the proxy.
    async fn start_tcp(engine_host: String) -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = Self::forward(engine_host, Listener::Tcp(listener));
        (SocketProxy { path: None, task }, port)
    }

    fn forward(engine_host: String, listener: Listener) -> tokio::task::JoinHandle<()> {
        let target = engine_host.trim_start_matches("unix://").to_owned();
        tokio::spawn(async move {
            // Dropped with this task: every forwarded connection ends with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok(mut client) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut engine) = tokio::net::UnixStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        })
    }
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

impl Drop for SocketProxy {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Podman's API served on a loopback TCP port by Podman itself.
#[tokio::test]
async fn podman_s_own_api_on_a_tcp_port_is_watched() {
    let mut h = Harness::new(Engine::Podman).await;
    let port = elkservice_testkit::free_port();
    let _service = elkservice_testkit::Killed(
        std::process::Command::new("podman")
            .args([
                "system",
                "service",
                "--time=0",
                &format!("tcp://127.0.0.1:{port}"),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually(30, "Podman's API on the TCP port", || async move {
        reqwest::get(format!("http://127.0.0.1:{port}/_ping"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let _stop = h.start(h.settings_on(format!("tcp://127.0.0.1:{port}")));
    let c = h.run("kibana", &[], &["/bin/sleep", "1000"]);
    h.expect("kibana", "normal", |e| e.status == Normal).await;
    c.cli(&["kill"]);
    h.expect("kibana", "down", |e| e.status == Down).await;
}

/// `DOCKER_HOST=tcp://…`, as through a read-only socket proxy.
async fn the_engine_is_reached_over_tcp(engine: Engine) {
    let mut h = Harness::new(engine).await;
    let (_proxy, port) = SocketProxy::start_tcp(engine.host()).await;
    let _stop = h.start(h.settings_on(format!("tcp://127.0.0.1:{port}")));
    let c = h.run("logstash", &[], &["/bin/sleep", "1000"]);
    h.expect("logstash", "normal", |e| e.status == Normal).await;
    c.cli(&["kill"]);
    h.expect("logstash", "down", |e| e.status == Down).await;
}

async fn a_change_during_a_broker_outage_is_published_after_it(engine: Engine) {
    let mut h = Harness::new(engine).await;
    let _stop = h.start(h.settings());
    let c = h.run("nginx", &[], &["/bin/sleep", "1000"]);
    h.expect("nginx", "normal", |e| e.status == Normal).await;
    eventually(
        30,
        "the broker to drop the watcher's connection",
        || async { (h.vhost.close_connections("elkservice-watcher").await > 0).then_some(()) },
    )
    .await;
    c.cli(&["kill"]);
    h.expect("nginx", "down after the outage", |e| e.status == Down)
        .await;
}

async fn containers_that_share_a_name_are_reported_as_one_service(engine: Engine) {
    let mut h = Harness::new(engine).await;
    let _stop = h.start(h.settings());
    let label = format!("{}=api", h.label);
    let replica = |i: u32| {
        let name = format!("{}-api-{i}", h.label.replace('.', "-"));
        engine.run(&name, &["--label", &label], &["/bin/sleep", "1000"])
    };
    let (a, b) = (replica(1), replica(2));
    h.expect("api", "both healthy", |e| {
        e.status == Normal && e.detail.as_deref() == Some("2 of 2 containers healthy")
    })
    .await;

    a.cli(&["kill"]);
    let e = h.expect("api", "degraded", |e| e.status == Degraded).await;
    assert!(e.running);
    assert_eq!(e.detail.as_deref(), Some("1 of 2 containers healthy"));

    b.cli(&["kill"]);
    let e = h.expect("api", "down", |e| e.status == Down).await;
    assert!(e
        .detail
        .unwrap()
        .starts_with("none of 2 containers running"));
}
