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
//! Phases without and with the streams alternate, `BENCH_ROUNDS` of each
//! and one more without at the end, so that the machine's drift falls on
//! both alike and the phases without show how far apart its noise alone
//! puts two p99s. The verdict: the median p99 of the phases with the streams
//! against the highest of those without. With no effect at all (every phase's
//! p99 equally likely to rank anywhere), 3 rounds would still come out above
//! about one run in seven, 5 rounds one in sixteen.
//!
//! BENCH_CLIENTS (1000), BENCH_CHANGES (500 a phase: about 5,000 GETs, so
//! that a p99 is not one or two slow GETs), BENCH_ROUNDS (3).

mod cpu;

use cpu::{cpu_ms, set_real_time, set_sched_idle, threads_cpu_ms, with_idle_load};
use elkservice_testkit::bench::{env_num, percentile, rss_kib};
use elkservice_testkit::{eventually, free_port, program, TestDatabase};
use serde_json::json;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key";

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

/// Set when the GETs could not be timed at real-time priority.
static TIMED_AT_NORMAL_PRIORITY: AtomicBool = AtomicBool::new(false);

/// The name of the clients' threads, whose CPU time the bench reads.
const CLIENT_THREAD: &str = "sse-client";

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

/// One client: follows the stream from the feed's end until it has `changes`
/// entries, noting when each arrived; the number it got.
async fn follow(
    api: String,
    changes: usize,
    received: Arc<Mutex<HashMap<i64, Vec<Instant>>>>,
    following: Arc<AtomicUsize>,
) -> usize {
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
}

/// What one phase with the streams measured.
struct StreamPhase {
    gets: Vec<f64>,
    /// Clients that got every change.
    complete: usize,
    /// From each change's commit to each client, in ms.
    delivery: Vec<f64>,
    api_cpu_ms: f64,
    clients_cpu_ms: f64,
    /// How long the PUTs ran.
    busy_ms: f64,
    /// The api's RSS with every stream open, in KiB.
    rss_open: u64,
}

