//! Three watchers in network namespaces of their own probe one HTTP target in
//! the root namespace, with the real broker, writer, api and database: one cut
//! off from the target (iptables) is outvoted, so the row never moves; the
//! target stopped is one `down`, agreed by all three.

use elkservice_e2e::{binary, Program, System};
use elkservice_testkit::{eventually, free_port, program, Engine};
use serde_json::Value;
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn sh(args: &[&str]) {
    let ok = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap()
        .success();
    assert!(ok, "{args:?} failed");
}

/// A "host": a namespace joined to the root one by a veth pair, on
/// 10.231.<net>.0/30 (the root side is .1). Removed on drop.
struct Host {
    ns: String,
    root_ip: String,
}

impl Host {
    fn new(net: u8) -> Self {
        let ns = format!("elk-vt{}-{net}", std::process::id() % 10_000);
        let (h, n) = (format!("{ns}h"), format!("{ns}n"));
        let (root_ip, ip) = (format!("10.231.{net}.1"), format!("10.231.{net}.2"));
        sh(&["ip", "netns", "add", &ns]);
        let host = Host { ns, root_ip };
        sh(&["ip", "link", "add", &h, "type", "veth", "peer", "name", &n]);
        sh(&["ip", "link", "set", &n, "netns", &host.ns]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", host.root_ip),
            "dev",
            &h,
        ]);
        sh(&["ip", "link", "set", &h, "up"]);
        host.exec(&["ip", "addr", "add", &format!("{ip}/30"), "dev", &n]);
        host.exec(&["ip", "link", "set", &n, "up"]);
        host.exec(&["ip", "link", "set", "lo", "up"]);
        host
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", &self.ns];
        all.extend_from_slice(args);
        sh(&all);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{}h", self.ns)])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Forward `listen` to `to`: the broker listens on loopback only.
async fn forward(listen: String, to: String) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(&listen).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

/// The target: `200 ok` to any request, until aborted (then connections are refused).
async fn target(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind(("0.0.0.0", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    })
}

fn votes(row: &Value) -> Vec<(String, String)> {
    row["Votes"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| {
                    (
                        v["Watcher"].as_str().unwrap().to_owned(),
                        v["Status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_watcher_cut_off_is_outvoted_and_a_real_outage_is_agreed() {
    let sys = System::start_with(Engine::Podman, &[("ELK_WRITER__STALE_AFTER_SECS", "20")]).await;
    let tport = free_port();
    let mut server = target(tport).await;
    let broker = sys
        .vhost
        .url
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let dir = std::env::temp_dir().join(format!("elk-vantage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = 200 + (std::process::id() % 50) as u8;
    let mut hosts = Vec::new();
    let mut watchers: Vec<Program> = Vec::new();
    let mut proxies = Vec::new();
    for (i, id) in ["vp-a", "vp-b", "vp-c"].into_iter().enumerate() {
        let host = Host::new(base + i as u8);
        let bport = free_port();
        proxies.push(forward(format!("{}:{bport}", host.root_ip), broker.clone()).await);
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[services]]\nname = \"web\"\nhttp = {{ url = \"http://{}:{tport}/\" }}\n\
                 interval_secs = 1\ntimeout_secs = 0.5\nfall = 2\nrise = 1\nstart_grace_secs = 5\n",
                host.root_ip
            ),
        )
        .unwrap();
        let amqp = sys
            .vhost
            .url
            .replacen(&broker, &format!("{}:{bport}", host.root_ip), 1);
        let mut cmd = program("ip");
        cmd.args(["netns", "exec", &host.ns])
            .arg(binary("elkservice-watcher"))
            .arg("--config")
            .arg(&config)
            .env("DOCKER_HOST", Engine::Podman.host())
            .env("AMQP_URL", amqp)
            .env("ELK_WATCHER__ID", id)
            .env("ELK_WATCHER__LABEL", format!("{}.none", sys.label))
            .env("ELK_WATCHER__LISTEN", "127.0.0.1:9188")
            .env("ELK_WATCHER__HEARTBEAT_SECS", "2")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        watchers.push(Program(cmd.spawn().unwrap()));
        hosts.push(host);
    }
    let all = |status: &'static str| {
        move |row: &Value| votes(row).iter().filter(|(_, s)| s == status).count()
    };
    let row = eventually(60, "web normal, seen by all three", || async {
        sys.row("web")
            .await
            .filter(|r| r["Status"] == "normal" && all("normal")(r) == 3)
    })
    .await;
    let id = row["Id"].as_i64().unwrap();
    let before = sys.events(id).await.len();

    // c loses the target (not the broker): its vote turns down, the row stays.
    let c = &hosts[2];
    c.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-d",
        &c.root_ip,
        "-p",
        "tcp",
        "--dport",
        &tport.to_string(),
        "-j",
        "DROP",
    ]);
    let row = eventually(30, "c to vote down", || async {
        sys.row("web")
            .await
            .filter(|r| votes(r).contains(&("vp-c".into(), "down".into())))
    })
    .await;
    assert_eq!(row["Status"], "normal", "{row}");
    // Keep it cut off over several more heartbeats and probes.
    let seen_at = row["LastCheckedAt"].as_str().unwrap().to_owned();
    let later = eventually(30, "more observations while c is cut off", || async {
        sys.row("web")
            .await
            .filter(|r| r["LastCheckedAt"].as_str().unwrap() > seen_at.as_str())
    })
    .await;
    assert_eq!(later["Status"], "normal", "{later}");
    let detail = later["Detail"].as_str().unwrap_or_default();
    assert!(detail.contains("normal: 2 of 3 watchers"), "{detail}");
    assert_eq!(
        sys.events(id).await.len(),
        before,
        "no transition while c is cut off"
    );
    c.exec(&["iptables", "-F", "OUTPUT"]);

    // The target stops: all three see it, one transition into down.
    server.abort();
    let _ = (&mut server).await;
    let row = eventually(30, "web down, agreed by all three", || async {
        sys.row("web")
            .await
            .filter(|r| r["Status"] == "down" && all("down")(r) == 3)
    })
    .await;
    assert_eq!(row["FailedCount"], 1, "{row}");
    let history = sys.events(id).await;
    let downs = history.iter().filter(|h| h.1 == "down").count();
    assert_eq!(downs, 1, "{history:?}");
    assert!(
        row["Detail"]
            .as_str()
            .unwrap()
            .contains("down: 3 of 3 watchers"),
        "{row}"
    );
    drop(watchers);
    for p in proxies {
        p.abort();
    }
    let _ = std::fs::remove_dir_all(dir);
}
