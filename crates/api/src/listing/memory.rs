//! A [`Listing`] over rows held in memory (the read model), answering exactly
//! as [`super::sql`] would. Where MariaDB's collations would make the two
//! differ (a case-insensitive operator, anything on `Detail`, a text value
//! with spaces or control characters, a time finer than a microsecond),
//! [`Listing::in_memory`] says no and the listing goes to the database.

use super::{Filter, Listing, Op, Value};
use chrono::{DateTime, Timelike, Utc};
use elkservice_core::store::Field;
use elkservice_core::Service;
use std::cmp::Ordering;

/// One column of a row, borrowed; None is SQL's NULL.
#[derive(Debug, PartialEq, PartialOrd)]
enum Cell<'a> {
    Int(i64),
    Text(&'a str),
    Bool(bool),
    Time(DateTime<Utc>),
}

fn cell(s: &Service, field: Field) -> Option<Cell<'_>> {
    Some(match field {
        Field::Id => Cell::Int(s.id),
        Field::Name => Cell::Text(s.name.as_str()),
        Field::Status => Cell::Text(s.status.as_str()),
        Field::Running => Cell::Bool(s.running),
        Field::FailedCount => Cell::Int(s.failed_count.into()),
        Field::Detail => Cell::Text(s.detail.as_deref()?),
        Field::StatusChangedAt => Cell::Time(s.status_changed_at?),
        Field::LastCheckedAt => Cell::Time(s.last_checked_at?),
        Field::CreatedAt => Cell::Time(s.created_at),
        Field::UpdatedAt => Cell::Time(s.updated_at),
    })
}

fn as_cell(v: &Value) -> Cell<'_> {
    match v {
        Value::Int(i) => Cell::Int(*i),
        Value::Text(t) => Cell::Text(t),
        Value::Bool(b) => Cell::Bool(*b),
        Value::Time(t) => Cell::Time(*t),
    }
}

/// A value that compares the same byte-wise as under `utf8mb4_bin`, which
/// pads with spaces: none of the names or statuses it meets holds one.
fn plain(v: &Value) -> bool {
    match v {
        Value::Text(t) => t.bytes().all(|b| b > b' '),
        Value::Time(t) => t.nanosecond() % 1000 == 0,
        Value::Int(_) | Value::Bool(_) => true,
    }
}

impl Filter {
    fn in_memory(&self) -> bool {
        let case_insensitive = self.op.pattern().is_some_and(|p| p.case_insensitive);
        (self.field != Field::Detail || self.op == Op::IsNull)
            && !case_insensitive
            && self.values.iter().all(plain)
    }

    fn matches(&self, s: &Service) -> bool {
        let value = cell(s, self.field);
        if self.op == Op::IsNull {
            return value.is_none() == (self.values[0] == Value::Bool(true));
        }
        // A comparison with NULL is never true.
        let Some(value) = value else { return false };
        if let Some(p) = self.op.pattern() {
            let (Cell::Text(text), Value::Text(needle)) = (&value, &self.values[0]) else {
                return false;
            };
            return match (p.leading_wildcard, p.trailing_wildcard) {
                (true, true) => text.contains(needle.as_str()),
                (false, true) => text.starts_with(needle.as_str()),
                (true, false) => text.ends_with(needle.as_str()),
                (false, false) => text == needle,
            };
        }
        let order = value.partial_cmp(&as_cell(&self.values[0]));
        match self.op {
            Op::In => self.values.iter().any(|v| value == as_cell(v)),
            Op::Gt => order == Some(Ordering::Greater),
            Op::Gte => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
            Op::Lt => order == Some(Ordering::Less),
            Op::Lte => matches!(order, Some(Ordering::Less | Ordering::Equal)),
            _ => order == Some(Ordering::Equal),
        }
    }
}

impl Listing {
    /// Whether rows in memory answer this listing exactly as the database would.
    pub fn in_memory(&self) -> bool {
        self.filters.iter().all(Filter::in_memory)
            && self.sort.iter().all(|s| s.field != Field::Detail)
    }

