//! What more than one elkservice program needs, defined once: the domain
//! (service names, statuses, the stored row), configuration loading, telemetry
//! set-up and the database connection with its migrations.

pub mod config;
pub mod db;
pub mod domain;
pub mod telemetry;

pub use domain::{Service, ServiceName, Status};
