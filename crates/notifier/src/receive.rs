//! `elkservice-notifier receive`: a webhook receiver that prints what it
//! gets, for trying the notifier out (scripts/up and the compose demo run
//! one). Repeats (a key it has printed already) are counted, not printed.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

pub async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let seen = web::Data::new(Mutex::new(HashSet::<String>::new()));
    println!("receiving webhooks on http://{listen}/");
    HttpServer::new(move || {
        App::new()
            .app_data(seen.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(listen)?
    .run()
    .await
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Mutex<HashSet<String>>>,
) -> HttpResponse {
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    if !seen.lock().expect("not poisoned").insert(key.clone()) {
        println!("[{key}] (a repeat, dropped)");
        return HttpResponse::Ok().finish();
    }
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = value["Summary"]
        .as_str()
        .or_else(|| value["text"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let kind = value["Notification"].as_str().unwrap_or("message");
    println!("[{key}] {kind}: {text}");
    HttpResponse::Ok().finish()
}
