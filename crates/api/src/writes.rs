//! Writes through the API, one transaction each as far as a client can tell:
//! the row, its history row on a status change and its feed entry commit
//! together or not at all, and a write of this process is in the read model
//! before its response goes out.
//!
//! PUTs are group-committed: requests that arrive while a commit is under way
//! wait in a queue, and the next commit takes all of them (up to
//! [`MOST_PER_COMMIT`]) in one transaction: the rows are locked with one
//! statement (which also gives the database's time), each checked
//! (`If-Match`, existence); then one [`Script`] updates them all (with that
//! time, so the new rows are known without reading them back), writes the
//! history and feed rows and commits, in a single round trip. The
//! transaction's fixed cost (lock, feed counter, commit) is shared by every
//! request in it instead of paid by each, which is what makes PUT cheap
//! under load, and costs nothing when idle (a lone request is a commit of
//! one). A group is two round trips in all; with a statement each, it was
//! six, and at 16 connections, where a group's latency is what bounds
//! PUTs/s, the script gave 6.3–7.0k PUTs/s against 4.7–6.0k (README). A
//! request refused on its own (404, 412) leaves the others to commit; if the
//! commit fails as a whole (a Name taken by another row, a deadlock), each
//! request is run again in a transaction of its own, so it gets its own
//! answer.
//!
//! The committer has a connection of its own, outside the pool, with
//! autocommit off: its first statement opens the transaction, so no `BEGIN`
//! round trip (measured: 6.8–7.3k PUTs/s at 16 connections against 6.5–6.8k
//! with a pooled `BEGIN`; 14.5–15.7k against 13.7k at 64).

use crate::error::ApiError;
use crate::model::ReadModel;
use crate::precondition::IfMatch;
use chrono::{DateTime, Utc};
use elkservice_core::db;
use elkservice_core::store::feed::{self, ChangeKind, NewChange, Source};
use elkservice_core::store::script::Script;
use elkservice_core::store::services::{self as rows, Replacement, RowValues};
use elkservice_core::store::{history, HistoryRow};
use elkservice_core::{Service, ServiceName, Status};
use prometheus::Histogram;
use sqlx::{MySqlConnection, MySqlPool};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most PUTs in one commit.
pub const MOST_PER_COMMIT: usize = 64;

pub(crate) fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no service with Id {id}"))
}

/// A unique-key violation is a 409 naming the clashing field.
pub(crate) fn conflict(e: sqlx::Error) -> ApiError {
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

/// A feed entry for a change made through the API.
fn change(
    kind: ChangeKind,
    from: Option<Status>,
    service: &Service,
    at: DateTime<Utc>,
) -> NewChange {
    NewChange {
        kind,
        service_id: service.id,
        name: service.name.clone(),
        at,
        from,
        service: Some(service.clone()),
        source: Source::Api,
    }
}

/// What an edit through the API was to a client: a transition if the status
/// changed, an update if anything else it sees did, nothing otherwise.
fn edit_kind(before: &Service, after: &Service) -> Option<ChangeKind> {
    let seen = |s: &Service| (s.name.clone(), s.running, s.failed_count, s.detail.clone());
    if before.status != after.status {
        Some(ChangeKind::Transition)
    } else if seen(before) != seen(after) {
        Some(ChangeKind::Updated)
    } else {
        None
    }
}

/// The history row for a change made through the API, now.
fn api_transition(service: &Service, from: Option<Status>) -> HistoryRow<'_> {
    HistoryRow {
        service_id: service.id,
        from,
        status: service.status,
        running: service.running,
        detail: service.detail.as_deref(),
        observed_at: None,
        source: "api",
    }
}

/// The writes of this process: to the database, and into its read model.
#[derive(Clone)]
pub struct Writes {
    db: Arc<Db>,
    queue: mpsc::Sender<Queued>,
}

/// Where writes go. The committer holds this, not the queue's sender, so it
/// ends when the last [`Writes`] is dropped.
struct Db {
    pool: MySqlPool,
    model: Option<Arc<ReadModel>>,
    /// PUTs per commit, for `/metrics`.
    group_size: Histogram,
}

