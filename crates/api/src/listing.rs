//! Beego's GetAll parameters (`query`, `fields`, `sortby`, `order`, `limit`,
//! `offset`), parsed into a [`Listing`] and turned into SQL.
//!
//! Parsing is pure: every field name, operator and value is checked here, so a
//! bad parameter is a 400 with a message, never a database error. Only
//! whitelisted columns reach SQL, and every value is a bound parameter.

use chrono::{DateTime, Utc};
use elkservice_core::{Service, Status};
use serde::Deserialize;
use sqlx::{MySql, QueryBuilder};
use utoipa::IntoParams;

/// Rows returned when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 10;
/// The most rows one page holds; `limit=0` asks for this many.
pub const MAX_LIMIT: u32 = 1000;

/// The raw query string of `GET /elkservice`, as Beego's GetAll takes it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Filters `Field:value`, comma-separated. A field may carry a Beego operator
    /// suffix: `__exact`, `__iexact`, `__contains`, `__icontains`, `__startswith`,
    /// `__istartswith`, `__endswith`, `__iendswith`, `__gt`, `__gte`, `__lt`,
    /// `__lte`, `__in` (values separated by `|`), `__isnull` (`true`/`false`).
    #[param(example = "Status:down,Name__startswith:elastic")]
    pub query: Option<String>,
    /// Fields to return, comma-separated (default: all).
    #[param(example = "Id,Name,Status")]
    pub fields: Option<String>,
    /// Fields to sort by, comma-separated (default: `Id`).
    #[param(example = "Status,Name")]
    pub sortby: Option<String>,
    /// `asc` or `desc`: one for all `sortby` fields (or for `Id` when there are none), or one per field.
    #[param(example = "asc")]
    pub order: Option<String>,
    /// Page size, 0–1000 (default 10; 0 means the maximum, 1000).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000)]
    pub limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Status,
    Bool,
    Time,
}

impl Field {
    const ALL: [Field; 10] = [
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

    fn column(self) -> &'static str {
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

    fn kind(self) -> Kind {
        match self {
            Field::Id | Field::FailedCount => Kind::Int,
            Field::Name | Field::Detail => Kind::Text,
            Field::Status => Kind::Status,
            Field::Running => Kind::Bool,
            Field::StatusChangedAt | Field::LastCheckedAt | Field::CreatedAt | Field::UpdatedAt => {
                Kind::Time
            }
        }
    }

    /// Accepts the JSON name or the column name, in any case (as Beego's ORM does).
    pub fn parse(s: &str) -> Result<Field, String> {
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s) || f.column().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
                format!("unknown field {s:?}; known fields: {}", known.join(", "))
            })
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

impl Op {
    fn parse(s: &str) -> Result<Op, String> {
        Ok(match s {
            "exact" => Op::Exact,
            "iexact" => Op::IExact,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "startswith" => Op::StartsWith,
            "istartswith" => Op::IStartsWith,
            "endswith" => Op::EndsWith,
            "iendswith" => Op::IEndsWith,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "in" => Op::In,
            "isnull" => Op::IsNull,
            other => return Err(format!("unknown operator __{other}")),
        })
    }

