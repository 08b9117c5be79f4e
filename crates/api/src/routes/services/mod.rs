//! The service resource: `/elkservice` and `/elkservice/{Id}`, with the
//! JSON field names that Beego clients use. Every write runs in one
//! transaction, so a request that fails changes nothing.
//!
//! [`dto`] holds the bodies and parameters, [`lenient`] the forgiving JSON
//! values, [`crate::precondition`] the `ETag`/`If-Match` rules,
//! and [`crate::writes`] the transactions; the statements are in
//! `elkservice_core::store`.

pub mod dto;
pub mod lenient;

use crate::auth::{Authorized, ReadAccess};
use crate::error::{ApiError, ErrorBody};
use crate::listing::{self, ListParams, Listing};
use crate::model::{Lookup, ReadModel};
use crate::precondition::{etag, IfMatch};
use crate::state::AppState;
use crate::writes::{not_found, Edit};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use dto::{NewService, PageParams, ServiceFields, ServiceUpdate, MAX_CLIENT_ID};
use elkservice_core::domain::DETAIL_MAX_LEN;
use elkservice_core::json::Object;
use elkservice_core::store::feed;
use elkservice_core::store::history;
use elkservice_core::store::services::{self as rows, RowValues};
use elkservice_core::{Service, ServiceEvent, Status};
use prometheus::IntGauge;

