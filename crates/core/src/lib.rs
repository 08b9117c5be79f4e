//! What more than one elkservice program needs, defined once: the domain
//! (service names, statuses, the stored row), the status event on the wire and its
//! AMQP topology, reading bodies from outside as JSON objects only ([`json`]),
//! configuration loading, telemetry set-up, graceful shutdown, the operators'
//! metrics listener, the database connection with its migrations, how a
//! program's `main` ends ([`program`]), and [`store`]: every statement that
//! touches the tables.

pub mod amqp;
pub mod backoff;
pub mod config;
#[cfg(feature = "store")]
pub mod db;
pub mod domain;
pub mod event;
pub mod glob;
pub mod json;
pub mod ops;
pub mod program;
pub mod retry;
pub mod shutdown;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;

pub use domain::{Service, ServiceEvent, ServiceName, Status, Vote};
pub use event::StatusEvent;
