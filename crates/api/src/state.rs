//! What every handler can reach. It sits below the modules that use it
//! (auth, observe, routes), and [`crate::startup`] builds it.

use crate::keys::KeyRing;
use crate::live::FeedHub;
use crate::metrics::Metrics;
use sqlx::MySqlPool;

pub struct AppState {
    pub pool: MySqlPool,
    pub keys: KeyRing,
    pub auth_reads: bool,
    pub metrics: Metrics,
    pub feed: FeedHub,
}
