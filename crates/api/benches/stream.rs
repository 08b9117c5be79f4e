//! Many Server-Sent Events clients on one api process: every client gets
//! every change, how long a change takes to reach them (from the PUT's
//! answer, i.e. its commit), the api's memory, and GET latency with and
//! without the clients. Against the real MariaDB; the api runs as its own
//! process so that its memory is its own.
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-api --bench stream
//!
//! BENCH_CLIENTS (1000), BENCH_CHANGES (200), BENCH_GETS (1000).

use elkservice_testkit::{eventually, free_port, program, TestDatabase};
use serde_json::json;
use std::collections::HashMap;
use std::process::Stdio;
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `n` GETs in a row, timed on a thread and runtime of their own: on the
/// bench's runtime they would also wait for the thousand client tasks, which
/// would be the bench's latency, not the api's.
async fn get_latencies(api: &str, n: usize) -> Vec<f64> {
    let api = api.to_owned();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = reqwest::Client::new();
            let mut ms = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let res = client
                    .get(format!("{api}/elkservice/1"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            ms
        })
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap()
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
    let changes = env_num("BENCH_CHANGES", 200);
    let gets = env_num("BENCH_GETS", 1000);
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
    let (quiet, _) = tokio::join!(
        get_latencies(&api, gets),
        put_changes(&http, &api, changes, 2)
    );

    // The clients, each on a connection of its own, from the feed's current end.
    let received: Arc<Mutex<HashMap<i64, Vec<Instant>>>> = Default::default();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let res = client
            .get(format!("{api}/elkservice/stream"))
            .send()
            .await
            .expect("a stream");
        assert_eq!(res.status(), 200);
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut res = res;
            let mut buffer = String::new();
            let mut got = 0;
            while got < changes {
                let Ok(Some(chunk)) = res.chunk().await else {
                    break;
                };
                let now = Instant::now();
                buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
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
    tokio::time::sleep(Duration::from_millis(500)).await; // every stream is following
    let rss_streams = rss_kib(child.id());

    // The same changes again, each committed when its PUT answers, while
    // GETs are measured.
    let first_seq = 2 + changes as i64;
    let (busy, committed) = tokio::join!(
        get_latencies(&api, gets),
        put_changes(&http, &api, changes, first_seq)
    );
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
        "  api RSS: {:.1} MiB idle, {:.1} MiB with the streams open, {:.1} MiB after",
        rss_idle as f64 / 1024.0,
        rss_streams as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    println!(
        "  GET /elkservice/1, {gets} in a row while the PUTs run: p50 {:.2} ms, p99 {:.2} ms without streams; p50 {:.2} ms, p99 {:.2} ms with them",
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        percentile(&busy, 0.5),
        percentile(&busy, 0.99)
    );
    let _ = child.kill();
    let _ = child.wait();
}
