//! Many Server-Sent Events clients on one api process: every client gets
//! every change, how long a change takes to reach them (from the PUT's
//! answer, i.e. its commit), the api's memory, and GET latency with and
//! without the clients, and with the cores only kept busy at the clients'
//! priority (a control). Against the real MariaDB; the api runs as its own
//! process so that its memory is its own. The clients stand for clients on
//! other machines: the streams' readers run only when nothing else wants the
//! CPU, and the thread that times the GETs runs at real-time priority where
//! this process may, so that neither's own wait for a CPU counts as the api's.
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-api --bench stream
//!
//! BENCH_CLIENTS (1000), BENCH_CHANGES (500: about 5,000 GETs a phase, so
//! that a p99 is not one or two slow GETs).

use elkservice_testkit::{cpu_seconds, eventually, free_port, program, TestDatabase};
use serde_json::json;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key";

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time the process has used, user and system, in ms.
fn cpu_ms(pid: u32) -> f64 {
    cpu_ms_of(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU time, user and system, in ms, from a `stat` file of /proc.
fn cpu_ms_of(path: &std::path::Path) -> f64 {
    cpu_seconds(path).unwrap_or(0.0) * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// GETs one after another, a pause of [`GET_PAUSE`] between them, until
/// `stop`; timed on a thread and runtime of their own: on the bench's runtime
/// they would also wait for the thousand client tasks, which would be the
/// bench's latency, not the api's. Spread over the whole run, they meet
/// every change's fan-out as often as chance has it.
async fn get_latencies(api: &str, stop: Arc<AtomicBool>) -> Vec<f64> {
    let api = api.to_owned();
    let thread = std::thread::spawn(move || {
        if !set_real_time() {
            TIMED_AT_NORMAL_PRIORITY.store(true, Ordering::Relaxed);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut ms = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let res = client
                    .get(format!("{api}/elkservice/1"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                tokio::time::sleep(GET_PAUSE).await;
            }
            ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            ms
        })
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap()
}

/// CPU time this process's threads named `name` have used, in ms.
fn threads_cpu_ms(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|t| cpu_ms_of(&t.path().join("stat")))
        .sum()
}

/// Put the calling thread under the scheduling `policy` at `priority`.
fn set_scheduler(policy: libc::c_int, priority: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // 0: the calling thread.
    match unsafe { libc::sched_setscheduler(0, policy, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Run the calling thread only when nothing else wants the CPU.
fn set_sched_idle() {
    set_scheduler(libc::SCHED_IDLE, 0).expect("SCHED_IDLE needs no privilege");
}

/// Run the calling thread before any other that wants its CPU, where this
/// process may (root, `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` of at least 1);
/// false where it may not. The thread that times the GETs stands for a
/// client on another machine: at the priority of the api's own threads it
/// also waits for a CPU that the api holds while it writes to its streams
/// (`perf sched`: most of the long waits behind those writes were the timing
/// thread's own), and that wait is the bench's, not the api's.
fn set_real_time() -> bool {
    set_scheduler(libc::SCHED_FIFO, 1).is_ok()
}

/// Set when the GETs could not be timed at real-time priority.
static TIMED_AT_NORMAL_PRIORITY: AtomicBool = AtomicBool::new(false);

/// The name of the clients' threads, whose CPU time the bench reads.
const CLIENT_THREAD: &str = "sse-client";

/// Run `run` while two threads at SCHED_IDLE keep the cores busy `duty` of
/// every millisecond (all of it at 1.0).
async fn with_idle_load<F: std::future::Future>(duty: f64, run: impl FnOnce() -> F) -> F::Output {
    const CYCLE: Duration = Duration::from_millis(1);
    let on = Arc::new(AtomicBool::new(true));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let on = on.clone();
            std::thread::spawn(move || {
                set_sched_idle();
                let busy = CYCLE.mul_f64(duty);
                let mut cycle = Instant::now();
                while on.load(Ordering::Relaxed) {
                    while cycle.elapsed() < busy {
                        std::hint::spin_loop();
                    }
                    if let Some(rest) = CYCLE.checked_sub(cycle.elapsed()) {
                        std::thread::sleep(rest);
                    }
                    cycle = Instant::now();
                }
            })
        })
        .collect();
    let output = run().await;
    on.store(false, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    output
}

/// Between two timed GETs.
const GET_PAUSE: Duration = Duration::from_millis(1);

/// GET latencies while `changes` PUTs run (see [`put_changes`]), and when
/// each Seq was committed.
async fn gets_during_puts(
    http: &reqwest::Client,
    api: &str,
    changes: usize,
    first_seq: i64,
) -> (Vec<f64>, HashMap<i64, Instant>) {
    let stop = Arc::new(AtomicBool::new(false));
    let puts = async {
        let committed = put_changes(http, api, changes, first_seq).await;
        stop.store(true, Ordering::Relaxed);
        committed
    };
    tokio::join!(get_latencies(api, stop.clone()), puts)
}

/// `n` PUTs that each change the status, one every 20 ms; when each Seq
/// (from `first_seq` on) was committed, as its PUT answered.
async fn put_changes(
    http: &reqwest::Client,
    api: &str,
    n: usize,
    first_seq: i64,
) -> HashMap<i64, Instant> {
    let mut committed = HashMap::new();
    for i in 0..n {
        let status = if i % 2 == 0 { "down" } else { "normal" };
        let res = http
            .put(format!("{api}/elkservice/1"))
            .bearer_auth(KEY)
            .json(&json!({"Name": "bench", "Status": status, "Running": true, "FailedCount": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        committed.insert(first_seq + i as i64, Instant::now());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    committed
}

#[tokio::main]
async fn main() {
    let clients = env_num("BENCH_CLIENTS", 1000);
    let changes = env_num("BENCH_CHANGES", 500);
    let db = TestDatabase::new();
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut child = program(env!("CARGO_BIN_EXE_elkservice-api"))
        .env("DATABASE_URL", &db.url)
        .env("ELK_API__LISTEN", format!("127.0.0.1:{port}"))
        .env("ELK_API__KEYS", elkservice_api::keys::digest(KEY))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the api starts");
    let http = reqwest::Client::new();
    eventually(60, "the api", || async {
        http.get(format!("{api}/readyz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
    let res = http
        .post(format!("{api}/elkservice"))
        .bearer_auth(KEY)
        .json(&json!({"Name": "bench", "Status": "normal", "Running": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let rss_idle = rss_kib(child.id());
    // GET latency while the same PUTs run, with no stream open: the baseline.
    let cpu = cpu_ms(child.id());
    let (quiet, _) = gets_during_puts(&http, &api, changes, 2).await;
    let cpu_quiet = cpu_ms(child.id()) - cpu;

    // The clients, each on a connection of its own, from the feed's current
    // end, on threads of their own that run only when nothing else wants the
    // CPU (SCHED_IDLE): they stand for clients on other machines, so their
    // own work on these two cores should not count as the api's latency.
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .on_thread_start(set_sched_idle)
        .build()
        .unwrap();
    let received: Arc<Mutex<HashMap<i64, Vec<Instant>>>> = Default::default();
    let following = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (api, received, following) = (api.clone(), received.clone(), following.clone());
        tasks.push(client_runtime.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut res = client
                .get(format!("{api}/elkservice/stream"))
                .send()
                .await
                .expect("a stream");
            assert_eq!(res.status(), 200);
            let mut buffer = String::new();
            let mut got = 0;
            let mut connected = false;
            while got < changes {
                let Ok(Some(chunk)) = res.chunk().await else {
                    break;
                };
                let now = Instant::now();
                buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    if !std::mem::replace(&mut connected, true) {
                        following.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                        let seq: i64 = id.parse().unwrap();
                        received.lock().unwrap().entry(seq).or_default().push(now);
                        got += 1;
                    }
                }
            }
            got
        }));
    }
    eventually(120, "every stream following", || async {
        (following.load(Ordering::Relaxed) == clients).then_some(())
    })
    .await;
    let rss_streams = rss_kib(child.id());

    // The same changes again, each committed when its PUT answers, while
    // GETs are measured.
    let first_seq = 2 + changes as i64;
    let cpu = cpu_ms(child.id());
    let cpu_clients = threads_cpu_ms(CLIENT_THREAD);
    let started = Instant::now();
    let (busy, committed) = gets_during_puts(&http, &api, changes, first_seq).await;
    let busy_ms = started.elapsed().as_secs_f64() * 1e3;
    let cpu_clients = threads_cpu_ms(CLIENT_THREAD) - cpu_clients;
    let cpu_busy = cpu_ms(child.id()) - cpu;
    let mut complete = 0;
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .is_ok_and(|r| r.unwrap() == changes)
        {
            complete += 1;
        }
    }
    let rss_after = rss_kib(child.id());
    // The baseline again, the streams gone: the two baselines show how much
    // the machine's noise alone moves the figures.
    let (quiet_after, _) = gets_during_puts(&http, &api, changes, first_seq + changes as i64).await;
    // And once more with both cores kept busy at SCHED_IDLE, as the clients
    // kept them, but by threads that only spin: what the clients' mere
    // presence on these cores costs a GET, apart from the api's work for them.
    let (spun, _) = with_idle_load(1.0, || {
        gets_during_puts(&http, &api, changes, first_seq + 2 * changes as i64)
    })
    .await;
    // And with threads that keep the cores only as busy as the clients did
    // (their CPU time over the run's, per core), in 1 ms cycles: the share of
    // the effect that comes from the clients being on these cores.
    let duty = (cpu_clients / (busy_ms * 2.0)).min(1.0);
    let (matched, _) = with_idle_load(duty, || {
        gets_during_puts(&http, &api, changes, first_seq + 3 * changes as i64)
    })
    .await;
    let mut lat: Vec<f64> = Vec::new();
    for (seq, times) in received.lock().unwrap().iter() {
        if let Some(at) = committed.get(seq) {
            lat.extend(
                times
                    .iter()
                    .map(|t| t.saturating_duration_since(*at).as_secs_f64() * 1e3),
            );
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{clients} SSE clients, {changes} changes (a PUT every 20 ms):");
    println!("  clients that got every change: {complete} of {clients}");
    println!(
        "  change (PUT answered) → client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} deliveries",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len()
    );
    println!(
        "  api CPU per change: {:.2} ms without streams, {:.2} ms with them",
        cpu_quiet / changes as f64,
        cpu_busy / changes as f64
    );
    println!(
        "  the clients' CPU: {:.0} ms over the {:.0} ms with the streams ({:.0} % of each core)",
        cpu_clients,
        busy_ms,
        duty * 100.0
    );
    println!(
        "  api RSS: {:.1} MiB idle, {:.1} MiB with the streams open, {:.1} MiB after",
        rss_idle as f64 / 1024.0,
        rss_streams as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!(
        "  GET /elkservice/1 while the PUTs run, one every {} ms:",
        GET_PAUSE.as_millis()
    );
    for (when, gets) in [
        ("no stream open yet", &quiet),
        ("with the streams", &busy),
        ("the streams gone", &quiet_after),
        ("idle-priority spin", &spun),
        ("clients' CPU share", &matched),
    ] {
        println!(
            "    {when:>18}: p50 {:.2} ms, p99 {:.2} ms ({} GETs)",
            percentile(gets, 0.5),
            percentile(gets, 0.99),
            gets.len()
        );
    }
    // The noise: how far apart the phases with no work for streams in the
    // api land, in this run (the spinner keeps the cores busier than the
    // clients did, so it is left out).
    let (low, high) = [&quiet, &quiet_after, &matched]
        .iter()
        .map(|gets| percentile(gets, 0.99))
        .fold((f64::INFINITY, 0.0_f64), |(l, h), p| (l.min(p), h.max(p)));
    let with = percentile(&busy, 0.99);
    println!(
        "  GET p99 with the streams {with:.2} ms; with no work for streams in the api \
         {low:.2}–{high:.2} ms: {}",
        if with <= high { "within" } else { "above" }
    );
    if TIMED_AT_NORMAL_PRIORITY.load(Ordering::Relaxed) {
        println!(
            "  (the GETs were timed at normal priority, as this process may not use real-time \
             priority: their p99s include waiting for a CPU that the api held)"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    client_runtime.shutdown_background();
}
