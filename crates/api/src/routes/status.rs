//! The status page, served from the binary (no CDN): `/` redirects to
//! `/status/`, which lists every service live from the change stream. Each
//! service's element carries `data-service` and `data-status`.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("../../static/index.html");
const SCRIPT: &str = include_str!("../../static/app.js");
const STYLE: &str = include_str!("../../static/style.css");

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Small, and changed by a new binary: always revalidated.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `/` and `/status`: to the page.
pub async fn to_page() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/status/"))
        .finish()
}

pub async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}
