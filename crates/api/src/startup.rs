//! Building the server: the same path for `main` and for the tests.

use crate::error::ApiError;
use crate::live::{retention, FeedHub};
use crate::metrics::Metrics;
use crate::model::ReadModel;
use crate::observe::observe;
use crate::pacer::WorkerPacer;
use crate::settings::{ApiSettings, Settings};
use crate::state::AppState;
use crate::writes::Writes;
use crate::{openapi, routes, truth};
use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpServer};
use elkservice_core::db;
use elkservice_core::store::unannounced;
use sqlx::MySqlPool;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use utoipa_swagger_ui::SwaggerUi;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct Application {
    port: u16,
    server: Server,
    tasks: Tasks,
}

/// The api's own background work (the feed's reader, the feed's retention,
/// the watch for changes made outside it), stopped with the server, or with
/// an application that never ran.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

impl Application {
    /// Connect to the database, migrate it, and bind the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::connect_and_migrate(&settings.database).await?;
        // Here, not in a migration: a restore without them is mended by a restart.
        unannounced::install(&mut *pool.acquire().await?).await?;
        Self::with_pool(&settings.api, pool, settings.database.max_connections)
    }

    /// Bind the listener and build the server over an existing pool.
    pub fn with_pool(api: &ApiSettings, pool: MySqlPool, pool_max: u32) -> anyhow::Result<Self> {
        // Read before anything starts: a bad certificate stops the api at once.
        let tls = match (&api.tls_cert, &api.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let listener = TcpListener::bind(api.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", api.listen))?;
        let port = listener.local_addr()?.port();
        if api.keys.is_empty() {
            tracing::warn!("api.keys is empty: every write will be refused with 401");
        }
        let model = (api.read_model_max_lag_ms > 0).then(|| {
            Arc::new(ReadModel::new(Duration::from_millis(
                api.read_model_max_lag_ms,
            )))
        });
        let metrics = Metrics::new(pool_max);
        let (feed, reader) = FeedHub::start(pool.clone(), model.clone());
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            keys: api.keys.clone(),
            auth_reads: api.auth_reads,
            feed,
            writes: Writes::start(pool.clone(), model.clone(), metrics.put_group.clone()),
            metrics,
            model,
        });
        let tasks = Tasks(vec![
            reader,
            tokio::spawn(retention::run(state.pool.clone(), api.feed_retention_days)),
            tokio::spawn(truth::run(
                state.pool.clone(),
                state.model.clone(),
                Duration::from_secs(api.external_change_secs),
            )),
        ]);
        let spec = openapi::spec();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(WorkerPacer::default())
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .content_type_required(false)
                        .error_handler(json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .app_data(web::PathConfig::default().error_handler(path_error))
                .wrap(from_fn(observe))
                .configure(routes::configure)
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .url("/api-docs/openapi.json", spec.clone()),
                )
                .default_service(web::to(routes::not_found))
        });
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        // A client that closes its side has gone, even while its response is
        // still being written. The default (half-closed connections allowed)
        // notices only when a write fails, which for a quiet stream comes with
        // the second heartbeat: up to 30 s during which a gone stream keeps
        // its buffers. A client that connects to the stream and leaves
        // thousands of times a second would grow the api by hundreds of MiB.
        .h1_allow_half_closed(false)
        .shutdown_timeout(api.shutdown_timeout_secs)
        .run();
        Ok(Application {
            port,
            server,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM or SIGINT, then let in-flight requests finish;
    /// the background tasks stop after them.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application { server, tasks, .. } = self;
        let served = server.await;
        drop(tasks);
        served
    }
}

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the body may be at most {limit} bytes"))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Unprocessable(serde_json::json!({ "message": e.to_string() }))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        other => ApiError::BadRequest(other.to_string()),
    }
    .into()
}

fn query_error(err: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("query string: {err}")).into()
}

fn path_error(err: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("path: {err}; Id must be an integer")).into()
}
