//! A row as this process serves it: its JSON and strong `ETag`, made once
//! per change and shared by every read until the next.

use crate::listing::Listing;
use actix_web::http::header::EntityTag;
use actix_web::web::Bytes;
use elkservice_core::Service;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The row's strong entity tag: a digest of its JSON, so it changes whenever
/// anything a client sees changes.
pub fn etag(service: &Service) -> EntityTag {
    etag_of(&serde_json::to_vec(service).expect("a row serialises"))
}

/// A strong entity tag for a representation: a digest of its bytes.
pub fn etag_of(bytes: &[u8]) -> EntityTag {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    EntityTag::new_strong(hex)
}

/// A row as GET sends it: its JSON and its `ETag`, made once per change.
#[derive(Debug)]
pub struct Cached {
    pub service: Service,
    pub json: Bytes,
    pub etag: EntityTag,
}

impl Cached {
    pub(super) fn new(service: Service) -> Arc<Self> {
        let json = serde_json::to_vec(&service).expect("a row serialises");
        Arc::new(Cached {
            etag: etag_of(&json),
            json: Bytes::from(json),
            service,
        })
    }
}

/// A listing answered from memory.
pub struct Page {
    /// Every change up to this Seq is in the rows.
    pub seq: i64,
    /// Matching rows, before limit and offset.
    pub total: usize,
    pub rows: Vec<Arc<Cached>>,
}

impl Page {
    /// The page as `GET /elkservice` sends it: the rows' own JSON joined, or
    /// with `fields`, each reduced to those.
    pub fn json(&self, listing: &Listing) -> Vec<u8> {
        if listing.fields.is_some() {
            let rows: Vec<_> = self
                .rows
                .iter()
                .map(|r| listing.project(&r.service))
                .collect();
            return serde_json::to_vec(&rows).expect("rows serialise");
        }
        let mut body =
            Vec::with_capacity(2 + self.rows.iter().map(|r| r.json.len() + 1).sum::<usize>());
        body.push(b'[');
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&row.json);
        }
        body.push(b']');
        body
    }
}