    /// Operators that match text patterns: `(case-insensitive, prefix %, suffix %)`.
    fn pattern(self) -> Option<(bool, bool, bool)> {
        match self {
            Op::IExact => Some((true, false, false)),
            Op::Contains => Some((false, true, true)),
            Op::IContains => Some((true, true, true)),
            Op::StartsWith => Some((false, false, true)),
            Op::IStartsWith => Some((true, false, true)),
            Op::EndsWith => Some((false, true, false)),
            Op::IEndsWith => Some((true, true, false)),
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

fn split_list(s: &Option<String>) -> Vec<&str> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_value(field: Field, raw: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{}: {raw:?} is not {what}", field.name());
    match field.kind() {
        Kind::Int => raw.parse().map(Value::Int).map_err(|_| bad("an integer")),
        Kind::Text => Ok(Value::Text(raw.to_owned())),
        Kind::Status => raw
            .parse::<Status>()
            .map(|s| Value::Text(s.as_str().to_owned()))
            .map_err(|e| format!("Status: {raw:?} {e}")),
        Kind::Bool => parse_bool(raw)
            .map(Value::Bool)
            .ok_or_else(|| bad("true, false, 1 or 0")),
        Kind::Time => DateTime::parse_from_rfc3339(raw)
            .map(|t| Value::Time(t.with_timezone(&Utc)))
            .map_err(|_| bad("an RFC 3339 time")),
    }
}

fn parse_filter(item: &str) -> Result<Filter, String> {
    let (key, raw) = item
        .split_once(':')
        .ok_or_else(|| format!("query item {item:?} is not Field:value"))?;
    let (name, op) = match key.split_once("__") {
        Some((name, op)) => (name, Op::parse(op)?),
        None => (key, Op::Exact),
    };
    let field = Field::parse(name)?;
    let text_field = matches!(field.kind(), Kind::Text | Kind::Status);
    let values = match op {
        Op::IsNull => vec![Value::Bool(
            parse_bool(raw).ok_or_else(|| format!("{key}: expects true or false"))?,
        )],
        Op::In => raw
            .split('|')
            .map(|v| parse_value(field, v))
            .collect::<Result<_, _>>()?,
        _ if op.pattern().is_some() => {
            if !text_field {
                return Err(format!(
                    "{key}: text operators apply to Name, Status and Detail"
                ));
            }
            vec![Value::Text(raw.to_owned())]
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte if field.kind() == Kind::Bool => {
            return Err(format!("{key}: Running cannot be ordered"));
        }
        _ => vec![parse_value(field, raw)?],
    };
    Ok(Filter { field, op, values })
}

fn parse_number<T: std::str::FromStr>(
    name: &str,
    raw: &Option<String>,
) -> Result<Option<T>, String> {
    raw.as_deref()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("{name} must be a non-negative integer, got {s:?}"))
        })
        .transpose()
}

/// `limit` and `offset` as every paged route takes them.
pub fn page(limit: &Option<String>, offset: &Option<String>) -> Result<(u32, u64), String> {
    let limit = match parse_number::<u32>("limit", limit)?.unwrap_or(DEFAULT_LIMIT) {
        0 => MAX_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(format!(
                "limit may be at most {MAX_LIMIT} (0 means {MAX_LIMIT})"
            ))
        }
        n => n,
    };
    // At most i64::MAX, the range the spec documents for an int64.
    let offset = parse_number::<u64>("offset", offset)?.unwrap_or(0);
    if offset > i64::MAX as u64 {
        return Err(format!("offset may be at most {}", i64::MAX));
    }
    Ok((limit, offset))
}

impl Listing {
    pub fn parse(p: &ListParams) -> Result<Listing, String> {
        let filters = split_list(&p.query)
            .into_iter()
            .map(parse_filter)
            .collect::<Result<_, _>>()?;

        let fields = split_list(&p.fields);
        let fields = if fields.is_empty() {
            None
        } else {
            Some(
                fields
                    .into_iter()
                    .map(Field::parse)
                    .collect::<Result<_, _>>()?,
            )
        };

        let sortby: Vec<Field> = split_list(&p.sortby)
            .into_iter()
            .map(Field::parse)
            .collect::<Result<_, _>>()?;
        let order: Vec<bool> = split_list(&p.order)
            .into_iter()
            .map(|o| match o.to_ascii_lowercase().as_str() {
                "asc" => Ok(false),
                "desc" => Ok(true),
                _ => Err(format!("order must be asc or desc, got {o:?}")),
            })
            .collect::<Result<_, _>>()?;
        let mut sort: Vec<Sort> = match (sortby.len(), order.len()) {
            (0, 0) => vec![],
            // `order` alone orders the default sort key (Beego refused it).
            (0, 1) => vec![Sort {
                field: Field::Id,
                descending: order[0],
            }],
            (0, _) => return Err("order has several entries but sortby is empty".into()),
            (_, 0) => sortby
                .iter()
                .map(|&field| Sort {
                    field,
                    descending: false,
                })
                .collect(),
            (_, 1) => sortby
                .iter()
                .map(|&field| Sort {
                    field,
                    descending: order[0],
                })
                .collect(),
            (s, o) if s == o => sortby
                .iter()
                .zip(order)
                .map(|(&field, descending)| Sort { field, descending })
                .collect(),
            (s, o) => {
                return Err(format!(
                    "order has {o} entries for {s} sortby fields; give one, or one per field"
                ))
            }
        };
        // Id breaks ties, so pages are stable.
        if !sort.iter().any(|s| s.field == Field::Id) {
            sort.push(Sort {
                field: Field::Id,
                descending: false,
            });
        }

        let (limit, offset) = page(&p.limit, &p.offset)?;
        Ok(Listing {
            filters,
            fields,
            sort,
            limit,
            offset,
        })
    }