/// The new values of a row, as a PUT gives them.
pub struct Edit {
    pub id: i64,
    pub name: ServiceName,
    pub status: Status,
    pub running: bool,
    pub failed_count: u32,
    pub detail: Option<String>,
    pub if_match: IfMatch,
}

impl Edit {
    fn values(&self) -> RowValues<'_> {
        RowValues {
            name: &self.name,
            status: self.status,
            running: self.running,
            failed_count: self.failed_count,
            detail: self.detail.as_deref(),
        }
    }
}

type Queued = (Edit, oneshot::Sender<Result<Service, ApiError>>);

impl Writes {
    /// Start the committer of PUTs. One: while it waits on the database the
    /// next group fills. With a statement per step, two groups at once waited
    /// on each other's row locks and on the feed's counter (PUTs/s at 16 / 64
    /// connections: one committer 5.5k / 12.0k, two 5.1k / 11.2k, four
    /// 4.6k / 10.2k, eight 3.4k / 6.9k). Since the script holds the counter
    /// only inside the server, two are level with one on two cores (8.4–8.7k
    /// against 8.3–8.5k at 16; 17.8–18.4k against 17.1–17.3k at 64), with
    /// groups half the size and MariaDB's CPU per PUT 20 % higher.
    pub fn start(pool: MySqlPool, model: Option<Arc<ReadModel>>, group_size: Histogram) -> Self {
        let (queue, rx) = mpsc::channel(4 * MOST_PER_COMMIT);
        let db = Arc::new(Db {
            pool,
            model,
            group_size,
        });
        tokio::spawn(db.clone().commit_queued(rx));
        Writes { db, queue }
    }

