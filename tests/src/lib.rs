//! The whole system for end-to-end tests: the api, writer and watcher binaries
//! started as processes against a database, a vhost and a label key of the
//! test's own. The binaries are the workspace's (`cargo test --workspace`
//! builds them next to this test).

use elkservice_testkit::{
    eventually, free_port, get_json, program, wait_delivering, Container, Engine, TestDatabase,
    TestVhost,
};
use std::path::PathBuf;
use std::process::Stdio;

pub const KEY: &str = "e2e-test-key";

/// A binary of the workspace, built next to this test.
pub fn binary(name: &str) -> PathBuf {
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
pub use elkservice_testkit::Killed as Program;

pub struct System {
    /// The engine whose containers the watcher follows.
    pub engine: Engine,
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub label: String,
    pub api: String,
    pub writer_port: u16,
    pub watcher_port: u16,
    pub programs: Vec<Program>,
    pub client: reqwest::Client,
    /// Settings given to every program, on top of the test's own.
    settings: Vec<(&'static str, String)>,
}

fn spawn(name: &str, envs: &[(&str, String)], settings: &[(&'static str, String)]) -> Program {
    let mut cmd = program(binary(name));
    cmd.envs(envs.iter().chain(settings).map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Program(cmd.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}")))
}

async fn healthy(url: String, key: &'static str) -> Option<()> {
    let v = get_json(&reqwest::Client::new(), &url).await?;
    (key.is_empty() || v[key] == true).then_some(())
}

/// The api alone over a database of its own: for what needs no broker or
/// engine (the status page at size).
pub struct Api {
    pub db: TestDatabase,
    pub url: String,
    _program: Program,
}

impl Api {
    pub async fn start() -> Self {
        let db = TestDatabase::new();
        let port = free_port();
        let program = spawn(
            "elkservice-api",
            &[
                ("DATABASE_URL", db.url.clone()),
                ("ELK_API__LISTEN", format!("127.0.0.1:{port}")),
                ("ELK_API__KEYS", elkservice_api::keys::digest(KEY)),
            ],
            &[],
        );
        let url = format!("http://127.0.0.1:{port}");
        eventually(60, "the api to be ready", || {
            healthy(format!("{url}/readyz"), "")
        })
        .await;
        Api {
            db,
            url,
            _program: program,
        }
    }
}

impl System {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, &[]).await
    }

    /// The system with `ELK_*` settings of the test's own for every program
    /// (each reads only its own sections).
    pub async fn start_with(engine: Engine, settings: &[(&'static str, &str)]) -> Self {
        let db = TestDatabase::new();
        let vhost = TestVhost::create().await;
        let label = format!("e2e.{}", vhost.short_id());
        let (api_port, writer_port, watcher_port) = (free_port(), free_port(), free_port());
        let mut sys = System {
            engine,
            api: format!("http://127.0.0.1:{api_port}"),
            writer_port,
            watcher_port,
            programs: vec![],
            client: reqwest::Client::new(),
            db,
            vhost,
            label,
            settings: settings.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        sys.programs.push(spawn(
            "elkservice-api",
            &[
                ("DATABASE_URL", sys.db.url.clone()),
                ("ELK_API__LISTEN", format!("127.0.0.1:{api_port}")),
                ("ELK_API__KEYS", elkservice_api::keys::digest(KEY)),
            ],
            &sys.settings,
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
        let watcher = sys.start_watcher().await;
        sys.programs.push(watcher);
        sys
    }

    /// Start a watcher and wait until it sees the engine and the broker.
    pub async fn start_watcher(&self) -> Program {
        let docker = self.engine.host();
        let port = self.watcher_port;
        let watcher = spawn(
            "elkservice-watcher",
            &[
                ("DOCKER_HOST", docker),
                ("AMQP_URL", self.vhost.url.clone()),
                ("ELK_WATCHER__LABEL", self.label.clone()),
                ("ELK_WATCHER__LISTEN", format!("127.0.0.1:{port}")),
            ],
            &self.settings,
        );
        eventually(
            60,
            "the watcher to see the engine and the broker",
            || async move {
                healthy(format!("http://127.0.0.1:{port}/readyz"), "engine").await?;
                healthy(format!("http://127.0.0.1:{port}/readyz"), "broker").await
            },
        )
        .await;
        watcher
    }

    pub fn spawn_writer(&self) -> Program {
        self.spawn_writer_on(self.writer_port)
    }

    /// Another writer, with its ops listener on `port`.
    pub fn spawn_writer_on(&self, port: u16) -> Program {
        spawn(
            "elkservice-writer",
            &[
                ("DATABASE_URL", self.db.url.clone()),
                ("AMQP_URL", self.vhost.url.clone()),
                ("ELK_WRITER__LISTEN", format!("127.0.0.1:{port}")),
            ],
            &self.settings,
        )
    }

    /// A notifier with these `[[notifier.webhooks]]` (TOML), delivering.
    pub async fn start_notifier(&self, webhooks: &str) -> Program {
        let config =
            std::env::temp_dir().join(format!("elk-e2e-notifier-{}.toml", self.db.short_id()));
        std::fs::write(&config, format!("[notifier]\npoll_ms = 50\n{webhooks}")).unwrap();
        let port = free_port();
        let mut cmd = program(binary("elkservice-notifier"));
        cmd.arg("--config")
            .arg(&config)
            .env("DATABASE_URL", &self.db.url)
            .env("ELK_NOTIFIER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let notifier = Program(cmd.spawn().expect("the notifier starts"));
        wait_delivering(port).await;
        // Read at start; not needed any more.
        let _ = std::fs::remove_file(&config);
        notifier
    }

    /// Another api process on the same database; returns its base URL.
    pub async fn start_api(&mut self) -> String {
        self.start_api_with(&[]).await
    }

    /// Another api process on the same database, with more variables.
    pub async fn start_api_with(&mut self, more: &[(&str, String)]) -> String {
        let port = free_port();
        let mut envs = vec![
            ("DATABASE_URL", self.db.url.clone()),
            ("ELK_API__LISTEN", format!("127.0.0.1:{port}")),
            ("ELK_API__KEYS", elkservice_api::keys::digest(KEY)),
        ];
        envs.extend_from_slice(more);
        self.programs
            .push(spawn("elkservice-api", &envs, &self.settings));
        let url = format!("http://127.0.0.1:{port}");
        eventually(60, "another api to be ready", || {
            healthy(format!("{url}/readyz"), "")
        })
        .await;
        url
    }

    /// The row of a service, through the API.
    pub async fn row(&self, name: &str) -> Option<serde_json::Value> {
        let list = get_json(
            &self.client,
            &format!("{}/elkservice?query=Name:{name}", self.api),
        )
        .await?;
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
    /// Delete a row through the API.
    pub async fn delete(&self, id: i64) -> u16 {
        self.client
            .delete(format!("{}/elkservice/{id}", self.api))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A container labelled for this system's watcher, named after its service.
    pub fn run_container(&self, service: &str) -> Container {
        self.engine
            .run_labelled(&self.label, service, &[], &["/bin/sleep", "100000"])
    }
}
