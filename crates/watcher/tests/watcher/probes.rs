//! The watcher's own probes and services named in config.

use super::Harness;
use actix_web::{web, App, HttpResponse, HttpServer};
use elkservice_core::ServiceName;
use elkservice_core::Status::{Degraded, Down, Normal, Starting};
use elkservice_testkit::{free_port, on_both_engines, Engine};
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
    .listen(listener)
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
