//! Integration tests of the writer against real RabbitMQ and MariaDB, each test
//! in a vhost and a database of its own.

mod faults;
mod harness;
mod isolation;
mod permissions;
mod rule;
mod selfcheck;
mod silence;
mod votes;