    /// Insert a row, its first history row and its feed entry.
    pub async fn create(
        &self,
        id: Option<i64>,
        values: RowValues<'_>,
    ) -> Result<Service, ApiError> {
        let mut tx = self.db.pool.begin().await?;
        let id = rows::insert(&mut tx, id, values).await.map_err(conflict)?;
        let service = rows::fetch(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        history::insert(&mut tx, &[api_transition(&service, None)]).await?;
        let created = change(ChangeKind::Created, None, &service, service.created_at);
        let seq = feed::record(&mut tx, &[created]).await?;
        tx.commit().await?;
        self.db.remember(seq, id, Some(&service));
        Ok(service)
    }

    /// Delete a row (with `If-Match`, only the version the client read).
    pub async fn delete(&self, id: i64, if_match: &IfMatch) -> Result<(), ApiError> {
        let mut tx = self.db.pool.begin().await?;
        let current = rows::lock(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if_match.check(&current)?;
        rows::delete(&mut tx, &current).await?;
        let deleted = NewChange {
            service: None,
            ..change(
                ChangeKind::Deleted,
                Some(current.status),
                &current,
                Utc::now(),
            )
        };
        let seq = feed::record(&mut tx, &[deleted]).await?;
        tx.commit().await?;
        self.db.remember(seq, id, None);
        Ok(())
    }

    /// Replace a row's values, in the next group commit.
    pub async fn replace(&self, edit: Edit) -> Result<Service, ApiError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Internal(anyhow::anyhow!("the committers have stopped"));
        self.queue
            .send((edit, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Db {
    fn remember(&self, seq: i64, id: i64, row: Option<&Service>) {
        if let Some(model) = &self.model {
            model.apply_own(seq, id, row);
        }
    }

    async fn commit_queued(self: Arc<Self>, mut rx: mpsc::Receiver<Queued>) {
        let mut conn: Option<MySqlConnection> = None;
        while let Some(first) = rx.recv().await {
            let mut taken = vec![first];
            while taken.len() < MOST_PER_COMMIT {
                match rx.try_recv() {
                    Ok(next) => taken.push(next),
                    Err(_) => break,
                }
            }
            // Two edits of one row go to successive commits, in arrival order.
            while !taken.is_empty() {
                let mut ids = HashSet::new();
                let (now, later) = taken.into_iter().partition(|(e, _)| ids.insert(e.id));
                self.commit(&mut conn, now).await;
                taken = later;
            }
        }
    }

    /// Commit `edits` (of distinct rows) together; one by one if that fails.
    async fn commit(&self, conn: &mut Option<MySqlConnection>, edits: Vec<Queued>) {
        self.group_size.observe(edits.len() as f64);
        let together: Vec<&Edit> = edits.iter().map(|(e, _)| e).collect();
        match self.replace_together(conn, &together).await {
            Ok(answers) => {
                for ((_, reply), answer) in edits.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                if edits.len() > 1 {
                    tracing::debug!(error = %e, edits = edits.len(),
                        "a group commit failed; committing its edits one by one");
                }
                for (edit, reply) in edits {
                    let answer = match self.replace_together(conn, &[&edit]).await {
                        Ok(mut answers) => answers.pop().expect("one answer per edit"),
                        Err(e) => Err(conflict(e)),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }

    /// One transaction for `edits`: a refused edit (404, 412) gets its own
    /// answer and leaves the others to commit; a database error fails all.
    async fn replace_together(
        &self,
        conn: &mut Option<MySqlConnection>,
        edits: &[&Edit],
    ) -> Result<Vec<Result<Service, ApiError>>, sqlx::Error> {
        let c = db::own_connection(conn, &self.pool).await?;
        let result = self.replace_in(c, edits).await;
        if result.is_err() {
            db::roll_back_or_drop(conn).await;
        }
        result
    }

    async fn replace_in(
        &self,
        tx: &mut MySqlConnection,
        edits: &[&Edit],
    ) -> Result<Vec<Result<Service, ApiError>>, sqlx::Error> {
        let ids: Vec<i64> = edits.iter().map(|e| e.id).collect();
        let (mut before, now) = rows::lock_many(tx, &ids).await?;
        // As the client read them: If-Match compares ETags of whole rows.
        rows::with_votes(tx, before.values_mut()).await?;
        // The rows after: what the edit sets over what was there, with the
        // database's time as of the lock for what changes (no reading back).
        let mut answers = Vec::with_capacity(edits.len());
        let mut changed = Vec::with_capacity(edits.len());
        for e in edits {
            let Some((was, now)) = before.get(&e.id).zip(now) else {
                answers.push(Err(not_found(e.id)));
                continue;
            };
            if let Err(refused) = e.if_match.check(was) {
                answers.push(Err(refused));
                continue;
            }
            let mut row = Service {
                name: e.name.clone(),
                status: e.status,
                running: e.running,
                failed_count: e.failed_count,
                detail: e.detail.clone(),
                ..was.clone()
            };
            if edit_kind(was, &row).is_some() {
                row.updated_at = now;
                if was.status != row.status {
                    row.status_changed_at = Some(now);
                }
                changed.push((e, was, answers.len()));
            }
            answers.push(Ok(row));
        }
        if changed.is_empty() {
            sqlx::query("ROLLBACK").execute(&mut *tx).await?;
            return Ok(answers);
        }
        // In the order the rows were locked in.
        changed.sort_by_key(|(e, _, _)| e.id);
        let replacements: Vec<_> = changed
            .iter()
            .map(|(e, was, _)| Replacement {
                id: e.id,
                values: e.values(),
                status_changes: was.status != e.status,
            })
            .collect();
        let mut script = Script::default();
        rows::replace_many(&mut script, &replacements, now.expect("a locked row"));
        let (mut transitions, mut entries) = (Vec::new(), Vec::new());
        for (_, was, answer) in &changed {
            let Ok(now) = &answers[*answer] else {
                unreachable!("only rows that were changed")
            };
            if was.status != now.status {
                transitions.push(api_transition(now, Some(was.status)));
            }
            let kind = edit_kind(was, now).expect("only rows that were changed");
            entries.push(change(kind, Some(was.status), now, now.updated_at));
        }
        history::push_insert(&mut script, &transitions);
        let seqs = feed::push_record(&mut script, &entries);
        let results = script.commit(tx).await?;
        let first = seqs.first(&results);
        for (seq, entry) in (first..).zip(&entries) {
            self.remember(seq, entry.service_id, entry.service.as_ref());
        }
        Ok(answers)
    }
}
