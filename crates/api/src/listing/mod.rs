//! Beego's GetAll parameters (`query`, `fields`, `sortby`, `order`, `limit`,
//! `offset`): [`params`] is the raw query string, [`parse`] checks every field
//! name, operator and value into a [`Listing`] (pure: a bad parameter is a 400
//! with a message, never a database error), and [`sql`] renders it. Only the
//! table's own columns reach SQL, and every value is a bound parameter.

pub mod memory;
pub mod params;
pub mod parse;
pub mod sql;

use chrono::{DateTime, Utc};
use elkservice_core::store::Field;
use elkservice_core::Service;

pub use params::{number, page, ListParams, DEFAULT_LIMIT, MAX_LIMIT};

/// What values a field holds, which decides the operators and values it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Status,
    Bool,
    Time,
}

pub fn kind(field: Field) -> Kind {
    match field {
        Field::Id | Field::FailedCount => Kind::Int,
        Field::Name | Field::Detail => Kind::Text,
        Field::Status => Kind::Status,
        Field::Running => Kind::Bool,
        Field::StatusChangedAt | Field::LastCheckedAt | Field::CreatedAt | Field::UpdatedAt => {
            Kind::Time
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Exact,
    IExact,
    Contains,
    IContains,
    StartsWith,
    IStartsWith,
    EndsWith,
    IEndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    IsNull,
}

/// How a text operator matches: `LIKE` with `%` before and/or after the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    pub case_insensitive: bool,
    /// `%` before the value: it may end the text.
    pub leading_wildcard: bool,
    /// `%` after the value: it may start the text.
    pub trailing_wildcard: bool,
}

impl Op {
    /// The pattern of an operator that matches text; None for the others.
    pub fn pattern(self) -> Option<Pattern> {
        let p = |case_insensitive, leading_wildcard, trailing_wildcard| {
            Some(Pattern {
                case_insensitive,
                leading_wildcard,
                trailing_wildcard,
            })
        };
        match self {
            Op::IExact => p(true, false, false),
            Op::Contains => p(false, true, true),
            Op::IContains => p(true, true, true),
            Op::StartsWith => p(false, false, true),
            Op::IStartsWith => p(true, false, true),
            Op::EndsWith => p(false, true, false),
            Op::IEndsWith => p(true, true, false),
            _ => None,
        }
    }
}

/// A typed value to compare a column with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: Field,
    pub op: Op,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: Field,
    pub descending: bool,
}

/// A parsed, valid listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub filters: Vec<Filter>,
    pub fields: Option<Vec<Field>>,
    pub sort: Vec<Sort>,
    pub limit: u32,
    pub offset: u64,
}

