//! The tables, in one place: every column list, row decoding, and each
//! statement that the api and the writer run. Nothing outside this module
//! names a column of `elkservice` or `elkservice_event`.
//!
//! - [`Field`]: the columns of `elkservice` with their JSON names (in
//!   `columns`, with the decoding of stored values that every sibling uses).
//! - [`services`]: reading and changing rows one at a time (the api).
//! - [`observations`]: the writer's locking read and its batched statements.
//! - [`history`]: the transitions table, written by both and read by the api.
//! - [`feed`]: the change feed, every change numbered in commit order.
//! - [`script`]: a transaction's writes and its commit sent as one query
//!   (the api's PUTs).
//! - [`selfcheck`]: the writers' dead man's switch, the nonces that arrived.
//! - [`silences`]: when notifications about services are held back.
//! - [`unannounced`]: changes made to the table by plain SQL, noted by its
//!   triggers, until the api records them in the feed.
//! - [`notifications`]: the notifier's outbox, its per-service tracks and its
//!   cursor in the feed.

mod columns;
pub mod feed;
pub mod history;
pub mod notifications;
pub mod observations;
pub mod script;
pub mod selfcheck;
pub mod services;
pub mod silences;
pub mod unannounced;
pub mod votes;

pub use columns::{stored_time, Field, SERVICE_COLUMNS};
pub use history::HistoryRow;