    /// Append ` WHERE …` for the filters (nothing when there are none).
    pub fn push_where(&self, qb: &mut QueryBuilder<'_, MySql>) {
        for (i, f) in self.filters.iter().enumerate() {
            qb.push(if i == 0 { " WHERE " } else { " AND " });
            push_filter(qb, f);
        }
    }

    /// Append ` ORDER BY … LIMIT … OFFSET …`.
    pub fn push_order_and_page(&self, qb: &mut QueryBuilder<'_, MySql>) {
        for (i, s) in self.sort.iter().enumerate() {
            qb.push(if i == 0 { " ORDER BY " } else { ", " });
            qb.push(s.field.column());
            qb.push(if s.descending { " DESC" } else { " ASC" });
        }
        qb.push(" LIMIT ").push_bind(self.limit);
        qb.push(" OFFSET ").push_bind(self.offset);
    }

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

fn push_value(qb: &mut QueryBuilder<'_, MySql>, v: &Value) {
    match v {
        Value::Int(i) => qb.push_bind(*i),
        Value::Text(s) => qb.push_bind(s.clone()),
        Value::Bool(b) => qb.push_bind(*b),
        Value::Time(t) => qb.push_bind(*t),
    };
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn push_filter(qb: &mut QueryBuilder<'_, MySql>, f: &Filter) {
    let col = f.field.column();
    // Text compares byte-wise unless the operator says otherwise, whatever the
    // column's own collation, so `Status:down` and `Name:web` mean the same thing.
    let text = matches!(f.field.kind(), Kind::Text | Kind::Status);
    let cs = if text { " COLLATE utf8mb4_bin" } else { "" };
    if let Some((insensitive, prefix, suffix)) = f.op.pattern() {
        let Value::Text(raw) = &f.values[0] else {
            unreachable!("checked by parse_filter")
        };
        let collation = if insensitive {
            "utf8mb4_unicode_ci"
        } else {
            "utf8mb4_bin"
        };
        let pattern = format!(
            "{}{}{}",
            if prefix { "%" } else { "" },
            escape_like(raw),
            if suffix { "%" } else { "" }
        );
        qb.push(format!("{col} COLLATE {collation} LIKE "))
            .push_bind(pattern);
        return;
    }
    match f.op {
        Op::IsNull => {
            let null = f.values[0] == Value::Bool(true);
            qb.push(format!("{col} IS {}NULL", if null { "" } else { "NOT " }));
        }
        Op::In => {
            qb.push(format!("{col}{cs} IN ("));
            for (i, v) in f.values.iter().enumerate() {
                if i > 0 {
                    qb.push(", ");
                }
                push_value(qb, v);
            }
            qb.push(")");
        }
        op => {
            let sym = match op {
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                Op::Lte => "<=",
                _ => "=",
            };
            qb.push(format!("{col}{cs} {sym} "));
            push_value(qb, &f.values[0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(Field::parse(s), Ok(Field::FailedCount));
        }
    }
}
