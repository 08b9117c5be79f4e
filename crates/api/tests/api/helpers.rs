//! `spawn_app()`: a fresh database, migrations, the app on a random port, and
//! typed helpers. The database is dropped with the `TestApp`.

use elkservice_api::keys::{digest, KeyRing};
use elkservice_api::settings::{ApiSettings, Settings};
use elkservice_api::startup::Application;
use elkservice_core::config::{DatabaseSettings, LogFormat, LogSettings};
use elkservice_testkit::{mysql_server_url, TestDatabase};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use std::sync::Arc;

pub const KEY: &str = "test-key-that-the-tests-use";

pub fn test_settings(database_url: String) -> Settings {
    Settings {
        api: ApiSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            keys: KeyRing::parse([digest(KEY).as_str()]).unwrap(),
            auth_reads: false,
            shutdown_timeout_secs: 1,
            feed_retention_days: 30,
            read_model_max_lag_ms: 1000,
            external_change_secs: 2,
            tls_cert: None,
            tls_key: None,
        },
        database: DatabaseSettings {
            url: database_url,
            max_connections: 5,
            acquire_timeout_secs: 5,
        },
        log: LogSettings {
            format: LogFormat::Json,
        },
    }
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    /// Shared by the processes over it; dropped with the last.
    pub db: Arc<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(TestDatabase::new(), tweak).await
}

/// The app over a database the test has prepared (its migrations run first).
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    spawn(db, |_| {}).await
}

async fn spawn(db: TestDatabase, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(db.url.clone());
    tweak(&mut settings);
    let app = Application::build(settings).await.unwrap_or_else(|e| {
        panic!(
            "cannot start the API on MariaDB at {}: {e:#}\n\
             Start the services with: eval \"$(scripts/services)\"",
            mysql_server_url()
        )
    });
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: Client::new(),
        db: Arc::new(db),
    }
}

impl TestApp {
    /// Another api process over the same database, as a second replica
    /// behind a load balancer would be.
    pub async fn another(&self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(self.db.url.clone());
        tweak(&mut settings);
        let app = Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: Client::new(),
            db: self.db.clone(),
        }
    }

    /// A sample of the api's `/metrics` (0 if absent), e.g.
    /// `elkservice_api_row_reads_total{source="memory"}`.
    pub async fn metric(&self, sample: String) -> f64 {
        let port = self.address.rsplit(':').next().unwrap().parse().unwrap();
        elkservice_testkit::scrape(port, &sample).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    /// A request with the test key.
    pub fn authed(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(KEY)
    }

    pub async fn post_service(&self, body: Value) -> Response {
        self.authed(reqwest::Method::POST, "/elkservice")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_service(&self, id: i64, body: Value) -> Response {
        self.authed(reqwest::Method::PUT, &format!("/elkservice/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Create a service and return its JSON.
    pub async fn create(&self, name: &str, status: &str) -> Value {
        let res = self
            .post_service(json!({"Name": name, "Status": status}))
            .await;
        assert_eq!(res.status(), 201, "creating {name}");
        res.json().await.unwrap()
    }

    /// `GET path`, asserting the status, returning the JSON body.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let res = self.get(path).send().await.unwrap();
        assert_eq!(res.status(), status, "GET {path}");
        res.json().await.unwrap()
    }

    /// Every row, straight from the database.
    pub async fn rows(&self) -> Vec<(i64, String, String)> {
        let mut conn = self.db.connect().await;
        sqlx::query_as("SELECT id, CONVERT(name USING utf8mb4), status FROM elkservice ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
}

/// Assert an error response: its status and the JSON error shape.
pub async fn assert_error(res: Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    assert!(res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")));
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "error field in {body}");
    assert!(body.get("detail").is_some(), "detail field in {body}");
    body
}
