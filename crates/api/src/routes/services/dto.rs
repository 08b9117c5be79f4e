//! The bodies and parameters of the service routes, with the JSON field names
//! clients use. Types validate as they deserialise; what serde cannot say
//! (the Id's range, Detail's length) is checked by the handlers.

use super::lenient::{FlexBool, Whole};
use elkservice_core::{Service, ServiceName, Status};
use serde::de::IgnoredAny;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The largest Id a client may choose: 2^53 - 1, the largest integer that JSON
/// clients in JavaScript represent exactly. It also keeps AUTO_INCREMENT, which
/// continues after the largest Id, from being pushed to the end of its range by
/// one request, after which no Id could be assigned.
pub const MAX_CLIENT_ID: i64 = (1 << 53) - 1;

/// The body of `POST /elkservice`. Only `Name` is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct NewService {
    /// Chosen by the client (the seed's table had no auto-increment), or assigned.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 9007199254740991_i64, example = 1)]
    pub id: Option<Whole<i64>>,
    /// 1–63 characters of `A-Z a-z 0-9 . _ -`, unique.
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,63}$", example = "elasticsearch")]
    pub name: ServiceName,
    /// Default `unknown` (never observed).
    pub status: Option<Status>,
    /// Default `false`.
    #[schema(inline)]
    pub running: Option<FlexBool>,
    /// Default 0.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub failed_count: Option<Whole<u32>>,
    #[schema(max_length = 1024)]
    pub detail: Option<String>,
    // Read-only fields are accepted and ignored, so a row read with GET can be sent back.
    #[schema(ignore)]
    pub status_changed_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub last_checked_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub created_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub updated_at: Option<IgnoredAny>,
}

/// The body of `PUT /elkservice/{Id}`: the whole row. `Detail` may be left out
/// (it becomes null); every other field is required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ServiceUpdate {
    /// The path gives the Id; if the body repeats it, the two must be equal.
    #[schema(value_type = Option<i64>, read_only, minimum = 1, example = 1)]
    pub id: Option<Whole<i64>>,
    #[schema(value_type = String, pattern = "^[A-Za-z0-9._-]{1,63}$", example = "elasticsearch")]
    pub name: ServiceName,
    pub status: Status,
    #[schema(inline)]
    pub running: FlexBool,
    #[schema(value_type = i64, minimum = 0, maximum = 4294967295_i64)]
    pub failed_count: Whole<u32>,
    #[schema(max_length = 1024)]
    pub detail: Option<String>,
    #[schema(ignore)]
    pub status_changed_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub last_checked_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub created_at: Option<IgnoredAny>,
    #[schema(ignore)]
    pub updated_at: Option<IgnoredAny>,
}

/// A list item: a [`Service`], or with `fields` only the fields asked for. Its
/// schema is `Service`'s with nothing required, derived so the two cannot drift.
pub struct ServiceFields;

impl utoipa::PartialSchema for ServiceFields {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::RefOr;
        let mut schema = <Service as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.clear();
            object.description = Some(
                "A `Service`; with `fields`, only the fields asked for, in that order.".into(),
            );
        }
        schema
    }
}

impl ToSchema for ServiceFields {}

/// `limit` and `offset` for `GET /elkservice/{Id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 0–1000 (default 10; 0 means the maximum, 1000).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 1000)]
    pub limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
}
