//! The database is the truth, at size: rows written by plain SQL reach the
//! api, and its reads stay fast however many rows there are. For each size
//! in `BENCH_SIZES` (default `1000 100000`), the bench starts a fresh
//! database with two api processes, each its own process, seeds the rows by
//! plain SQL, and measures:
//!
//! - how long the api takes to see every seeded row (the triggers' notes
//!   recorded in the feed, then the read model following it);
//! - how long an `UPDATE`, `INSERT` or `DELETE` made by SQL takes to show in
//!   `GET /elkservice/{Id}` of both processes, against the bound
//!   `api.external_change_secs`;
//! - GET by id against nginx serving a file of a row's size (Debian's
//!   nginx-light, installed when missing);
//! - requests per second and p99 of the listings that used to walk every row
//!   and of the status page's overview, against GET by id in the same
//!   phase (the baseline: it costs the same at any size);
//! - the api's memory.
//!
//! The last lines divide the largest size's figures by the smallest's.
//!
//!     eval "$(scripts/services)"; cargo bench -p elkservice-api --bench truth
//!
//! BENCH_SIZES, BENCH_CONNS (16 connections per load), BENCH_SECS (5 per
//! load), BENCH_CHANGES (20 SQL updates per size).

use elkservice_testkit::bench::{env_num, percentile, rss_kib};
use elkservice_testkit::{eventually, free_port, get_json, program, Killed, TestDatabase};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the api promises by default (`api.external_change_secs`).
const BOUND: Duration = Duration::from_secs(2);

/// A service's name: 50 groups of names (`g7-…`), as a deployment's
/// services share prefixes.
fn name(i: usize) -> String {
    format!("g{}-svc-{i:06}", i % 50)
}

/// One in 50 is down and one in 100 degraded, the rest normal.
fn status(i: usize) -> &'static str {
    match i % 100 {
        0 | 50 => "down",
        25 => "degraded",
        _ => "normal",
    }
}

async fn seed(db: &TestDatabase, rows: usize) {
    let mut conn = db.connect().await;
    for start in (0..rows).step_by(5000) {
        let values: Vec<String> = (start..rows.min(start + 5000))
            .map(|i| format!("({}, '{}', '{}', TRUE)", i + 1, name(i), status(i)))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO elkservice (id, name, status, running) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut conn)
        .await
        .expect("seeding");
    }
}

struct Load {
    rps: f64,
    p99_ms: f64,
}

