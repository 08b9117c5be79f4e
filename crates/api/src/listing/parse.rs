//! From the raw parameters to a [`Listing`]: every field name, operator and
//! value checked, with a message that says what was wrong.

use super::params::{page, split_list, ListParams};
use super::{kind, Filter, Kind, Listing, Op, Sort, Value};
use chrono::{DateTime, Utc};
use elkservice_core::store::Field;
use elkservice_core::Status;

/// A field by its JSON name or its column name, in any case (as Beego's ORM takes it).
pub fn field(s: &str) -> Result<Field, String> {
    Field::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(s) || f.column().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let known: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
            format!("unknown field {s:?}; known fields: {}", known.join(", "))
        })
}

fn op(s: &str) -> Result<Op, String> {
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

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_value(field: Field, raw: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{}: {raw:?} is not {what}", field.name());
    match kind(field) {
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
        Some((name, suffix)) => (name, op(suffix)?),
        None => (key, Op::Exact),
    };
    let field = field(name)?;
    let text_field = matches!(kind(field), Kind::Text | Kind::Status);
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
        Op::Gt | Op::Gte | Op::Lt | Op::Lte if kind(field) == Kind::Bool => {
            return Err(format!("{key}: Running cannot be ordered"));
        }
        _ => vec![parse_value(field, raw)?],
    };
    Ok(Filter { field, op, values })
}

impl Listing {
    /// Check every parameter; the message of an error says which and why.
    pub fn parse(p: &ListParams) -> Result<Listing, String> {
        let filters = split_list(&p.query)
            .into_iter()
            .map(parse_filter)
            .collect::<Result<_, _>>()?;

        let fields = split_list(&p.fields);
        let fields = if fields.is_empty() {
            None
        } else {
            Some(fields.into_iter().map(field).collect::<Result<_, _>>()?)
        };

        let sortby: Vec<Field> = split_list(&p.sortby)
            .into_iter()
            .map(field)
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
}
