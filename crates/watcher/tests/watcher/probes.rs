//! The watcher's own probes and services named in config.

use super::Harness;
use actix_web::{web, App, HttpResponse, HttpServer};
use elkservice_core::ServiceName;
use elkservice_core::Status::{Degraded, Down, Normal, Starting};
use elkservice_testkit::{free_port, on_both_engines, Engine, TestPki};
use elkservice_watcher::probe::{HttpCheck, Preset};
use elkservice_watcher::settings::ServiceSettings;
use std::sync::{Arc, Mutex};

fn service(name: &str) -> ServiceSettings {
    ServiceSettings {
        name: ServiceName::parse(name).unwrap(),
        container: None,
        http: None,
        tcp: None,
        interval_secs: 0.1,
        timeout_secs: 0.05,
        fall: 2,
        rise: 2,
        start_grace_secs: 0.0,
    }
}

/// An Elasticsearch stand-in whose cluster colour the test sets.
async fn fake_elasticsearch(colour: Arc<Mutex<&'static str>>) -> u16 {
    fake_elasticsearch_on(colour, None).await
}

/// The same, over HTTPS with this certificate when given one.
async fn fake_elasticsearch_on(colour: Arc<Mutex<&'static str>>, tls: Option<&TestPki>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let colour = colour.clone();
        App::new().route(
            "/_cluster/health",
            web::get().to(move || {
                let c = *colour.lock().unwrap();
                async move {
                    HttpResponse::Ok()
                        .json(serde_json::json!({"cluster_name": "test", "status": c}))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    // Open connections do not hold the test's end.
    .shutdown_timeout(0);
    let server = match tls {
        Some(pki) => server.listen_rustls_0_23(listener, server_config(pki)),
        None => server.listen(listener),
    }
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

#[tokio::test]
async fn an_http_probe_follows_the_answer_of_elasticsearch() {
    let mut h = Harness::new(Engine::Podman).await;
    let colour = Arc::new(Mutex::new("green"));
    let port = fake_elasticsearch(colour.clone()).await;
    let mut settings = h.settings();
    settings.services = vec![ServiceSettings {
        http: Some(HttpCheck {
            url: format!("http://127.0.0.1:{port}/_cluster/health"),
            preset: Some(Preset::Elasticsearch),
            expect_status: vec![],
            json: vec![],
            ca_file: None,
            insecure: false,
        }),
        ..service("es-http")
    }];
    let _stop = h.start(settings);
    h.expect("es-http", "normal", |e| e.status == Normal).await;
    *colour.lock().unwrap() = "yellow";
    h.expect("es-http", "degraded on yellow", |e| {
        e.status == Degraded && e.running
    })
    .await;
    *colour.lock().unwrap() = "red";
    let e = h
        .expect("es-http", "down on red", |e| e.status == Down)
        .await;
    assert_eq!(e.detail.as_deref(), Some("red"));
    *colour.lock().unwrap() = "green";
    h.expect("es-http", "normal again", |e| e.status == Normal)
        .await;
}

fn server_config(pki: &TestPki) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&pki.cert_file)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key_file).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap()
}

/// Elasticsearch 8 speaks HTTPS with a certificate of its own authority:
/// trusted through `ca_file`, refused without it, accepted with `insecure`.
#[tokio::test]
async fn an_https_probe_trusts_its_ca_file_and_nothing_else() {
    let mut h = Harness::new(Engine::Podman).await;
    let pki = TestPki::new();
    let port = fake_elasticsearch_on(Arc::new(Mutex::new("green")), Some(&pki)).await;
    let https = |name: &str, ca_file: Option<std::path::PathBuf>, insecure: bool| ServiceSettings {
        http: Some(HttpCheck {
            url: format!("https://localhost:{port}/_cluster/health"),
            preset: Some(Preset::Elasticsearch),
            expect_status: vec![],
            json: vec![],
            ca_file,
            insecure,
        }),
        ..service(name)
    };
    let mut settings = h.settings();
    settings.services = vec![
        https("es-trusted", Some(pki.ca_file.clone()), false),
        https("es-untrusted", None, false),
        https("es-insecure", None, true),
    ];
    let _stop = h.start(settings);
    // The three report in any order: wait for each one's verdict.
    let mut verdicts = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while verdicts.len() < 3 {
        let e = tokio::time::timeout_at(deadline, h.events.recv())
            .await
            .unwrap_or_else(|_| panic!("verdicts so far: {verdicts:?}"))
            .unwrap();
        if matches!(e.status, Normal | Down) {
            verdicts.insert(
                e.service.to_string(),
                (e.status, e.detail.unwrap_or_default()),
            );
        }
    }
    assert_eq!(verdicts["es-trusted"], (Normal, "green".to_owned()));
    assert_eq!(verdicts["es-insecure"], (Normal, "green".to_owned()));
    let (status, detail) = &verdicts["es-untrusted"];
    assert_eq!(*status, Down);
    assert!(detail.to_lowercase().contains("certificate"), "{detail}");
}

#[test]
fn a_ca_file_that_is_not_one_is_a_config_error() {
    let check = HttpCheck {
        url: "https://localhost:9200/".into(),
        preset: None,
        expect_status: vec![],
        json: vec![],
        ca_file: Some("/nonexistent/ca.pem".into()),
        insecure: false,
    };
    let err = check.client(&reqwest::Client::new()).unwrap_err();
    assert!(err.starts_with("http.ca_file /nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn a_tcp_probe_starts_in_grace_goes_down_and_recovers() {
    let mut h = Harness::new(Engine::Podman).await;
    // A free port with nothing listening yet.
    let port = free_port();
    let mut settings = h.settings();
    settings.services = vec![ServiceSettings {
        tcp: Some(format!("127.0.0.1:{port}")),
        start_grace_secs: 0.5,
        ..service("logstash-tcp")
    }];
    let _stop = h.start(settings);
    let e = h
        .expect("logstash-tcp", "starting", |e| e.status == Starting)
        .await;
    assert!(!e.running);
    let e = h
        .expect("logstash-tcp", "down once the grace is over", |e| {
            e.status == Down
        })
        .await;
    assert!(
        e.detail.as_deref().unwrap_or_default().contains("refused"),
        "{:?}",
        e.detail
    );
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    h.expect("logstash-tcp", "normal once it listens", |e| {
        e.status == Normal && e.running
    })
    .await;
}

on_both_engines!(a_container_named_in_config_is_watched_without_a_label);

async fn a_container_named_in_config_is_watched_without_a_label(engine: Engine) {
    let mut h = Harness::new(engine).await;
    let name = format!("{}-plain", h.label.replace('.', "-"));
    let c = engine.run(&name, &[], &["/bin/sleep", "1000"]);
    let mut settings = h.settings();
    settings.services = vec![ServiceSettings {
        container: Some(name),
        ..service("nginx-by-name")
    }];
    let _stop = h.start(settings);
    h.expect("nginx-by-name", "normal", |e| e.status == Normal)
        .await;
    c.cli(&["kill"]);
    h.expect("nginx-by-name", "down", |e| e.status == Down)
        .await;
}
