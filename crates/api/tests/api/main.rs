//! Integration tests: the API on a random port over a fresh database of its own
//! on the real MariaDB (DATABASE_URL names the server; `scripts/services` starts it).

mod atom;
mod auth;
mod badge;
mod changes;
mod concurrency;
mod crud;
mod events;
mod helpers;
mod listing;
mod model;
mod openapi;
mod ops;
mod process;
mod silences;
mod stream;
mod tls;
mod truth;
mod watchers;
