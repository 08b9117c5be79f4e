//! The read model: every row of `elkservice` in this process's memory, kept
//! current by following the change feed, so that `GET /elkservice/{Id}` and
//! most listings are answered without a round trip to the database.
//!
//! What a reader can rely on:
//! - a read is answered from memory only while the model is at most
//!   `api.read_model_max_lag_ms` behind the database (it reflects every
//!   change committed before the start of its last complete read of the
//!   feed). A model behind by less than twice that makes a read wait, up to
//!   `read_model_max_lag_ms`, for the reader to bring it back; further
//!   behind, after such a wait, and before the first load, reads go to the
//!   database;
//! - a write through this process is in the model before its response is
//!   sent, so its caller reads it back at once;
//! - `LastCheckedAt` and `UpdatedAt` also move without a feed entry, when a
//!   watcher confirms an unchanged status, and so do the watchers' `Votes`:
//!   those are brought in once a second, so they (and the `ETag`) may lag by
//!   up to a second more. A feed entry does not carry the votes; the row
//!   keeps those it had until the next refresh.
//!
//! Each row remembers the Seq of the change that made it, so an entry older
//! than what a write of this process already put there is ignored, and a
//! row this process deleted is kept as a tombstone until the feed passes
//! its deletion.

mod cached;
mod rows;
mod walks;

pub use cached::{etag, etag_of, Cached, Page};

use crate::listing::Listing;
use elkservice_core::store::feed::Change;
use elkservice_core::store::services::CheckTimes;
use elkservice_core::store::unannounced::Noted;
use elkservice_core::store::votes::Watcher;
use elkservice_core::{Service, Vote};
use rows::{Rows, Slot};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What the model knows of one Id.
pub enum Lookup {
    Found(Arc<Cached>),
    /// No such row, as of a fresh model.
    Missing,
    /// The model is behind (or not loaded): ask the database.
    Behind,
}

#[derive(Default)]
struct State {
    rows: Rows,
    /// Every feed entry up to here is applied.
    seq: i64,
}

impl State {
    fn votes_of(&self, id: i64) -> Vec<Vote> {
        self.rows
            .get(id)
            .and_then(|slot| slot.row.as_ref())
            .map(|r| r.service.votes.clone())
            .unwrap_or_default()
    }
}

pub struct ReadModel {
    max_lag: Duration,
    state: RwLock<State>,
    /// When the last read that left the model caught up began, in µs after
    /// `born`, plus one (0: never). Apart from the rows so that a tick that
    /// finds nothing new takes no lock that readers would wait for.
    fresh_at: AtomicU64,
    born: Instant,
    /// Rung each time `fresh_at` moves, for reads waiting in [`Self::catch_up`].
    moved: Notify,
}

impl ReadModel {
    pub fn new(max_lag: Duration) -> Self {
        ReadModel {
            max_lag,
            state: RwLock::default(),
            fresh_at: AtomicU64::new(0),
            born: Instant::now(),
            moved: Notify::new(),
        }
    }

    /// Mark the model caught up with what a read begun at `at` found.
    /// Called after the rows are in (Release: a reader that sees the mark
    /// sees them).
    fn caught_up(&self, at: Instant) {
        let us = at.saturating_duration_since(self.born).as_micros() as u64 + 1;
        self.fresh_at.fetch_max(us, Ordering::Release);
        self.moved.notify_waiters();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How long ago the last complete read of the feed began; None before
    /// the first load.
    pub fn lag(&self) -> Option<Duration> {
        match self.fresh_at.load(Ordering::Acquire) {
            0 => None,
            us => Some((self.born + Duration::from_micros(us - 1)).elapsed()),
        }
    }

    fn fresh(&self) -> bool {
        self.lag().is_some_and(|lag| lag <= self.max_lag)
    }

    /// Whether a read should wait in [`Self::catch_up`]: the model is behind,
    /// but only lately (by less than `max_lag` beyond its bound).
    pub fn lately_behind(&self) -> bool {
        self.lag()
            .is_some_and(|lag| lag > self.max_lag && lag <= 2 * self.max_lag)
    }

    /// Wait, at most `max_lag`, for the model to be fresh again. A model that
    /// fell behind only lately has met a slow read of the feed (the database
    /// starved of CPU, say): the reader's next read brings it back, and every
    /// waiting read is then answered from memory, instead of each sending a
    /// query of its own to the slow database, which would only queue there
    /// and behind which the reader would wait in turn. Longer behind (the
    /// database gone), reads go to the database at once, as before the first
    /// load.
    pub async fn catch_up(&self) {
        let deadline = tokio::time::Instant::now() + self.max_lag;
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            // Registered before the check: a move in between is not missed.
            moved.as_mut().enable();
            if self.fresh() {
                return;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return;
            }
        }
    }

