//! Rows for unit tests.

use elkservice_core::{Service, ServiceName, Status};

/// A row as a watcher would have left it: running unless `down`, never
/// changed, made at a fixed time.
pub fn service(id: i64, name: &str, status: Status) -> Service {
    let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    Service {
        id,
        name: ServiceName::parse(name).unwrap(),
        status,
        running: status != Status::Down,
        failed_count: 0,
        detail: None,
        status_changed_at: None,
        last_checked_at: None,
        created_at: t,
        updated_at: t,
        votes: Vec::new(),
    }
}
