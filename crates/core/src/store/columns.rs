//! The columns of `elkservice` and how a row's values are read back, shared by
//! every statement in this module's siblings.

use crate::domain::{InvalidStatus, ServiceName, Status};
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::Row;

/// A column of `elkservice`, with the JSON name a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Id,
    Name,
    Status,
    Running,
    FailedCount,
    Detail,
    StatusChangedAt,
    LastCheckedAt,
    CreatedAt,
    UpdatedAt,
}

impl Field {
    /// In the order of [`SERVICE_COLUMNS`] and of the JSON.
    pub const ALL: [Field; 10] = [
        Field::Id,
        Field::Name,
        Field::Status,
        Field::Running,
        Field::FailedCount,
        Field::Detail,
        Field::StatusChangedAt,
        Field::LastCheckedAt,
        Field::CreatedAt,
        Field::UpdatedAt,
    ];

    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "Id",
            Field::Name => "Name",
            Field::Status => "Status",
            Field::Running => "Running",
            Field::FailedCount => "FailedCount",
            Field::Detail => "Detail",
            Field::StatusChangedAt => "StatusChangedAt",
            Field::LastCheckedAt => "LastCheckedAt",
            Field::CreatedAt => "CreatedAt",
            Field::UpdatedAt => "UpdatedAt",
        }
    }

    /// The column name.
    pub fn column(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Name => "name",
            Field::Status => "status",
            Field::Running => "running",
            Field::FailedCount => "failed_count",
            Field::Detail => "detail",
            Field::StatusChangedAt => "status_changed_at",
            Field::LastCheckedAt => "last_checked_at",
            Field::CreatedAt => "created_at",
            Field::UpdatedAt => "updated_at",
        }
    }
}

/// The columns of `elkservice` that make a [`crate::Service`], in [`Field::ALL`]'s order.
pub const SERVICE_COLUMNS: &str = "id, name, status, running, failed_count, detail, \
     status_changed_at, last_checked_at, created_at, updated_at";

pub(super) fn decode_error(
    column: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    }
}

/// The `name` column. It has a binary collation (container names are
/// case-sensitive), which sqlx reports as VARBINARY; the bytes are UTF-8 text.
pub(super) fn name(row: &MySqlRow) -> Result<ServiceName, sqlx::Error> {
    let raw: String = row.try_get_unchecked("name")?;
    ServiceName::parse(&raw).map_err(|e| decode_error("name", e))
}

/// A status column. A value outside the five is an error, wherever it is read:
/// only this code writes the column, so one would mean the data is not ours.
pub(super) fn status(row: &MySqlRow, column: &str) -> Result<Status, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    raw.parse()
        .map_err(|e: InvalidStatus| decode_error(column, e))
}

/// Like [`status`], for a column that may be NULL.
pub(super) fn optional_status(row: &MySqlRow, column: &str) -> Result<Option<Status>, sqlx::Error> {
    let raw: Option<String> = row.try_get(column)?;
    raw.map(|s| {
        s.parse()
            .map_err(|e: InvalidStatus| decode_error(column, e))
    })
    .transpose()
}

/// A time as a `DATETIME(6)` column keeps it: to the microsecond, the rest
/// cut off (as sqlx sends it). A row built in memory from an observation's
/// nanosecond time must hold this, to be the row that a read returns.
pub fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Most rows in one multi-row statement.
const MAX_CHUNK: usize = 256;
/// Up to this many rows go in one statement of their own size.
const EXACT_UP_TO: usize = 64;

/// `items` in chunks for multi-row statements: up to [`EXACT_UP_TO`] in one,
/// more in chunks whose sizes are powers of two (at most [`MAX_CHUNK`]).
///
/// sqlx prepares each distinct statement text and keeps a cache of them
/// ([`crate::db::STATEMENT_CACHE`] per connection). Small sets, which are
/// common (a group of PUTs, a quiet writer's batch), take one round trip of
/// their exact size: 64 shapes. Larger ones vary freely, and one statement
/// per size would be prepared again on almost every batch: power-of-two
/// chunks bound those to nine more shapes.
pub(super) fn statement_chunks<T>(items: &[T]) -> Vec<&[T]> {
    match items.len() {
        0 => Vec::new(),
        n if n <= EXACT_UP_TO => vec![items],
        _ => pow2_chunks(items),
    }
}

/// `items` padded to a power-of-two length by repeating the last, for a list
/// in which a repeat changes nothing (`IN (…)`, `CASE id WHEN …`): so that a
/// statement's text comes in few shapes (see [`statement_chunks`]).
pub(super) fn pow2_padded<T>(items: &[T]) -> impl Iterator<Item = &T> {
    (0..items.len().next_power_of_two()).map(move |i| &items[i.min(items.len() - 1)])
}

/// `items` in chunks whose sizes are powers of two (at most [`MAX_CHUNK`]).
pub(super) fn pow2_chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = MAX_CHUNK.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_follows_the_fields() {
        let columns: Vec<_> = Field::ALL.iter().map(|f| f.column()).collect();
        assert_eq!(SERVICE_COLUMNS, columns.join(", "));
    }

    #[test]
    fn chunks_are_powers_of_two_that_cover_everything_in_order() {
        let items: Vec<usize> = (0..1000).collect();
        let chunks = pow2_chunks(&items);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(chunks.concat(), items);
        assert_eq!(pow2_chunks(&items[..1]).len(), 1);
        assert!(pow2_chunks::<usize>(&[]).is_empty());
    }

    #[test]
    fn small_sets_take_one_statement() {
        let items: Vec<usize> = (0..100).collect();
        for n in [1, 7, 64] {
            assert_eq!(statement_chunks(&items[..n]), [&items[..n]]);
        }
        let sizes: Vec<usize> = statement_chunks(&items).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [64, 32, 4]);
        assert!(statement_chunks::<usize>(&[]).is_empty());
    }
}
