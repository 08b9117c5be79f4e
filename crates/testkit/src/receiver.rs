//! A webhook receiver for the notifier's tests.

/// What a receiver got: the Idempotency-Key, the body (parsed, and as sent),
/// the headers, and when.
#[derive(Debug, Clone)]
pub struct Got {
    pub key: String,
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
    pub headers: actix_web::http::header::HeaderMap,
    /// The path it was POSTed to.
    pub path: String,
    pub at: std::time::Instant,
}

/// A webhook receiver on a port of its own (in the test's runtime) that
/// records what it gets, at `url` or any other path, and answers 500 to its
/// first `failures` requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
}

impl Receiver {
    pub fn start(failures: usize) -> Self {
        Self::start_failing(failures, std::time::Instant::now())
    }

    /// One that answers 500 to everything for `outage`.
    pub fn start_failing_for(outage: std::time::Duration) -> Self {
        Self::start_failing(0, std::time::Instant::now() + outage)
    }

    fn start_failing(failures: usize, until: std::time::Instant) -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use std::time::Instant;
        type Value = serde_json::Value;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let failing = Arc::new(AtomicUsize::new(failures));
        let (store, fail) = (got.clone(), failing.clone());
        let server = HttpServer::new(move || {
            let (store, fail) = (store.clone(), fail.clone());
            App::new().route(
                "/{path:.*}",
                web::post().to(move |req: HttpRequest, raw: web::Bytes| {
                    let (store, fail) = (store.clone(), fail.clone());
                    async move {
                        if Instant::now() < until
                            || fail
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                        {
                            return HttpResponse::InternalServerError().finish();
                        }
                        let Ok(body) = serde_json::from_slice::<Value>(&raw) else {
                            return HttpResponse::BadRequest().finish();
                        };
                        let key = req
                            .headers()
                            .get("Idempotency-Key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        store.lock().unwrap().push(Got {
                            key,
                            body,
                            raw: raw.to_vec(),
                            headers: req.headers().clone(),
                            path: req.path().to_owned(),
                            at: Instant::now(),
                        });
                        HttpResponse::Ok().finish()
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver { url, got }
    }

    /// What it got so far, in order.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}
