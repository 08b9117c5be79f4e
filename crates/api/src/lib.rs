//! `elkservice-api`: the REST API over the status table.
//!
//! Modules, from the bottom up (each uses only those above it):
//! - [`keys`], [`metrics`], [`error`]: API keys, Prometheus metrics, and
//!   [`error::ApiError`], the one place where failures become HTTP responses.
//! - [`listing`]: Beego's GetAll parameters, parsed and turned into SQL (or
//!   answered over rows in memory).
//! - [`settings`], [`model`] (the rows in memory), [`live`] (this process's
//!   view of the change feed, which keeps the model current; [`pacer`]
//!   wakes each worker's streams a batch at a time),
//!   [`precondition`] (`ETag` and `If-Match`), [`writes`] (the transactions
//!   of POST, PUT and DELETE; PUTs group-committed), then [`state`]: what
//!   every handler can reach.
//! - [`auth`] (who may call) and [`observe`] (a log line and metrics per request).
//! - [`routes`]: the handlers, which read like the HTTP routes; the SQL they
//!   run is in `elkservice_core::store`.
//! - [`openapi`] describes the routes; [`tls`] reads the HTTPS certificate;
//!   [`startup::Application`] builds the server the same way for `main` and
//!   for the tests; [`truth`] brings changes made to the table outside
//!   elkservice into the feed.

pub mod auth;
pub mod error;
pub mod keys;
pub mod listing;
pub mod live;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod openapi;
pub mod overview;
pub mod pacer;
pub mod precondition;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod tls;
pub mod truth;
pub mod uptime;
pub mod writes;

#[cfg(test)]
mod testing;