/// `clients` clients connect, each on a connection of its own, from the
/// feed's current end, on `runtime` (threads that run only when nothing else
/// wants the CPU: they stand for clients on other machines); then `changes`
/// PUTs run while GETs are timed, and the clients read until they have them all.
async fn with_streams(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    api: &str,
    pid: u32,
    (clients, changes): (usize, usize),
    first_seq: i64,
) -> StreamPhase {
    let received: Arc<Mutex<HashMap<i64, Vec<Instant>>>> = Default::default();
    let following = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            runtime.spawn(follow(
                api.to_owned(),
                changes,
                received.clone(),
                following.clone(),
            ))
        })
        .collect();
    eventually(120, "every stream following", || async {
        (following.load(Ordering::Relaxed) == clients).then_some(())
    })
    .await;
    let rss_open = rss_kib(pid);
    let cpu = cpu_ms(pid);
    let clients_cpu = threads_cpu_ms(CLIENT_THREAD);
    let started = Instant::now();
    let (gets, committed) = gets_during_puts(http, api, changes, first_seq).await;
    let busy_ms = started.elapsed().as_secs_f64() * 1e3;
    let clients_cpu_ms = threads_cpu_ms(CLIENT_THREAD) - clients_cpu;
    let api_cpu_ms = cpu_ms(pid) - cpu;
    let mut complete = 0;
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .is_ok_and(|r| r.unwrap() == changes)
        {
            complete += 1;
        }
    }
    let mut delivery = Vec::new();
    for (seq, times) in received.lock().unwrap().iter() {
        if let Some(at) = committed.get(seq) {
            delivery.extend(
                times
                    .iter()
                    .map(|t| t.saturating_duration_since(*at).as_secs_f64() * 1e3),
            );
        }
    }
    StreamPhase {
        gets,
        complete,
        delivery,
        api_cpu_ms,
        clients_cpu_ms,
        busy_ms,
        rss_open,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

#[tokio::main]
async fn main() {
    let clients: usize = env_num("BENCH_CLIENTS", 1000);
    let changes: usize = env_num("BENCH_CHANGES", 500);
    let rounds: usize = env_num("BENCH_ROUNDS", 3).max(1);
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
    let pid = child.id();
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
    let rss_idle = rss_kib(pid);
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .on_thread_start(set_sched_idle)
        .build()
        .unwrap();

    // The first Seq of the next phase's PUTs: Seq 1 is the creation, and each
    // phase's `changes` PUTs are one entry each.
    let mut next_seq = 2;
    let mut seqs = || {
        next_seq += changes as i64;
        next_seq - changes as i64
    };
    // GET latency while the same PUTs run with no stream open (the baseline),
    // then with the streams, in turns, and the baseline once more at the end.
    let mut without: Vec<Vec<f64>> = Vec::new();
    let mut with: Vec<StreamPhase> = Vec::new();
    let mut cpu_without = 0.0;
    for _ in 0..rounds {
        let cpu = cpu_ms(pid);
        without.push(gets_during_puts(&http, &api, changes, seqs()).await.0);
        cpu_without += cpu_ms(pid) - cpu;
        with.push(
            with_streams(
                &client_runtime,
                &http,
                &api,
                pid,
                (clients, changes),
                seqs(),
            )
            .await,
        );
    }
    without.push(gets_during_puts(&http, &api, changes, seqs()).await.0);
    let rss_after = rss_kib(pid);
    // Controls: both cores kept busy at SCHED_IDLE, as the clients kept them,
    // but by threads that only spin (what the clients' mere presence on these
    // cores costs a GET, apart from the api's work for them); then by threads
    // that keep the cores only as busy as the clients did (their CPU time over
    // the phases', per core), in 1 ms cycles.
    let spun = with_idle_load(1.0, || gets_during_puts(&http, &api, changes, seqs()))
        .await
        .0;
    let clients_cpu: f64 = with.iter().map(|p| p.clients_cpu_ms).sum();
    let busy_ms: f64 = with.iter().map(|p| p.busy_ms).sum();
    let duty = (clients_cpu / (busy_ms * 2.0)).min(1.0);
    let matched = with_idle_load(duty, || gets_during_puts(&http, &api, changes, seqs()))
        .await
        .0;

    let mut delivery: Vec<f64> = with
        .iter()
        .flat_map(|p| p.delivery.iter().copied())
        .collect();
    delivery.sort_by(f64::total_cmp);
    let complete: Vec<String> = with.iter().map(|p| p.complete.to_string()).collect();
    println!(
        "{clients} SSE clients, {changes} changes a phase (a PUT every 20 ms), {rounds} rounds:"
    );
    println!(
        "  clients that got every change: {} of {clients} (in each phase with the streams)",
        complete.join(", ")
    );
    println!(
        "  change (PUT answered) → client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} deliveries",
        percentile(&delivery, 0.5),
        percentile(&delivery, 0.99),
        delivery.last().copied().unwrap_or(f64::NAN),
        delivery.len()
    );
    let with_cpu: f64 = with.iter().map(|p| p.api_cpu_ms).sum();
    println!(
        "  api CPU per change: {:.2} ms without streams, {:.2} ms with them",
        cpu_without / (rounds * changes) as f64,
        with_cpu / (rounds * changes) as f64
    );
    println!(
        "  the clients' CPU: {clients_cpu:.0} ms over the {busy_ms:.0} ms with the streams ({:.0} % of each core)",
        duty * 100.0
    );
    let mib = |kib: u64| format!("{:.1}", kib as f64 / 1024.0);
    let open: Vec<String> = with.iter().map(|p| mib(p.rss_open)).collect();
    println!(
        "  api RSS: {} MiB idle; {} MiB with the streams open (each phase); {} MiB after",
        mib(rss_idle),
        open.join(", "),
        mib(rss_after)
    );
    println!(
        "  GET /elkservice/1 while the PUTs run, one every {} ms, phases in order:",
        GET_PAUSE.as_millis()
    );
    let mut phases: Vec<(String, &Vec<f64>)> = Vec::new();
    for (round, (quiet, busy)) in without.iter().zip(&with).enumerate() {
        phases.push((format!("no stream open {}", round + 1), quiet));
        phases.push((format!("with the streams {}", round + 1), &busy.gets));
    }
    phases.push((format!("no stream open {}", rounds + 1), &without[rounds]));
    phases.push(("idle-priority spin".into(), &spun));
    phases.push(("clients' CPU share".into(), &matched));
    for (when, gets) in &phases {
        println!(
            "    {when:>20}: p50 {:.2} ms, p99 {:.2} ms ({} GETs)",
            percentile(gets, 0.5),
            percentile(gets, 0.99),
            gets.len()
        );
    }
    let quiet: Vec<f64> = without.iter().map(|g| percentile(g, 0.99)).collect();
    let busy: Vec<f64> = with.iter().map(|p| percentile(&p.gets, 0.99)).collect();
    let (low, high) = quiet
        .iter()
        .fold((f64::INFINITY, 0.0_f64), |(l, h), p| (l.min(*p), h.max(*p)));
    let (with_median, without_median) = (median(busy), median(quiet));
    println!(
        "  GET p99, median of the phases with the streams {with_median:.2} ms; without them \
         {low:.2}–{high:.2} ms (median {without_median:.2}): {}",
        if with_median <= high {
            "within"
        } else {
            "above"
        }
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