impl Listing {
    /// The JSON of a row, reduced to the requested `fields` in their order.
    pub fn project(&self, service: &Service) -> serde_json::Value {
        let full = serde_json::to_value(service).expect("Service serialises");
        match (&self.fields, full) {
            (Some(fields), serde_json::Value::Object(mut all)) => fields
                .iter()
                .filter_map(|f| all.remove(f.name()).map(|v| (f.name().to_owned(), v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            (_, full) => full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sql::escape_like;
    use super::*;
    use elkservice_core::store::Field;
    use sqlx::QueryBuilder;

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let qs: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_urlencoded_from(&qs)
    }

    fn serde_urlencoded_from(qs: &str) -> ListParams {
        actix_web::web::Query::<ListParams>::from_query(qs)
            .unwrap()
            .into_inner()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Listing, String> {
        Listing::parse(&params(pairs))
    }

    fn sql(pairs: &[(&str, &str)]) -> String {
        let l = parse(pairs).unwrap();
        let mut qb = QueryBuilder::new("SELECT * FROM elkservice");
        l.push_where(&mut qb);
        l.push_order_and_page(&mut qb);
        qb.sql().to_owned()
    }

    #[test]
    fn defaults_are_ten_rows_by_id() {
        let l = parse(&[]).unwrap();
        assert_eq!((l.limit, l.offset), (10, 0));
        assert_eq!(
            l.sort,
            vec![Sort {
                field: Field::Id,
                descending: false
            }]
        );
        assert_eq!(
            sql(&[]),
            "SELECT * FROM elkservice ORDER BY id ASC LIMIT ? OFFSET ?"
        );
    }

    #[test]
    fn limit_zero_means_the_maximum_and_more_is_refused() {
        assert_eq!(parse(&[("limit", "0")]).unwrap().limit, MAX_LIMIT);
        assert_eq!(parse(&[("limit", "1000")]).unwrap().limit, 1000);
        assert!(parse(&[("limit", "1001")]).is_err());
        assert!(parse(&[("limit", "-1")]).is_err());
        assert!(parse(&[("offset", "x")]).is_err());
        assert!(parse(&[("offset", "9223372036854775808")]).is_err());
        assert_eq!(
            parse(&[("offset", "9223372036854775807")]).unwrap().offset,
            i64::MAX as u64
        );
    }

    #[test]
    fn query_takes_operators_and_typed_values() {
        let l = parse(&[("query", "Name__startswith:svc,FailedCount__gte:2,Running:1")]).unwrap();
        assert_eq!(l.filters.len(), 3);
        assert_eq!(l.filters[1].values, vec![Value::Int(2)]);
        assert_eq!(l.filters[2].values, vec![Value::Bool(true)]);
        assert_eq!(
            sql(&[(
                "query",
                "Name__startswith:svc,FailedCount__gte:2,Status__in:down|degraded"
            )]),
            "SELECT * FROM elkservice WHERE name COLLATE utf8mb4_bin LIKE ? AND failed_count >= ? \
             AND status COLLATE utf8mb4_bin IN (?, ?) ORDER BY id ASC LIMIT ? OFFSET ?"
        );
    }

    #[test]
    fn values_may_hold_colons() {
        let l = parse(&[("query", "CreatedAt__gt:2026-01-01T00:00:00Z")]).unwrap();
        assert!(matches!(l.filters[0].values[0], Value::Time(_)));
    }

    #[test]
    fn like_wildcards_in_values_are_literal() {
        assert_eq!(escape_like("a%b_c\\"), "a\\%b\\_c\\\\");
    }

    #[test]
    fn unknown_names_and_bad_values_are_errors() {
        for bad in [
            ("query", "Nope:1"),
            ("query", "Name__regex:x"),
            ("query", "Name"),
            ("query", "Id:abc"),
            ("query", "Status:sideways"),
            ("query", "Running:maybe"),
            ("query", "Id__contains:1"),
            ("query", "Running__gt:0"),
            ("query", "Detail__isnull:perhaps"),
            ("fields", "Id,Nope"),
            ("sortby", "Nope"),
            ("order", "up"),
        ] {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_pairs_with_sortby_as_beego_does() {
        let l = parse(&[("sortby", "Status,Name"), ("order", "desc")]).unwrap();
        assert!(l.sort[..2].iter().all(|s| s.descending));
        let l = parse(&[("sortby", "Status,Name"), ("order", "desc,asc")]).unwrap();
        assert_eq!(
            l.sort,
            vec![
                Sort {
                    field: Field::Status,
                    descending: true
                },
                Sort {
                    field: Field::Name,
                    descending: false
                },
                Sort {
                    field: Field::Id,
                    descending: false
                },
            ]
        );
        assert!(parse(&[("sortby", "Status,Name,Id"), ("order", "desc,asc")]).is_err());
        assert_eq!(
            parse(&[("order", "desc")]).unwrap().sort,
            vec![Sort {
                field: Field::Id,
                descending: true
            }]
        );
        assert!(parse(&[("order", "desc,asc")]).is_err());
    }

    #[test]
    fn field_names_match_json_or_column_in_any_case() {
        for s in ["FailedCount", "failedcount", "failed_count", "FAILED_COUNT"] {
            assert_eq!(parse::field(s), Ok(Field::FailedCount));
        }
    }
}
