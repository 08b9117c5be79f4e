//! The whole system for end-to-end tests: the api, writer and watcher binaries
//! started as processes against a database, a vhost and a label key of the
//! test's own. The binaries are the workspace's (`cargo test --workspace`
//! builds them next to this test).

use elkservice_testkit::{
    eventually, free_port, program, run_labelled, Container, TestDatabase, TestVhost,
};
use std::path::PathBuf;
use std::process::{Child, Stdio};

pub const KEY: &str = "e2e-test-key";

fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is not built; run the tests with: cargo test --workspace",
        path.display()
    );
    path
}

/// A program that is killed when the test ends.
pub struct Program(pub Child);

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct System {
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub label: String,
    pub api: String,
    pub writer_port: u16,
    pub programs: Vec<Program>,
    pub client: reqwest::Client,
}

fn spawn(name: &str, envs: &[(&str, String)]) -> Program {
    let mut cmd = program(binary(name));
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Program(cmd.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}")))
}

async fn healthy(url: String, key: &'static str) -> Option<()> {
    let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    (key.is_empty() || v[key] == true).then_some(())
}

impl System {
    pub async fn start() -> Self {
        let db = TestDatabase::new();
        let vhost = TestVhost::create().await;
        let label = format!("e2e.{}", vhost.short_id());
        let (api_port, writer_port, watcher_port) = (free_port(), free_port(), free_port());
        let docker =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///run/elk-podman.sock".into());
        let mut sys = System {
            api: format!("http://127.0.0.1:{api_port}"),
            writer_port,
            programs: vec![],
            client: reqwest::Client::new(),
            db,
            vhost,
            label,
        };
        sys.programs.push(spawn(
            "elkservice-api",
            &[
                ("DATABASE_URL", sys.db.url.clone()),
                ("ELK_API__LISTEN", format!("127.0.0.1:{api_port}")),
                ("ELK_API__KEYS", elkservice_api::keys::digest(KEY)),
            ],
        ));
        eventually(60, "the api to be ready", || {
            healthy(format!("{}/readyz", sys.api), "")
        })
        .await;
        sys.programs.push(sys.spawn_writer());
        eventually(60, "the writer to consume", || {
            healthy(format!("http://127.0.0.1:{writer_port}/readyz"), "broker")
        })
        .await;
        sys.programs.push(spawn(
            "elkservice-watcher",
            &[
                ("DOCKER_HOST", docker),
                ("AMQP_URL", sys.vhost.url.clone()),
                ("ELK_WATCHER__LABEL", sys.label.clone()),
                ("ELK_WATCHER__LISTEN", format!("127.0.0.1:{watcher_port}")),
            ],
        ));
        eventually(
            60,
            "the watcher to see the engine and the broker",
            || async move {
                healthy(format!("http://127.0.0.1:{watcher_port}/readyz"), "engine").await?;
                healthy(format!("http://127.0.0.1:{watcher_port}/readyz"), "broker").await
            },
        )
        .await;
        sys
    }

    pub fn spawn_writer(&self) -> Program {
        spawn(
            "elkservice-writer",
            &[
                ("DATABASE_URL", self.db.url.clone()),
                ("AMQP_URL", self.vhost.url.clone()),
                (
                    "ELK_WRITER__LISTEN",
                    format!("127.0.0.1:{}", self.writer_port),
                ),
            ],
        )
    }

    /// The row of a service, through the API.
    pub async fn row(&self, name: &str) -> Option<serde_json::Value> {
        let list: serde_json::Value = self
            .client
            .get(format!("{}/elkservice?query=Name:{name}", self.api))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        list.get(0).cloned()
    }

    pub async fn events(&self, id: i64) -> Vec<(serde_json::Value, serde_json::Value)> {
        let list: serde_json::Value = self
            .client
            .get(format!("{}/elkservice/{id}/events?limit=0", self.api))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| (e["FromStatus"].clone(), e["Status"].clone()))
            .collect()
    }
}

impl System {
    /// A container labelled for this system's watcher, named after its service.
    pub fn run_container(&self, service: &str) -> Container {
        run_labelled(&self.label, service, &[], &["/bin/sleep", "100000"])
    }
}
