//! `GET /status/feed.atom`: the problems, for a feed reader. Each entry is a
//! transition into or out of `down` or `degraded`, newest first, with an id
//! that never changes (the transition's own), so a reader shows each once.

use crate::auth::ReadAccess;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use atom_syndication::{Content, Entry, Feed, Generator, Link, Text};
use chrono::Utc;
use elkservice_core::store::history;
use elkservice_core::Status;

/// Entries in the feed: the newest problems.
const ENTRIES: u32 = 50;

/// The newest transitions into or out of a problem, as an Atom feed.
#[utoipa::path(get, path = "/status/feed.atom", operation_id = "getStatusFeed", tag = "status",
    responses(
        (status = 200, description = "An Atom 1.0 feed of problems", content_type = "application/atom+xml", body = String),
        (status = 401, description = "A key is required (when reads need one)", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable", body = crate::error::ErrorBody),
    ))]
pub async fn feed(
    _: ReadAccess,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let problems = history::problems(&mut conn, ENTRIES).await?;
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    let mut entries = Vec::with_capacity(problems.len());
    for p in problems {
        let (name, status, at) = (p.name, p.status, p.observed_at);
        let problem = |s: Status| matches!(s, Status::Down | Status::Degraded);
        let title = match p.from_status {
            Some(from) if problem(from) && !problem(status) => {
                format!("{name} is {status} again after being {from}")
            }
            _ => format!("{name} is {status}"),
        };
        let mut entry = Entry::default();
        entry.set_id(format!("urn:elkservice:transition:{}", p.id));
        entry.set_title(Text::plain(title));
        entry.set_updated(at.fixed_offset());
        entry.set_published(Some(at.fixed_offset()));
        entry.set_links(vec![Link {
            href: format!("{base}/status/?q={name}"),
            ..Link::default()
        }]);
        entry.set_content(Some(Content {
            value: Some(p.detail.unwrap_or_else(|| "no detail".into())),
            content_type: Some("text".into()),
            ..Content::default()
        }));
        entries.push(entry);
    }
    let updated = entries
        .first()
        .map(|e| *e.updated())
        .unwrap_or_else(|| Utc::now().fixed_offset());
    let mut feed = Feed::default();
    feed.set_id(format!("{base}/status/feed.atom"));
    feed.set_title(Text::plain("elkservice: problems"));
    feed.set_updated(updated);
    feed.set_generator(Some(Generator {
        value: "elkservice".into(),
        uri: None,
        version: Some(env!("CARGO_PKG_VERSION").into()),
    }));
    feed.set_links(vec![
        Link {
            href: format!("{base}/status/feed.atom"),
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Link::default()
        },
        Link {
            href: format!("{base}/status/"),
            ..Link::default()
        },
    ]);
    feed.set_entries(entries);
    Ok(HttpResponse::Ok()
        .content_type("application/atom+xml; charset=utf-8")
        .body(feed.to_string()))
}
