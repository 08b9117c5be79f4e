//! The real binary: configuration errors, key generation, start-up and SIGTERM.

use elkservice_testkit::{free_port, program, sigterm, TestDatabase};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_elkservice-api");

fn api() -> Command {
    program(BIN)
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_setting_is_one_clear_line_and_exit_2() {
    for (var, value, key) in [
        ("ELK_API__LISTEN", "nope", "api.listen"),
        ("ELK_API__KEYS", "secret", "api.keys"),
        (
            "ELK_DATABASE__MAX_CONNECTIONS",
            "many",
            "database.max_connections",
        ),
        ("ELK_LOG__FORMAT", "xml", "log.format"),
        // One of the pair alone would silently serve plain HTTP.
        ("ELK_API__TLS_CERT", "/etc/ssl/certs/x.pem", "api.tls_key"),
    ] {
        let (code, _, stderr) = run(api().env(var, value));
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert!(stderr.contains(key), "{var}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_bad_config_file_is_reported() {
    let dir = std::env::temp_dir().join(format!("elk-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("api.toml");
    std::fs::write(&file, "[api]\nshutdown_timeout_secs = \"soon\"\n").unwrap();
    let (code, _, stderr) = run(api().arg("--config").arg(&file));
    assert_eq!(code, 2);
    assert!(stderr.contains("api.shutdown_timeout_secs"), "{stderr}");
    // A section the api does not have: a typo is not silently ignored.
    std::fs::write(
        &file,
        "[api]\nlisten = \"127.0.0.1:0\"\n[databse]\nurl = \"x\"\n",
    )
    .unwrap();
    let (code, _, stderr) = run(api().arg("--config").arg(&file));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `databse`"), "{stderr}");
    let (code, _, stderr) = run(api().arg("--config").arg(dir.join("missing.toml")));
    assert_eq!(code, 2);
    assert!(stderr.contains("not found"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn new_key_prints_a_key_and_its_digest() {
    let (code, stdout, _) = run(api().arg("new-key"));
    assert_eq!(code, 0);
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    assert_eq!(
        elkservice_api::keys::digest(&field("key:")),
        field("digest:")
    );
}

#[test]
fn help_and_version() {
    let (code, stdout, _) = run(api().arg("--version"));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("elkservice-api "));
    let (code, stdout, _) = run(api().arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("--config"));
}

#[tokio::test]
async fn migrate_brings_the_schema_up_to_date_and_exits_0() {
    use sqlx::Row;
    let db = TestDatabase::new();
    for _ in 0..2 {
        // Twice: the second run finds nothing to do.
        let (code, _, stderr) = run(api().arg("migrate").env("DATABASE_URL", &db.url));
        assert_eq!(code, 0, "{stderr}");
    }
    let mut conn = db.connect().await;
    let row = sqlx::query("SELECT COUNT(*) AS n FROM elkservice")
        .fetch_one(&mut conn)
        .await
        .expect("the table exists");
    assert_eq!(row.get::<i64, _>("n"), 0);
}

#[tokio::test]
async fn it_serves_then_exits_0_on_sigterm() {
    let db = TestDatabase::new();
    let port = free_port();
    let mut child = api()
        .env("DATABASE_URL", &db.url)
        .env("ELK_API__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ready(&mut child, port).await;
    let (code, log) = stop(child).await;
    assert_eq!(code, Some(0));
    // The log is JSON lines, with one line for the request.
    let request_line = log
        .iter()
        .find(|v| v["route"] == "/readyz" && v["status"] == 200)
        .unwrap_or_else(|| panic!("no request line in {log:?}"));
    for field in ["method", "latency_ms", "request_id"] {
        assert!(!request_line[field].is_null(), "{field} in {request_line}");
    }
}

/// What an operator greps for after a 500: the response's `X-Request-Id`
/// finds every line the request logged, the failure's cause among them.
#[tokio::test]
async fn every_line_a_failed_request_logs_carries_its_request_id() {
    let db = TestDatabase::new();
    let port = free_port();
    let key = "process-test-key";
    let mut child = api()
        .env("DATABASE_URL", &db.url)
        .env("ELK_API__LISTEN", format!("127.0.0.1:{port}"))
        .env("ELK_API__KEYS", elkservice_api::keys::digest(key))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ready(&mut child, port).await;
    // The feed's table gone: a create cannot be recorded, and fails whole.
    let mut conn = db.connect().await;
    sqlx::query("DROP TABLE elkservice_change_page")
        .execute(&mut conn)
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/elkservice"))
        .bearer_auth(key)
        .header("x-request-id", "req-that-fails")
        .json(&serde_json::json!({"Name": "kibana"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(res.headers()["x-request-id"], "req-that-fails");
    let (_, log) = stop(child).await;
    let lines: Vec<_> = log
        .iter()
        .filter(|v| v["span"]["request_id"] == "req-that-fails")
        .collect();
    assert!(
        lines.iter().any(|v| v["level"] == "ERROR"
            && v["message"] == "request failed"
            && v["error"].as_str().is_some()),
        "the failure, with its cause, in the request's span: {lines:?}"
    );
    assert!(
        lines.iter().any(|v| v["message"] == "request"
            && v["status"].as_u64() == Some(res.status().as_u16().into())),
        "the request line, in its span: {lines:?}"
    );
}

/// Wait until the api answers `/readyz`, or fail with what it printed.
async fn ready(child: &mut std::process::Child, port: u16) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if up.is_ok_and(|r| r.status() == 200) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).ok();
            panic!("exited early with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, then the exit code and the log's JSON lines.
async fn stop(child: std::process::Child) -> (Option<i32>, Vec<serde_json::Value>) {
    sigterm(&child);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out.status.code(), log)
}