    pub fn get(&self, id: i64) -> Lookup {
        if !self.fresh() {
            return Lookup::Behind;
        }
        let state = self.read();
        match state.rows.get(id).and_then(|slot| slot.row.clone()) {
            Some(row) => Lookup::Found(row),
            None => Lookup::Missing,
        }
    }

    /// The page of a listing; None if the model is behind or the listing
    /// needs the database's collations.
    pub fn list(&self, listing: &Listing) -> Option<Page> {
        if !listing.in_memory() {
            return None;
        }
        if !self.fresh() {
            return None;
        }
        let state = self.read();
        let (total, rows) = state.rows.list(listing);
        Some(Page {
            seq: state.seq,
            total,
            rows,
        })
    }

    /// The status page's overview of every row, and the Seq it reflects;
    /// None if the model is behind.
    pub fn overview(&self, ask: &crate::overview::Ask) -> Option<(i64, crate::overview::Overview)> {
        if !self.fresh() {
            return None;
        }
        let state = self.read();
        Some((state.seq, state.rows.overview(ask)))
    }

    /// Every watcher with a vote, as the votes in memory show them (as of
    /// their last refresh, once a second); None while the model is behind.
    /// Aggregating the votes table instead costs a third of a second at
    /// 100k services with three watchers each.
    pub fn watchers(&self) -> Option<Vec<Watcher>> {
        if !self.fresh() {
            return None;
        }
        let state = self.read();
        let mut by_id: BTreeMap<&str, Watcher> = BTreeMap::new();
        let rows = state.rows.slots.values().filter_map(|s| s.row.as_ref());
        for vote in rows.flat_map(|r| &r.service.votes) {
            let w = by_id.entry(&vote.watcher).or_insert_with(|| Watcher {
                id: vote.watcher.clone(),
                last_seen_at: vote.observed_at,
                services: 0,
                fresh: false,
            });
            w.last_seen_at = w.last_seen_at.max(vote.observed_at);
            w.services += 1;
            w.fresh |= vote.fresh;
        }
        Some(by_id.into_values().collect())
    }

    /// Every feed entry up to this Seq is applied.
    pub fn seq(&self) -> i64 {
        self.read().seq
    }

    /// What `table` (every row, read in one snapshot as of feed position
    /// `seq`) holds that the feed never said: rows it has and the model
    /// does not, rows the model has and it does not, and rows whose content
    /// differs in what a feed entry would show. Rows the model took from an
    /// entry after `seq` are left out: the snapshot is older than them.
    pub(crate) fn unannounced(&self, seq: i64, table: &[Service]) -> Vec<Noted> {
        let state = self.read();
        let mut found = Vec::new();
        let mut ids = std::collections::HashSet::with_capacity(table.len());
        for row in table {
            ids.insert(row.id);
            let before = match state.rows.get(row.id) {
                Some(slot) if slot.seq > seq => continue,
                Some(Slot { row: Some(r), .. }) if seen(&r.service) == seen(row) => continue,
                Some(Slot { row: Some(r), .. }) => Some(r.service.status),
                _ => None,
            };
            found.push(Noted {
                id: row.id,
                name: row.name.clone(),
                before,
            });
        }
        for (id, slot) in state.rows.slots() {
            if let Some(r) = slot.row.as_ref().filter(|_| slot.seq <= seq) {
                if !ids.contains(id) {
                    found.push(Noted {
                        id: *id,
                        name: r.service.name.clone(),
                        before: Some(r.service.status),
                    });
                }
            }
        }
        found
    }

