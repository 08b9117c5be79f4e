//! The service resource: `/elkservice` and `/elkservice/{Id}`, with the seed's
//! Beego JSON field names. Every write runs in one transaction, so a request
//! that fails changes nothing.

use crate::auth::{Reader, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::listing::{self, ListParams, Listing};
use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use elkservice_core::domain::{DETAIL_MAX_LEN, SERVICE_COLUMNS};
use elkservice_core::{Service, ServiceName, Status};
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize};
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use utoipa::{IntoParams, ToSchema};

/// `true`/`false`, or `1`/`0` as Beego clients send it.
#[derive(Debug, Clone, Copy)]
pub struct FlexBool(pub bool);

impl<'de> Deserialize<'de> for FlexBool {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FlexBool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, 1 or 0")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<FlexBool, E> {
                Ok(FlexBool(b))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<FlexBool, E> {
                match n {
                    0 => Ok(FlexBool(false)),
                    1 => Ok(FlexBool(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<FlexBool, E> {
                u64::try_from(n)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for FlexBool {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some([0, 1])),
            )
            .description(Some("`true`/`false`, or `1`/`0` as Beego clients send it"))
            .into()
    }
}

impl ToSchema for FlexBool {}

/// An integer that JSON may also spell with a zero fraction (`5.0`), as some
/// clients' serialisers do; anything else that is not an integer of `T`'s range
/// is refused.
#[derive(Debug, Clone, Copy)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: TryFrom<i64> + TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an integer that fits {}", std::any::type_name::<T>())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Whole<T>, E> {
                // Range checks first: `as` saturates, which would hide an overflow.
                if x.fract() != 0.0 || !(-9.2e18..=1.8e19).contains(&x) {
                    Err(E::invalid_value(de::Unexpected::Float(x), &self))
                } else if x < 0.0 {
                    self.visit_i64(x as i64)
                } else {
                    self.visit_u64(x as u64)
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

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

/// One status transition of a service.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEvent {
    pub id: i64,
    pub service_id: i64,
    /// The status before; null for the row's first status.
    #[schema(value_type = Option<Status>)]
    pub from_status: Option<String>,
    #[schema(value_type = Status)]
    pub status: String,
    pub running: bool,
    pub detail: Option<String>,
    /// When the change was observed (by a watcher) or made (through the API).
    pub observed_at: DateTime<Utc>,
    /// The watcher id, or `api`.
    pub source: String,
}

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

fn check_detail(detail: &Option<String>) -> Result<(), ApiError> {
    match detail {
        Some(d) if d.chars().count() > DETAIL_MAX_LEN => Err(ApiError::invalid_field(
            "Detail",
            format!("may be at most {DETAIL_MAX_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

/// A unique-key violation is a 409 naming the clashing field.
fn conflict(e: sqlx::Error) -> ApiError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let field = if db.message().contains("PRIMARY") {
                "Id"
            } else {
                "Name"
            };
            return ApiError::Conflict(format!("a service with this {field} already exists"));
        }
    }
    e.into()
}

async fn fetch(conn: &mut MySqlConnection, id: i64) -> Result<Option<Service>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM elkservice WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no service with Id {id}"))
}

async fn record_transition(
    conn: &mut MySqlConnection,
    service: &Service,
    from: Option<Status>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO elkservice_event (service_id, from_status, status, running, detail, observed_at, source) \
         VALUES (?, ?, ?, ?, ?, NOW(6), 'api')",
    )
    .bind(service.id)
    .bind(from.map(Status::as_str))
    .bind(service.status.as_str())
    .bind(service.running)
    .bind(&service.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// List services, filtered, sorted and paged with Beego's GetAll parameters.
#[utoipa::path(get, path = "/elkservice", tag = "elkservice", params(ListParams),
    responses(
        (status = 200, description = "Matching services (an empty list is `[]`); with `fields`, each object holds only those keys",
            body = [ServiceFields], headers(("X-Total-Count" = u64, description = "All matching rows, before limit and offset"))),
        (status = 400, description = "Unknown field, operator or malformed value", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    _: Reader,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let listing = Listing::parse(&params).map_err(ApiError::BadRequest)?;

    let mut count = QueryBuilder::<MySql>::new("SELECT COUNT(*) FROM elkservice");
    listing.push_where(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(&state.pool).await?;

    let mut select =
        QueryBuilder::<MySql>::new(format!("SELECT {SERVICE_COLUMNS} FROM elkservice"));
    listing.push_where(&mut select);
    listing.push_order_and_page(&mut select);
    let rows: Vec<Service> = select.build_query_as().fetch_all(&state.pool).await?;

    let body: Vec<_> = rows.iter().map(|s| listing.project(s)).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .json(body))
}

/// Create a service.
#[utoipa::path(post, path = "/elkservice", tag = "elkservice", request_body = NewService,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = Service,
            headers(("Location" = String, description = "The new row's URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 409, description = "The Id or the Name is taken", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn create(
    _: Writer,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewService>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let requested_id = body.id.map(|w| w.0);
    if let Some(id) = requested_id.filter(|id| !(1..=MAX_CLIENT_ID).contains(id)) {
        return Err(ApiError::invalid_field(
            "Id",
            format!("must be from 1 to {MAX_CLIENT_ID}, got {id}"),
        ));
    }
    check_detail(&body.detail)?;

    let mut tx = state.pool.begin().await?;
    // A NULL id makes AUTO_INCREMENT assign one.
    let done = sqlx::query(
        "INSERT INTO elkservice (id, name, status, running, failed_count, detail, status_changed_at) \
         VALUES (?, ?, ?, ?, ?, ?, NOW(6))",
    )
    .bind(requested_id)
    .bind(body.name.as_str())
    .bind(body.status.unwrap_or(Status::Unknown).as_str())
    .bind(body.running.is_some_and(|r| r.0))
    .bind(body.failed_count.map_or(0, |w| w.0))
    .bind(&body.detail)
    .execute(&mut *tx)
    .await
    .map_err(conflict)?;
    let id = requested_id.unwrap_or(done.last_insert_id() as i64);
    let service = fetch(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    record_transition(&mut tx, &service, None).await?;
    tx.commit().await?;

    let location = format!("{}/{id}", req.path().trim_end_matches('/'));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(service))
}

/// Read one service.
#[utoipa::path(get, path = "/elkservice/{Id}", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id")),
    responses(
        (status = 200, description = "The service", body = Service),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn get(
    _: Reader,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = state.pool.acquire().await?;
    let service = fetch(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(service))
}

/// Replace a service's row. A change of `Status` is recorded as a transition.
#[utoipa::path(put, path = "/elkservice/{Id}", tag = "elkservice", request_body = ServiceUpdate,
    params(("Id" = i64, Path, description = "The service's Id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The row as stored", body = Service),
        (status = 400, description = "Malformed JSON, or the Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 409, description = "The Name belongs to another service", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "A required field is missing or a field is invalid", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn replace(
    _: Writer,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ServiceUpdate>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body.into_inner();
    if body.id.is_some_and(|b| b.0 != id) {
        return Err(ApiError::invalid_field(
            "Id",
            "must equal the Id in the path",
        ));
    }
    check_detail(&body.detail)?;

    let mut tx = state.pool.begin().await?;
    let before: Option<String> =
        sqlx::query_scalar("SELECT status FROM elkservice WHERE id = ? FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let before = before.ok_or_else(|| not_found(id))?;
    // status_changed_at is assigned before status: MySQL applies SET left to right.
    sqlx::query(
        "UPDATE elkservice SET status_changed_at = IF(status = ?, status_changed_at, NOW(6)), \
         name = ?, status = ?, running = ?, failed_count = ?, detail = ? WHERE id = ?",
    )
    .bind(body.status.as_str())
    .bind(body.name.as_str())
    .bind(body.status.as_str())
    .bind(body.running.0)
    .bind(body.failed_count.0)
    .bind(&body.detail)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(conflict)?;
    let service = fetch(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    let before: Option<Status> = before.parse().ok();
    if before != Some(service.status) {
        record_transition(&mut tx, &service, before).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(service))
}

/// Delete a service and its history.
#[utoipa::path(delete, path = "/elkservice/{Id}", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    _: Writer,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let done = sqlx::query("DELETE FROM elkservice WHERE id = ?")
        .bind(id)
        .execute(&state.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A service's status transitions, newest first.
#[utoipa::path(get, path = "/elkservice/{Id}/events", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id"), PageParams),
    responses(
        (status = 200, description = "Transitions, newest first", body = [ServiceEvent],
            headers(("X-Total-Count" = u64, description = "All transitions of the service"))),
        (status = 400, description = "Bad Id, limit or offset", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn events(
    _: Reader,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (limit, offset) =
        listing::page(&params.limit, &params.offset).map_err(ApiError::BadRequest)?;
    let mut conn = state.pool.acquire().await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM elkservice WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    exists.ok_or_else(|| not_found(id))?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM elkservice_event WHERE service_id = ?")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let rows: Vec<ServiceEvent> = sqlx::query_as(
        "SELECT id, service_id, from_status, status, running, detail, observed_at, source \
         FROM elkservice_event WHERE service_id = ? ORDER BY observed_at DESC, id DESC LIMIT ? OFFSET ?",
    )
    .bind(id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .json(rows))
}
