//! A [`Listing`] as SQL: the WHERE, ORDER BY and LIMIT clauses that follow
//! the store's `SELECT` or `COUNT`.

use super::{kind, Filter, Kind, Listing, Op, Value};
use sqlx::{MySql, QueryBuilder};

impl Listing {
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
}

fn push_value(qb: &mut QueryBuilder<'_, MySql>, v: &Value) {
    match v {
        Value::Int(i) => qb.push_bind(*i),
        Value::Text(s) => qb.push_bind(s.clone()),
        Value::Bool(b) => qb.push_bind(*b),
        Value::Time(t) => qb.push_bind(*t),
    };
}

pub(super) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn push_filter(qb: &mut QueryBuilder<'_, MySql>, f: &Filter) {
    let col = f.field.column();
    // Text compares byte-wise unless the operator says otherwise, whatever the
    // column's own collation, so `Status:down` and `Name:web` mean the same thing.
    let text = matches!(kind(f.field), Kind::Text | Kind::Status);
    let cs = if text { " COLLATE utf8mb4_bin" } else { "" };
    if let Some(pattern) = f.op.pattern() {
        let Value::Text(raw) = &f.values[0] else {
            unreachable!("checked by parse_filter")
        };
        let collation = if pattern.case_insensitive {
            "utf8mb4_unicode_ci"
        } else {
            "utf8mb4_bin"
        };
        let like = format!(
            "{}{}{}",
            if pattern.leading_wildcard { "%" } else { "" },
            escape_like(raw),
            if pattern.trailing_wildcard { "%" } else { "" }
        );
        qb.push(format!("{col} COLLATE {collation} LIKE "))
            .push_bind(like);
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
