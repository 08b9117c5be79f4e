//! The OpenAPI document, built from the handlers' annotations. The same document
//! is served at `/api-docs/openapi.json` and committed at `openapi/openapi.json`.

use crate::error::ErrorBody;
use crate::routes::{
    atom, badge, changes, health, notifications, overview, services, silences, stream, uptime,
    watchers,
};
use elkservice_core::store::feed::{Change, ChangeKind};
use elkservice_core::{Service, ServiceEvent, Status};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "elkservice",
        description = "A live record of whether the services of a container deployment are healthy. \
            Reads are open unless the server requires keys for them; writes need \
            `Authorization: Bearer <key>`. Every route under `/elkservice` is also served under \
            `/v1/elkservice`, the seed's Beego path.",
    ),
    paths(
        services::list,
        services::create,
        services::get,
        services::replace,
        services::delete,
        services::events,
        changes::changes,
        stream::stream,
        uptime::uptime,
        overview::overview,
        silences::create,
        silences::list,
        silences::delete,
        atom::feed,
        badge::status,
        badge::uptime,
        notifications::list,
        notifications::get,
        notifications::retry,
        watchers::list,
        watchers::delete,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(Service, services::dto::ServiceFields, Status, services::dto::NewService, services::dto::ServiceUpdate, ServiceEvent, Change, ChangeKind, crate::uptime::Uptime, crate::uptime::Segment, crate::overview::Overview, crate::overview::Group, crate::overview::Counts, crate::overview::Card, silences::NewSilence, silences::SilenceBody, elkservice_core::store::notifications::Notification, elkservice_core::store::notifications::Attempt, notifications::NotificationDetail, elkservice_core::Vote, elkservice_core::store::votes::Watcher, ErrorBody)),
    modifiers(&BearerKey, &V1Aliases),
    tags(
        (name = "elkservice", description = "Watched services and their status"),
        (name = "silences", description = "Holding back notifications during planned work"),
        (name = "notifications", description = "What the notifier sent, is sending, or gave up on"),
        (name = "watchers", description = "The watchers whose votes decide each row"),
        (name = "status", description = "What the status page reads"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
)]
struct ApiDoc;

/// The document, with the `/v1` aliases.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key; the server holds only its SHA-256 digest (`ELK_API__KEYS`). \
                         `elkservice-api new-key` makes one.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Documents each `/elkservice…` path again under `/v1`, with distinct operation ids.
struct V1Aliases;

impl Modify for V1Aliases {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let aliases: Vec<_> = api
            .paths
            .paths
            .iter()
            .filter(|(path, _)| path.starts_with("/elkservice"))
            .map(|(path, item)| {
                let mut item = item.clone();
                for op in [
                    &mut item.get,
                    &mut item.post,
                    &mut item.put,
                    &mut item.delete,
                ]
                .into_iter()
                .flatten()
                {
                    op.operation_id = op
                        .operation_id
                        .as_ref()
                        .map(|id| format!("v1{}", upper_first(id)));
                }
                (format!("/v1{path}"), item)
            })
            .collect();
        api.paths.paths.extend(aliases);
    }
}

/// `listServices` → `ListServices`, so that the alias reads `v1ListServices`.
fn upper_first(id: &str) -> String {
    let mut chars = id.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