    /// Forget every row: the feed was made afresh (a restore of the whole
    /// database), so the Seqs the model holds mean other changes.
    pub(crate) fn forget(&self) {
        let mut state = self.write();
        *state = State::default();
        // Not fresh until loaded again: reads go to the database meanwhile.
        self.fresh_at.store(0, Ordering::Release);
    }

    /// A write of this process, committed as `seq`: in the model at once.
    pub fn apply_own(&self, seq: i64, id: i64, row: Option<&Service>) {
        let mut state = self.write();
        if state.rows.get(id).is_some_and(|slot| slot.seq >= seq) {
            return;
        }
        let votes = state.votes_of(id);
        let row = row.map(|s| Cached::new(with_votes(s.clone(), votes)));
        state.rows.insert(id, Slot { seq, row });
    }

    /// The whole table as of feed position `seq` (read in one snapshot).
    /// A write of this process committed after the snapshot (a request that
    /// came while it was read) is kept: its caller may read it back at once.
    pub(crate) fn load(&self, seq: i64, rows: Vec<Service>, read_at: Instant) {
        let mut loaded = Rows::default();
        for s in rows {
            let id = s.id;
            let row = Some(Cached::new(s));
            loaded.insert(id, Slot { seq, row });
        }
        let mut state = self.write();
        for (id, slot) in state.rows.take() {
            if slot.seq > seq {
                loaded.insert(id, slot);
            }
        }
        *state = State { rows: loaded, seq };
        drop(state);
        self.caught_up(read_at);
    }

    /// Feed entries after the model's position, in order; `caught_up` is
    /// when the read that found them began, if it found all there were.
    pub(crate) fn apply(&self, entries: &[Change], caught_up: Option<Instant>) {
        if !entries.is_empty() {
            self.apply_entries(entries);
        }
        if let Some(at) = caught_up {
            self.caught_up(at);
        }
    }

    fn apply_entries(&self, entries: &[Change]) {
        let votes: Vec<Vec<Vote>> = {
            let state = self.read();
            entries.iter().map(|e| state.votes_of(e.id)).collect()
        };
        let made: Vec<_> = entries
            .iter()
            .zip(votes)
            .map(|(e, v)| e.service.clone().map(|s| Cached::new(with_votes(s, v))))
            .collect();
        let mut state = self.write();
        for (entry, row) in entries.iter().zip(made) {
            if entry.seq <= state.seq {
                continue;
            }
            state.seq = entry.seq;
            if state.rows.get(entry.id).is_some_and(|s| s.seq > entry.seq) {
                continue;
            }
            match row {
                Some(row) => {
                    state.rows.insert(
                        entry.id,
                        Slot {
                            seq: entry.seq,
                            row: Some(row),
                        },
                    );
                }
                None => {
                    state.rows.remove(entry.id);
                }
            }
        }
    }