fn check_detail(detail: &Option<String>) -> Result<(), ApiError> {
    match detail {
        Some(d) if d.chars().count() > DETAIL_MAX_LEN => Err(ApiError::invalid_field(
            "Detail",
            format!("may be at most {DETAIL_MAX_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

/// A 200 that carries the row's `ETag`.
fn with_etag(service: &Service) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header(header::ETag(etag(service)));
    response
}

/// What `read` answers from the read model (None: the model cannot answer).
/// When the model is behind, but only lately, `read` is tried once more
/// after waiting for it to catch up ([`ReadModel::catch_up`]), the wait
/// counted; a fresh model costs no more than the read itself.
pub(crate) async fn from_model<T>(
    state: &AppState,
    read: impl Fn(&ReadModel) -> Option<T>,
) -> Option<T> {
    let model = state.model.as_deref()?;
    if let Some(answer) = read(model) {
        return Some(answer);
    }
    if !model.lately_behind() {
        return None;
    }
    struct Waiting<'a>(&'a IntGauge);
    impl Drop for Waiting<'_> {
        // Also when the client goes away mid-wait.
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    state.metrics.waiting_for_model.inc();
    let waiting = Waiting(&state.metrics.waiting_for_model);
    model.catch_up().await;
    drop(waiting);
    read(model)
}

/// List services, filtered, sorted and paged with Beego's GetAll parameters.
#[utoipa::path(get, path = "/elkservice", operation_id = "listServices", tag = "elkservice", params(ListParams),
    responses(
        (status = 200, description = "Matching services (an empty list is `[]`); with `fields`, each object holds only those keys",
            body = [ServiceFields], headers(("X-Total-Count" = u64, description = "All matching rows, before limit and offset"),
                ("X-Last-Seq" = i64, description = "The change feed's last Seq before the rows were read: follow `/elkservice/stream?since=` it to keep the list current"))),
        (status = 400, description = "Unknown field, operator or malformed value", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn list(
    _: ReadAccess,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let listing = Listing::parse(&params).map_err(ApiError::BadRequest)?;
    // A listing that needs the database's collations does not wait for the model.
    let page = if listing.in_memory() {
        from_model(&state, |m| m.list(&listing)).await
    } else {
        None
    };
    state.metrics.read(page.is_some());
    if let Some(page) = page {
        let body = page.json(&listing);
        return Ok(HttpResponse::Ok()
            .insert_header(("X-Total-Count", page.total.to_string()))
            .insert_header(("X-Last-Seq", page.seq.to_string()))
            .content_type(header::ContentType::json())
            .body(body));
    }
    // Read before the rows: following the feed from here misses nothing.
    let last_seq = feed::last_seq(&mut *state.pool.acquire().await?).await?;

    let mut count = rows::count();
    listing.push_where(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(&state.pool).await?;

    let mut select = rows::select();
    listing.push_where(&mut select);
    listing.push_order_and_page(&mut select);
    let mut conn = state.pool.acquire().await?;
    let mut rows: Vec<Service> = select.build_query_as().fetch_all(&mut *conn).await?;
    rows::with_votes(&mut conn, &mut rows).await?;

    let body: Vec<_> = rows.iter().map(|s| listing.project(s)).collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header(("X-Last-Seq", last_seq.to_string()))
        .json(body))
}

/// Create a service.
#[utoipa::path(post, path = "/elkservice", operation_id = "createService", tag = "elkservice", request_body = NewService,
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
    _: Authorized,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Object<NewService>>,
) -> Result<HttpResponse, ApiError> {
    let Object(body) = body.into_inner();
    let requested_id = body.id.map(|w| w.0);
    if let Some(id) = requested_id.filter(|id| !(1..=MAX_CLIENT_ID).contains(id)) {
        return Err(ApiError::invalid_field(
            "Id",
            format!("must be from 1 to {MAX_CLIENT_ID}, got {id}"),
        ));
    }
    check_detail(&body.detail)?;

    let values = RowValues {
        name: &body.name,
        status: body.status.unwrap_or(Status::Unknown),
        running: body.running.is_some_and(|r| r.0),
        failed_count: body.failed_count.map_or(0, |w| w.0),
        detail: body.detail.as_deref(),
    };
    let service = state.writes.create(requested_id, values).await?;
    let id = service.id;

    let location = format!("{}/{id}", req.path().trim_end_matches('/'));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(service))
}

/// Read one service.
#[utoipa::path(get, path = "/elkservice/{Id}", operation_id = "getService", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id")),
    responses(
        (status = 200, description = "The service", body = Service,
            headers(("ETag" = String, description = "The row's version; send it back in If-Match to write only over this version"))),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "A key is required (when reads need one)", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn get(
    _: ReadAccess,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let lookup = from_model(&state, |m| match m.get(id) {
        Lookup::Behind => None,
        known => Some(known),
    })
    .await;
    state.metrics.read(lookup.is_some());
    match lookup {
        Some(Lookup::Found(row)) => {
            return Ok(HttpResponse::Ok()
                .insert_header(header::ETag(row.etag.clone()))
                .content_type(header::ContentType::json())
                .body(row.json.clone()))
        }
        Some(Lookup::Missing) => return Err(not_found(id)),
        Some(Lookup::Behind) | None => {}
    }
    let mut conn = state.pool.acquire().await?;
    let service = rows::fetch(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(with_etag(&service).json(service))
}

/// Replace a service's row. A change of `Status` is recorded as a transition.
/// With `If-Match`, only if the row is still the version the client read.
#[utoipa::path(put, path = "/elkservice/{Id}", operation_id = "replaceService", tag = "elkservice", request_body = ServiceUpdate,
    params(("Id" = i64, Path, description = "The service's Id"),
        ("If-Match" = Option<String>, Header, description = "An ETag from GET (or `*`): write only if the row has not changed since")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The row as stored", body = Service,
            headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Malformed JSON, or the Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 409, description = "The Name belongs to another service", body = ErrorBody),
        (status = 412, description = "If-Match does not match the row's current ETag", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "A required field is missing or a field is invalid", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn replace(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: web::Json<Object<ServiceUpdate>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let Object(body) = body.into_inner();
    if body.id.is_some_and(|b| b.0 != id) {
        return Err(ApiError::invalid_field(
            "Id",
            "must equal the Id in the path",
        ));
    }
    check_detail(&body.detail)?;

    let service = state
        .writes
        .replace(Edit {
            id,
            name: body.name,
            status: body.status,
            running: body.running.0,
            failed_count: body.failed_count.0,
            detail: body.detail,
            if_match,
        })
        .await?;
    Ok(with_etag(&service).json(service))
}

/// Delete a service and its history. With `If-Match`, only if the row is
/// still the version the client read.
#[utoipa::path(delete, path = "/elkservice/{Id}", operation_id = "deleteService", tag = "elkservice",
    params(("Id" = i64, Path, description = "The service's Id"),
        ("If-Match" = Option<String>, Header, description = "An ETag from GET (or `*`): write only if the row has not changed since")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The Id is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 412, description = "If-Match does not match the row's current ETag", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub async fn delete(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    state.writes.delete(id.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A service's status transitions, newest first.
#[utoipa::path(get, path = "/elkservice/{Id}/events", operation_id = "listServiceEvents", tag = "elkservice",
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
    _: ReadAccess,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (limit, offset) =
        listing::page(&params.limit, &params.offset).map_err(ApiError::BadRequest)?;
    let mut conn = state.pool.acquire().await?;
    if !rows::exists(&mut conn, id).await? {
        return Err(not_found(id));
    }
    let total = history::count(&mut conn, id).await?;
    let page = history::page(&mut conn, id, limit, offset).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .json(page))
}
