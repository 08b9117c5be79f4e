//! The read model's rows, with the indexes that let a listing visit only
//! the rows it can return: one set of Ids per status, the names in byte
//! order (as `utf8mb4_bin` sorts them) and `StatusChangedAt` in order. A
//! listing over 100k rows that asks for one status, a name prefix, or an
//! order by name or by change then costs what it returns, not the table.
//!
//! Only rows that exist are indexed: a tombstone (a row this process deleted,
//! kept until the feed passes its deletion) is in `slots` alone.

use super::Cached;
use crate::overview::group_of;
use chrono::{DateTime, Utc};
use elkservice_core::{Service, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

pub(super) struct Slot {
    /// The Seq of the change that made this state.
    pub seq: i64,
    /// None: deleted by this process, until the feed passes `seq`.
    pub row: Option<Arc<Cached>>,
}

#[derive(Default)]
pub(super) struct Rows {
    pub(super) slots: BTreeMap<i64, Slot>,
    /// Ids per status, in [`Status::ALL`]'s order.
    pub(super) by_status: [BTreeSet<i64>; 5],
    pub(super) by_name: BTreeSet<(String, i64)>,
    pub(super) by_changed: BTreeSet<(Option<DateTime<Utc>>, i64)>,
    /// Rows per status ([`Status::ALL`]'s order) of each group of names.
    pub(super) by_group: HashMap<String, [usize; 5]>,
    /// How many names start with each prefix a listing asked for: counting
    /// a prefix's range walks it (2,000 names of 100k for a group's prefix),
    /// and the same few prefixes are asked for again and again. Emptied
    /// whenever a name comes or goes.
    pub(super) prefix_counts: Mutex<HashMap<String, usize>>,
}

pub(super) fn status_index(status: Status) -> usize {
    Status::ALL
        .iter()
        .position(|s| *s == status)
        .expect("one of the five")
}

impl Rows {
    pub fn get(&self, id: i64) -> Option<&Slot> {
        self.slots.get(&id)
    }

    pub fn slots(&self) -> impl Iterator<Item = (&i64, &Slot)> {
        self.slots.iter()
    }

    /// Put a slot in place of what the Id had.
    pub fn insert(&mut self, id: i64, slot: Slot) {
        if let Some(row) = &slot.row {
            self.index(&row.service);
        }
        if let Some(old) = self.slots.insert(id, slot) {
            self.unindex_old(id, old);
        }
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(old) = self.slots.remove(&id) {
            self.unindex_old(id, old);
        }
    }

    /// Replace the row of a slot whose Seq is `seq`, keeping that Seq.
    pub fn replace_row(&mut self, id: i64, seq: i64, row: Arc<Cached>) {
        if self.slots.get(&id).is_some_and(|slot| slot.seq == seq) {
            self.insert(
                id,
                Slot {
                    seq,
                    row: Some(row),
                },
            );
        }
    }

    /// Take every slot out, leaving the rows empty.
    pub fn take(&mut self) -> BTreeMap<i64, Slot> {
        std::mem::take(self).slots
    }

    fn index(&mut self, s: &Service) {
        self.by_status[status_index(s.status)].insert(s.id);
        if self.by_name.insert((s.name.as_str().to_owned(), s.id)) {
            self.names_changed();
        }
        self.by_changed.insert((s.status_changed_at, s.id));
        let group = self.by_group.entry(group_of(s.name.as_str()).to_owned());
        group.or_default()[status_index(s.status)] += 1;
    }

    /// Drop what `old` (the Id's slot until now) put in the indexes, unless
    /// the slot now in its place put the same there.
    fn unindex_old(&mut self, id: i64, old: Slot) {
        let Some(old) = old.row else { return };
        let old = &old.service;
        let group = group_of(old.name.as_str());
        if let Some(counts) = self.by_group.get_mut(group) {
            counts[status_index(old.status)] -= 1;
            if counts.iter().all(|n| *n == 0) {
                self.by_group.remove(group);
            }
        }
        let now = self
            .slots
            .get(&id)
            .and_then(|slot| slot.row.as_ref())
            .map(|r| &r.service);
        if now.is_none_or(|n| n.status != old.status) {
            self.by_status[status_index(old.status)].remove(&id);
        }
        let renamed = now.is_none_or(|n| n.name != old.name)
            && self.by_name.remove(&(old.name.as_str().to_owned(), id));
        if now.is_none_or(|n| n.status_changed_at != old.status_changed_at) {
            self.by_changed.remove(&(old.status_changed_at, id));
        }
        if renamed {
            self.names_changed();
        }
    }

    fn names_changed(&mut self) {
        let counts = self.prefix_counts.get_mut();
        counts
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub(super) fn row(&self, id: i64) -> Option<&Arc<Cached>> {
        self.slots.get(&id)?.row.as_ref()
    }

    /// How many rows exist.
    pub(super) fn len(&self) -> usize {
        self.by_status.iter().map(BTreeSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::walks::Order;
    use super::*;
    use crate::listing::ListParams;
    use crate::listing::Listing;
    use crate::overview::{self, Ask};
    use elkservice_core::ServiceName;

    fn service(id: i64, name: &str, status: Status, changed: Option<i64>) -> Service {
        Service {
            failed_count: (id % 4) as u32,
            status_changed_at: changed.map(|c| DateTime::from_timestamp(c, 0).unwrap()),
            ..crate::testing::service(id, name, status)
        }
    }

    fn put(rows: &mut Rows, seq: i64, s: Service) {
        rows.insert(
            s.id,
            Slot {
                seq,
                row: Some(Cached::new(s)),
            },
        );
    }

    /// Rows made, then changed in every way the indexes care about: a new
    /// status, a new name, a new change time, deleted, a tombstone.
    fn table() -> Rows {
        let mut rows = Rows::default();
        let prefixes = ["es-", "esx", "kibana-", "log", "e"];
        for id in 1..=240 {
            let name = format!("{}{:03}", prefixes[id as usize % 5], (id * 37) % 1000);
            let status = Status::ALL[(id as usize * 7) % 5];
            let changed = (id % 3 != 0).then_some(id % 11);
            put(&mut rows, id, service(id, &name, status, changed));
        }
        for id in (1..=240).step_by(9) {
            let s = rows.row(id).unwrap().service.clone();
            let status = Status::ALL[(id as usize + 1) % 5];
            put(&mut rows, 1000 + id, Service { status, ..s });
        }
        for id in (2..=240).step_by(13) {
            let s = rows.row(id).unwrap().service.clone();
            let name = ServiceName::parse(&format!("renamed-{id}")).unwrap();
            put(
                &mut rows,
                2000 + id,
                Service {
                    name,
                    status_changed_at: None,
                    ..s
                },
            );
        }
        for id in (3..=240).step_by(17) {
            rows.remove(id);
        }
        for id in (4..=240).step_by(19) {
            rows.insert(
                id,
                Slot {
                    seq: 3000 + id,
                    row: None,
                },
            );
        }
        rows
    }

    fn listing(query: &str, sortby: &str, order: &str, limit: u32, offset: u64) -> Listing {
        Listing::parse(&ListParams {
            query: (!query.is_empty()).then(|| query.into()),
            sortby: (!sortby.is_empty()).then(|| sortby.into()),
            order: (!order.is_empty()).then(|| order.into()),
            limit: Some(limit.to_string()),
            offset: Some(offset.to_string()),
            ..Default::default()
        })
        .unwrap()
    }

    fn ids(page: &(usize, Vec<Arc<Cached>>)) -> (usize, Vec<i64>) {
        (page.0, page.1.iter().map(|r| r.service.id).collect())
    }

    #[test]
    fn a_remembered_prefix_count_follows_names_that_come_and_go() {
        let mut rows = table();
        let count = |rows: &Rows| {
            rows.list(&listing("Name__startswith:renamed-", "Name", "asc", 1, 0))
                .0
        };
        let before = count(&rows);
        assert!(before > 2, "{before}");
        put(
            &mut rows,
            5000,
            service(9999, "renamed-new", Status::Normal, None),
        );
        assert_eq!(count(&rows), before + 1);
        let s = rows.row(9999).unwrap().service.clone();
        let name = ServiceName::parse("other").unwrap();
        put(&mut rows, 5001, Service { name, ..s });
        assert_eq!(count(&rows), before);
        // A status change leaves the names, and the count, as they were.
        let s = rows.row(2).unwrap().service.clone();
        put(
            &mut rows,
            5002,
            Service {
                status: Status::Unknown,
                ..s
            },
        );
        assert_eq!(count(&rows), before);
        rows.remove(2);
        assert_eq!(count(&rows), before - 1);
    }

    #[test]
    fn every_indexed_walk_returns_what_sorting_every_row_returns() {
        let rows = table();
        let queries = [
            "",
            "Status:down",
            "Status:normal",
            "Status__in:down|unknown",
            "Status:down,FailedCount__gte:2",
            "Name__startswith:es",
            "Name__startswith:es-",
            "Name__startswith:renamed-",
            "Name__startswith:zz",
            "Name:kibana-074",
            "Name__startswith:e,Status:starting",
            "Running:false",
        ];
        let mut checked = 0;
        for query in queries {
            for (sortby, order) in [
                ("", ""),
                ("Id", "desc"),
                ("Name", "asc"),
                ("Name", "desc"),
                ("StatusChangedAt", "asc"),
                ("StatusChangedAt", "desc"),
            ] {
                for (limit, offset) in [(1000, 0), (7, 0), (10, 25), (5, 10_000)] {
                    let l = listing(query, sortby, order, limit, offset);
                    assert!(Order::of(&l).is_some(), "an index holds {sortby} {order}");
                    assert_eq!(
                        ids(&rows.list(&l)),
                        ids(&rows.list_sorted(&l)),
                        "{query} {sortby} {order} {limit} {offset}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 12 * 6 * 4);
        // Not vacuous: the table has what the listings ask about.
        let l = listing("Status:down", "", "", 1000, 0);
        assert!(rows.list(&l).0 > 20);
    }

    #[test]
    fn the_overview_from_the_indexes_is_the_one_from_every_row() {
        let rows = table();
        let every: Vec<Service> = rows
            .slots
            .values()
            .filter_map(|s| s.row.as_ref())
            .map(|r| r.service.clone())
            .collect();
        for (limit, offset) in [(120, 0), (7, 0), (10, 25), (50, 100), (10, 10_000)] {
            let ask = Ask {
                limit,
                offset,
                ..Ask::default()
            };
            let indexed = serde_json::to_value(rows.overview(&ask)).unwrap();
            let walked = serde_json::to_value(overview::compute(every.iter(), &ask)).unwrap();
            assert_eq!(indexed, walked, "limit {limit} offset {offset}");
        }
        let first = rows.overview(&Ask {
            limit: 1,
            ..Ask::default()
        });
        assert_eq!(first.services[0].service.status, Status::Down);
        assert!(first.groups.len() > 2, "not vacuous: {:?}", first.groups);
    }

    #[test]
    fn a_deleted_or_changed_row_leaves_no_trace_in_the_indexes() {
        let mut rows = Rows::default();
        put(&mut rows, 1, service(1, "a", Status::Down, Some(5)));
        put(&mut rows, 2, service(1, "b", Status::Normal, None));
        rows.remove(1);
        assert_eq!(rows.len(), 0);
        assert!(rows.by_name.is_empty() && rows.by_changed.is_empty() && rows.by_group.is_empty());
    }
}
