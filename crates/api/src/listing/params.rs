//! The raw query string of `GET /elkservice`, and the `limit`/`offset` pair
//! that every paged route takes.

use serde::Deserialize;
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

pub(super) fn split_list(s: &Option<String>) -> Vec<&str> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A whole number from the query string, within `range`; `default` when
/// the parameter is absent. The one parser of every route's numbers, so that
/// each says the same of a bad one.
pub fn number<T>(
    name: &str,
    raw: Option<&str>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(format!(
            "{name} must be an integer from {} to {}, got {raw:?}",
            range.start(),
            range.end()
        )),
    }
}

/// `limit` and `offset` as every paged route takes them.
pub fn page(limit: &Option<String>, offset: &Option<String>) -> Result<(u32, u64), String> {
    // 0 means the most.
    let limit = match number("limit", limit.as_deref(), DEFAULT_LIMIT, 0..=MAX_LIMIT)? {
        0 => MAX_LIMIT,
        n => n,
    };
    // At most i64::MAX, the range the spec documents for an int64.
    let offset = number("offset", offset.as_deref(), 0, 0..=i64::MAX as u64)?;
    Ok((limit, offset))
}
