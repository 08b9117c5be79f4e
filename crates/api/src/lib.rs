//! `elkservice-api`: the REST API over the status table.
//!
//! [`startup::Application`] builds the server the same way for `main` and for the
//! tests; [`routes`] holds the handlers, which read like the HTTP contract;
//! [`listing`] parses Beego's GetAll parameters; [`error::ApiError`] is the one
//! place where failures become HTTP responses.

pub mod auth;
pub mod error;
pub mod listing;
pub mod observe;
pub mod openapi;
pub mod routes;
pub mod settings;
pub mod startup;