    /// Whether a row passes every filter.
    pub fn matches(&self, s: &Service) -> bool {
        self.filters.iter().all(|f| f.matches(s))
    }

    /// The listing's order; NULL first, as MariaDB sorts it ascending.
    pub fn compare(&self, a: &Service, b: &Service) -> Ordering {
        for sort in &self.sort {
            let order = cell(a, sort.field)
                .partial_cmp(&cell(b, sort.field))
                .unwrap_or(Ordering::Equal);
            let order = if sort.descending {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::super::ListParams;
    use super::*;
    use elkservice_core::{ServiceName, Status};

    fn row(id: i64, name: &str, status: Status, detail: Option<&str>) -> Service {
        let t = DateTime::from_timestamp(1_800_000_000 + id, 0).unwrap();
        Service {
            id,
            name: ServiceName::parse(name).unwrap(),
            status,
            running: status != Status::Down,
            failed_count: id as u32 % 3,
            detail: detail.map(str::to_owned),
            status_changed_at: (id % 2 == 0).then_some(t),
            last_checked_at: None,
            created_at: t,
            updated_at: t,
            votes: Vec::new(),
        }
    }

    fn listing(query: &str, sortby: &str, order: &str) -> Listing {
        Listing::parse(&ListParams {
            query: Some(query.into()),
            sortby: Some(sortby.into()),
            order: Some(order.into()),
            ..Default::default()
        })
        .unwrap()
    }

    fn ids(l: &Listing, rows: &[Service]) -> Vec<i64> {
        let mut kept: Vec<&Service> = rows.iter().filter(|s| l.matches(s)).collect();
        kept.sort_by(|a, b| l.compare(a, b));
        kept.iter().map(|s| s.id).collect()
    }

    #[test]
    fn filters_and_order_follow_sql() {
        let rows = [
            row(1, "es-1", Status::Normal, None),
            row(2, "es-2", Status::Down, Some("exit code 1")),
            row(3, "kibana", Status::Degraded, None),
            row(4, "logstash", Status::Down, None),
        ];
        assert_eq!(ids(&listing("Status:down", "", ""), &rows), [2, 4]);
        assert_eq!(
            ids(&listing("Name__startswith:es", "Id", "desc"), &rows),
            [2, 1]
        );
        assert_eq!(ids(&listing("Name__in:kibana|es-1", "", ""), &rows), [1, 3]);
        assert_eq!(
            ids(&listing("FailedCount__gte:1", "", ""), &rows),
            [1, 2, 4]
        );
        assert_eq!(
            ids(&listing("Running:false", "Name", "desc"), &rows),
            [4, 2]
        );
        // NULL matches no comparison, sorts first ascending and last descending.
        assert_eq!(
            ids(&listing("StatusChangedAt__isnull:true", "", ""), &rows),
            [1, 3]
        );
        assert_eq!(
            ids(
                &listing("StatusChangedAt__lt:2030-01-01T00:00:00Z", "", ""),
                &rows
            ),
            [2, 4]
        );
        assert_eq!(
            ids(&listing("", "StatusChangedAt", "asc"), &rows),
            [1, 3, 2, 4]
        );
        assert_eq!(
            ids(&listing("", "StatusChangedAt", "desc"), &rows),
            [4, 2, 1, 3],
            "Id breaks ties, ascending"
        );
    }

    #[test]
    fn what_collations_decide_goes_to_the_database() {
        for (query, sortby) in [
            ("Name__icontains:ES", ""),
            ("Name__iexact:es-1", ""),
            ("Detail__contains:exit", ""),
            ("Name:es 1", ""),
            ("Name__gt:es\u{1}x", ""),
            ("", "Detail"),
        ] {
            assert!(!listing(query, sortby, "").in_memory(), "{query} {sortby}");
        }
        assert!(listing("Name__contains:es,Status__in:down|normal", "Name", "").in_memory());
        assert!(listing("Detail__isnull:true", "", "").in_memory());
    }
}