/// `conns` clients, each sending the next request as soon as the last is
/// answered, for `secs`; `path(n)` gives the n-th request's path.
async fn load(api: &str, conns: usize, secs: u64, path: PathOf, rows: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| {
            let (api, stop) = (api.to_owned(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut latencies = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let res = http.get(format!("{api}{}", path(n, rows))).send().await;
                    let ok = match res {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    assert!(ok, "{} failed", path(n, rows));
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    n += conns;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Load {
        rps: all.len() as f64 / elapsed,
        p99_ms: percentile(&all, 0.99),
    }
}

/// The reads measured, GET by id first: the others are divided by it.
/// The n-th request's path, for a table of `rows` rows.
type PathOf = fn(usize, usize) -> String;

const READS: [(&str, PathOf); 5] = [
    ("GET /elkservice/{Id}", |n, rows| {
        format!("/elkservice/{}", n % rows + 1)
    }),
    ("list Status:down, limit 100, paged", |n, rows| {
        let pages = (rows / 50).div_ceil(100).max(1);
        format!(
            "/elkservice?query=Status:down&limit=100&offset={}",
            (n % pages) * 100
        )
    }),
    ("list Name__startswith sorted by Name", |n, _| {
        format!(
            "/elkservice?query=Name__startswith:g{}-&sortby=Name&limit=100",
            n % 50
        )
    }),
    ("list sorted by StatusChangedAt desc", |_, _| {
        "/elkservice?sortby=StatusChangedAt&order=desc&limit=100".into()
    }),
    ("status page overview (120 cards)", |_, _| {
        "/status/overview?limit=120".into()
    }),
];

struct Figures {
    rows: usize,
    visible_s: f64,
    change_p50_ms: f64,
    change_p99_ms: f64,
    static_row: Load,
    reads: Vec<Load>,
    rss_mib: f64,
}

async fn start_api(db: &TestDatabase) -> (Killed, String) {
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let child = program(env!("CARGO_BIN_EXE_elkservice-api"))
        .env("DATABASE_URL", &db.url)
        .env("ELK_API__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the api starts");
    let child = Killed(child);
    let http = reqwest::Client::new();
    eventually(60, "the api", || async {
        get_json(&http, &format!("{api}/readyz")).await
    })
    .await;
    (child, api)
}

/// nginx (Debian's nginx-light, installed when missing) serving `body` as
/// `/row.json`, with as many workers as the api has cores.
struct Nginx {
    url: String,
    _process: Killed,
    dir: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx(body: &[u8]) -> Nginx {
    if !std::path::Path::new("/usr/sbin/nginx").exists() {
        let ok = std::process::Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "nginx-light",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "nginx is needed for the baseline: apt-get install nginx-light"
        );
    }
    let dir = std::env::temp_dir().join(format!("elk-nginx-{}", free_port()));
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/row.json"), body).unwrap();
    let port = free_port();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off; worker_processes {cores}; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; keepalive_requests 1000000; default_type application/json;\n\
             client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("/usr/sbin/nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx does not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        url,
        _process: Killed(child),
        dir,
    }
}

async fn measure(rows: usize, conns: usize, secs: u64, changes: usize) -> Figures {
    let db = TestDatabase::new();
    let (first, api) = start_api(&db).await;
    let pid = first.0.id();
    // A second process over the same database: each change must reach both.
    let (_second, other) = start_api(&db).await;
    let http = reqwest::Client::new();

    let seeded = Instant::now();
    seed(&db, rows).await;
    let overview = format!("{api}/status/overview?limit=1");
    eventually(600, "every seeded row to be seen", || async {
        let o = get_json(&http, &overview).await?;
        (o["Total"] == rows).then_some(())
    })
    .await;
    let visible_s = seeded.elapsed().as_secs_f64();

    let mut conn = db.connect().await;
    // In turns: an UPDATE, an INSERT, and the DELETE of what was inserted;
    // each timed until both processes answer GET as the table says.
    let mut latencies = Vec::new();
    for k in 0..changes {
        let (statement, id, detail) = match k % 3 {
            0 => ("UPDATE elkservice SET detail = ? WHERE id = ?", (k * 7919) % rows + 1, Some(format!("changed by SQL {k}"))),
            1 => ("INSERT INTO elkservice (detail, id, name, status) VALUES (?, ?, CONCAT('new-', id), 'normal')", rows + k, Some(format!("inserted by SQL {k}"))),
            _ => ("DELETE FROM elkservice WHERE ? IS NULL AND id = ?", rows + k - 1, None),
        };
        sqlx::query(statement)
            .bind(detail.as_deref())
            .bind(id as i64)
            .execute(&mut conn)
            .await
            .unwrap();
        let t = Instant::now();
        for base in [&api, &other] {
            let url = format!("{base}/elkservice/{id}");
            loop {
                let res = http.get(&url).send().await.unwrap();
                let code = res.status().as_u16();
                let row: serde_json::Value = res.json().await.unwrap_or_default();
                let seen = match &detail {
                    Some(d) => code == 200 && row["Detail"] == d.as_str(),
                    None => code == 404,
                };
                if seen {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "row {id} never changed"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));

    // nginx serving a file as large as a row, in the same phase.
    let row = http
        .get(format!("{api}/elkservice/1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let static_server = nginx(&row);
    let static_row = load(
        &static_server.url,
        conns,
        secs,
        |_, _| "/row.json".into(),
        rows,
    )
    .await;
    let mut reads = Vec::new();
    for (_, path) in READS {
        reads.push(load(&api, conns, secs, path, rows).await);
    }
    Figures {
        rows,
        visible_s,
        change_p50_ms: percentile(&latencies, 0.5),
        change_p99_ms: percentile(&latencies, 0.99),
        static_row,
        reads,
        rss_mib: rss_kib(pid) as f64 / 1024.0,
    }
}

fn report(f: &Figures) {
    println!("\n{} rows", f.rows);
    println!(
        "  seeded by SQL → all seen by the api: {:.1} s ({:.0} rows/s)",
        f.visible_s,
        f.rows as f64 / f.visible_s
    );
    println!(
        "  SQL UPDATE, INSERT, DELETE → both processes' GET show it: p50 {:.0} ms, p99 {:.0} ms ({:.2} of the {} s bound)",
        f.change_p50_ms,
        f.change_p99_ms,
        f.change_p99_ms / BOUND.as_millis() as f64,
        BOUND.as_secs()
    );
    println!(
        "  nginx, a static file of a row's size       {:>8.0} req/s  p99 {:>6.1} ms",
        f.static_row.rps, f.static_row.p99_ms
    );
    println!(
        "  GET by id against nginx: {:.2}",
        f.reads[0].rps / f.static_row.rps
    );
    let base = f.reads[0].rps;
    for ((what, _), load) in READS.iter().zip(&f.reads) {
        println!(
            "  {what:<40} {:>8.0} req/s  p99 {:>6.1} ms  {:.2}× GET by id",
            load.rps,
            load.p99_ms,
            load.rps / base
        );
    }
    println!("  api RSS: {:.1} MiB", f.rss_mib);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "1000 100000".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let conns: usize = env_num("BENCH_CONNS", 16);
    let secs: u64 = env_num("BENCH_SECS", 5);
    let changes: usize = env_num("BENCH_CHANGES", 20);
    let mut all = Vec::new();
    for rows in sizes {
        let f = measure(rows, conns, secs, changes).await;
        report(&f);
        all.push(f);
    }
    if let (Some(small), Some(large)) = (all.first(), all.last()) {
        if large.rows > small.rows {
            println!("\n{} rows against {} rows", large.rows, small.rows);
            for (i, (what, _)) in READS.iter().enumerate() {
                // Each as a share of GET by id in its own phase, so that the
                // machine's drift between the phases cancels.
                let share = |f: &Figures| f.reads[i].rps / f.reads[0].rps;
                println!("  {what:<40} {:.2}", share(large) / share(small));
            }
            println!(
                "  SQL UPDATE → GET p99                   {:.2}",
                large.change_p99_ms / small.change_p99_ms
            );
            println!(
                "  api RSS per row                         {:.2} KiB",
                (large.rss_mib - small.rss_mib) * 1024.0 / (large.rows - small.rows) as f64
            );
        }
    }
}
