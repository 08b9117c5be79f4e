//! What every handler can reach. It sits below the modules that use it
//! (auth, observe, routes), and [`crate::startup`] builds it.

use crate::keys::KeyRing;
use crate::live::FeedHub;
use crate::metrics::Metrics;
use crate::model::ReadModel;
use crate::writes::Writes;
use sqlx::MySqlPool;
use std::sync::Arc;

pub struct AppState {
    pub pool: MySqlPool,
    pub keys: KeyRing,
    pub auth_reads: bool,
    pub metrics: Metrics,
    pub feed: FeedHub,
    /// The rows in memory, unless `api.read_model_max_lag_ms` is 0.
    pub model: Option<Arc<ReadModel>>,
    pub writes: Writes,
}