    /// `LastCheckedAt`, `UpdatedAt` and the votes of every row, read in the
    /// same snapshot as the feed up to the model's position. The new
    /// versions are made outside the lock, and kept only if nothing changed
    /// the row meanwhile.
    pub(crate) fn refresh(&self, checked: Vec<CheckTimes>, mut votes: HashMap<i64, Vec<Vote>>) {
        let moved: Vec<(i64, i64, Service)> = {
            let state = self.read();
            checked
                .into_iter()
                .filter_map(|c| {
                    let slot = state.rows.get(c.id)?;
                    // A write of this process, newer than the snapshot, is left alone.
                    let row = slot.row.as_ref().filter(|_| slot.seq <= state.seq)?;
                    let s = &row.service;
                    let v = votes.remove(&c.id).unwrap_or_default();
                    ((s.last_checked_at, s.updated_at, &s.votes)
                        != (c.last_checked_at, c.updated_at, &v))
                        .then(|| {
                            let moved = Service {
                                last_checked_at: c.last_checked_at,
                                updated_at: c.updated_at,
                                votes: v,
                                ..s.clone()
                            };
                            (c.id, slot.seq, moved)
                        })
                })
                .collect()
        };
        if moved.is_empty() {
            return;
        }
        let made: Vec<_> = moved
            .into_iter()
            .map(|(id, seq, s)| (id, seq, Cached::new(s)))
            .collect();
        let mut state = self.write();
        for (id, seq, row) in made {
            state.rows.replace_row(id, seq, row);
        }
    }
}

/// `service` with the votes the model holds for it.
fn with_votes(service: Service, votes: Vec<Vote>) -> Service {
    Service { votes, ..service }
}

/// What a feed entry shows of a row: all but the times that a confirmation
/// moves without one.
fn seen(s: &Service) -> impl PartialEq + '_ {
    (
        (&s.name, s.status, s.running, s.failed_count),
        (&s.detail, s.status_changed_at, s.created_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use elkservice_core::Status;

    fn service(id: i64, name: &str) -> Service {
        crate::testing::service(id, name, Status::Normal)
    }

    fn name_of(model: &ReadModel, id: i64) -> Option<String> {
        match model.get(id) {
            Lookup::Found(row) => Some(row.service.name.as_str().to_owned()),
            Lookup::Missing => None,
            Lookup::Behind => panic!("the model is loaded and fresh"),
        }
    }

    #[test]
    fn a_load_keeps_the_writes_of_this_process_committed_after_its_snapshot() {
        let model = ReadModel::new(Duration::from_secs(60));
        // While the first snapshot (as of Seq 4) is being read, this process
        // edits row 1 (Seq 3, which the snapshot holds), creates row 2 (Seq 5)
        // and deletes row 3 (Seq 6).
        model.apply_own(3, 1, Some(&service(1, "edited")));
        model.apply_own(5, 2, Some(&service(2, "created")));
        model.apply_own(6, 3, None);
        let snapshot = vec![service(1, "as-read"), service(3, "deleted-later")];
        model.load(4, snapshot, Instant::now());
        assert_eq!(name_of(&model, 1).as_deref(), Some("as-read"));
        assert_eq!(name_of(&model, 2).as_deref(), Some("created"));
        assert_eq!(name_of(&model, 3), None);
    }

    #[test]
    fn a_table_that_differs_from_the_feed_names_each_difference_once() {
        let model = ReadModel::new(Duration::from_secs(60));
        let unchanged = service(1, "same");
        let mut edited = service(2, "edited");
        let gone = service(3, "gone");
        let mut newer = service(4, "newer-than-snapshot");
        model.load(
            10,
            vec![unchanged.clone(), edited.clone(), gone, newer.clone()],
            Instant::now(),
        );
        // An entry after the snapshot: the table's older copy is not a change.
        newer.status = Status::Down;
        model.apply_own(11, 4, Some(&newer));
        let mut checked = unchanged.clone();
        checked.last_checked_at = Some(checked.created_at);
        edited.status = Status::Down;
        let table = vec![
            checked,
            edited,
            service(4, "newer-than-snapshot"),
            service(5, "new"),
        ];
        let found = model.unannounced(10, &table);
        let named: Vec<_> = found.iter().map(|n| (n.id, n.before)).collect();
        assert_eq!(
            named,
            [
                (2, Some(Status::Normal)),
                (5, None),
                (3, Some(Status::Normal))
            ]
        );
    }
}
