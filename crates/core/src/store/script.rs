//! A transaction's writes after its locking read, sent as one text-protocol
//! query that ends in `COMMIT`: one round trip to the database instead of one
//! per statement.
//!
//! Values go into the text as literals, never as SQL: strings as hex
//! (`_utf8mb4 X'…'`), whatever they hold and whatever the server's
//! `sql_mode` says about backslashes; numbers and times from their types.
//! MariaDB stops at a script's first failing statement, so the `COMMIT` at
//! its end runs only if every statement before it succeeded; on an error the
//! caller rolls back, as after any failed statement.
//!
//! It pays where a transaction is short and its round trips are most of its
//! time: the api's group commits of PUTs. The writer's batches keep their
//! prepared statements: as scripts, a burst of 100,000 events cost MariaDB
//! 3.2–3.6 CPU seconds against 2.2–2.9 (its bench, runs taken by turns), as
//! the server parses every value of the text, and the few round trips saved
//! are nothing beside a 40 ms transaction.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::mysql::MySqlQueryResult;
use sqlx::MySqlConnection;
use std::fmt::Write;

/// Statements to run together, then commit.
#[derive(Debug, Default)]
pub struct Script {
    /// Each sent as one query; a new one begins once the last has
    /// [`PART_BYTES`], so that none nears the server's packet limit
    /// (`max_allowed_packet`, 16 MiB by default).
    parts: Vec<String>,
    statements: usize,
}

/// About how much SQL goes in one query of a script. A statement's rows are
/// chunked by its maker ([`MAX_ROWS`]), so that one statement stays well
/// below the server's limit too.
const PART_BYTES: usize = 1 << 20;

/// Most rows in one statement of a script.
pub(super) const MAX_ROWS: usize = 256;

/// A value written into a script's text.
pub(super) trait Literal {
    fn write_to(&self, sql: &mut String);
}

impl Literal for i64 {
    fn write_to(&self, sql: &mut String) {
        write!(sql, "{self}").expect("writing to a String");
    }
}

impl Literal for u32 {
    fn write_to(&self, sql: &mut String) {
        write!(sql, "{self}").expect("writing to a String");
    }
}

impl Literal for bool {
    fn write_to(&self, sql: &mut String) {
        sql.push_str(if *self { "TRUE" } else { "FALSE" });
    }
}

impl Literal for &str {
    fn write_to(&self, sql: &mut String) {
        if self.is_empty() {
            // `X''` is not a valid literal.
            sql.push_str("''");
            return;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        sql.reserve(self.len() * 2 + 12);
        sql.push_str("_utf8mb4 X'");
        for byte in self.bytes() {
            sql.push(HEX[usize::from(byte >> 4)].into());
            sql.push(HEX[usize::from(byte & 0xf)].into());
        }
        sql.push('\'');
    }
}

impl Literal for String {
    fn write_to(&self, sql: &mut String) {
        self.as_str().write_to(sql);
    }
}

/// As `DATETIME(6)` keeps it: UTC, to the microsecond.
impl Literal for DateTime<Utc> {
    fn write_to(&self, sql: &mut String) {
        write!(sql, "'{}'", self.format("%Y-%m-%d %H:%M:%S%.6f")).expect("writing to a String");
    }
}

impl<T: Literal> Literal for Option<T> {
    fn write_to(&self, sql: &mut String) {
        match self {
            Some(v) => v.write_to(sql),
            None => sql.push_str("NULL"),
        }
    }
}

impl Script {
    /// Begin a statement with `text`; returns its place among the results.
    pub(super) fn statement(&mut self, text: &str) -> usize {
        match self.parts.last_mut() {
            Some(part) if part.len() < PART_BYTES => part.push_str(";\n"),
            _ => self.parts.push(String::new()),
        }
        self.sql().push_str(text);
        self.statements += 1;
        self.statements - 1
    }

    fn sql(&mut self) -> &mut String {
        self.parts.last_mut().expect("a statement was begun")
    }

    /// More SQL of the current statement.
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.sql().push_str(text);
        self
    }

    /// A value, as a literal.
    pub(super) fn value(&mut self, value: impl Literal) -> &mut Self {
        value.write_to(self.sql());
        self
    }

    /// `head VALUES (…), (…)` for `rows`, a statement per [`MAX_ROWS`] of
    /// them (as sqlx's `push_values` does for a prepared statement):
    /// `values` writes one row's values, without the parentheses.
    pub(super) fn insert<T>(
        &mut self,
        head: &str,
        rows: &[T],
        mut values: impl FnMut(&mut Self, &T),
    ) {
        for chunk in rows.chunks(MAX_ROWS) {
            self.statement(head);
            self.push("VALUES ");
            for (i, row) in chunk.iter().enumerate() {
                self.push(if i == 0 { "(" } else { ", (" });
                values(self, row);
                self.push(")");
            }
        }
    }

    /// Run the statements and commit, in one round trip per part; returns
    /// each statement's result, in order.
    pub async fn commit(
        mut self,
        conn: &mut MySqlConnection,
    ) -> Result<Vec<MySqlQueryResult>, sqlx::Error> {
        self.statement("COMMIT");
        let mut results = Vec::with_capacity(self.statements);
        for part in &self.parts {
            let done: Vec<MySqlQueryResult> = sqlx::raw_sql(part)
                .execute_many(&mut *conn)
                .try_collect()
                .await?;
            results.extend(done);
        }
        results.pop(); // COMMIT's
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn literal(v: impl Literal) -> String {
        let mut s = String::new();
        v.write_to(&mut s);
        s
    }

    #[test]
    fn values_become_literals_that_cannot_end_the_string() {
        assert_eq!(literal("a'b\\"), "_utf8mb4 X'6127625c'");
        assert_eq!(literal(""), "''");
        assert_eq!(literal(None::<&str>), "NULL");
        assert_eq!(literal(-7i64), "-7");
        assert_eq!(literal(true), "TRUE");
        let t = Utc.timestamp_opt(1_795_000_000, 1_000).unwrap();
        assert_eq!(literal(t), "'2026-11-18 11:06:40.000001'");
    }

    #[test]
    fn a_long_script_goes_in_parts_whose_results_keep_their_places() {
        let mut script = Script::default();
        let long = "x".repeat(PART_BYTES / 4);
        for i in 0..4 {
            assert_eq!(script.statement("SELECT "), i);
            script.value(long.as_str());
        }
        assert_eq!(
            script.parts.len(),
            2,
            "two statements of half a MiB each in a part"
        );
        assert!(script.parts[0].starts_with("SELECT _utf8mb4 X'78"));
        assert_eq!(script.parts[0].matches(";\n").count(), 1);
    }
}
