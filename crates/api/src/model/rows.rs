//! The read model's rows, with the indexes that let a listing visit only
//! the rows it can return: one set of Ids per status, the names in byte
//! order (as `utf8mb4_bin` sorts them) and `StatusChangedAt` in order. A
//! listing over 100k rows that asks for one status, a name prefix, or an
//! order by name or by change then costs what it returns, not the table.
//!
//! Only rows that exist are indexed: a tombstone (a row this process deleted,
//! kept until the feed passes its deletion) is in `slots` alone.

use super::Cached;
use crate::listing::{Filter, Listing, Op, Sort, Value};
use crate::overview::{self, group_of, Ask, Card, Counts, Group, Overview, CONCERN};
use chrono::{DateTime, Utc};
use elkservice_core::store::Field;
use elkservice_core::{Service, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

pub(super) struct Slot {
    /// The Seq of the change that made this state.
    pub seq: i64,
    /// None: deleted by this process, until the feed passes `seq`.
    pub row: Option<Arc<Cached>>,
}

#[derive(Default)]
pub(super) struct Rows {
    slots: BTreeMap<i64, Slot>,
    by_status: [BTreeSet<i64>; 5],
    by_name: BTreeSet<(String, i64)>,
    by_changed: BTreeSet<(Option<DateTime<Utc>>, i64)>,
    /// Rows per status ([`Status::ALL`]'s order) of each group of names.
    by_group: HashMap<String, [usize; 5]>,
}

fn status_index(status: Status) -> usize {
    Status::ALL
        .iter()
        .position(|s| *s == status)
        .expect("one of the five")
}

/// The order a listing asks for, where an index holds it.
#[derive(Clone, Copy)]
enum Order {
    Id { descending: bool },
    Name { descending: bool },
    Changed { descending: bool },
}

impl Order {
    /// The listing's sort, which always ends with Id (ascending unless
    /// asked otherwise), so that pages are stable.
    fn of(listing: &Listing) -> Option<Order> {
        let by_id = Sort {
            field: Field::Id,
            descending: false,
        };
        match listing.sort.as_slice() {
            [] => Some(Order::Id { descending: false }),
            [s] if s.field == Field::Id => Some(Order::Id {
                descending: s.descending,
            }),
            [s, then] if *then == by_id => match s.field {
                Field::Name => Some(Order::Name {
                    descending: s.descending,
                }),
                Field::StatusChangedAt => Some(Order::Changed {
                    descending: s.descending,
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Which rows a name filter keeps, as a range of the name index.
enum Names<'a> {
    Exactly(&'a str),
    Prefix(&'a str),
}

impl<'a> Names<'a> {
    fn of(filter: &'a Filter) -> Option<Self> {
        match (filter.field, filter.op, filter.values.as_slice()) {
            (Field::Name, Op::Exact, [Value::Text(t)]) => Some(Names::Exactly(t)),
            (Field::Name, Op::StartsWith, [Value::Text(t)]) => Some(Names::Prefix(t)),
            _ => None,
        }
    }
}

type Range<K> = (Bound<(K, i64)>, Bound<(K, i64)>);

impl Names<'_> {
    fn range(&self) -> Range<String> {
        match self {
            Names::Exactly(name) => (
                Bound::Included((name.to_string(), i64::MIN)),
                Bound::Included((name.to_string(), i64::MAX)),
            ),
            Names::Prefix(prefix) => (
                Bound::Included((prefix.to_string(), i64::MIN)),
                match prefix_end(prefix) {
                    Some(end) => Bound::Excluded((end, i64::MIN)),
                    None => Bound::Unbounded,
                },
            ),
        }
    }
}

/// The statuses a status filter keeps.
fn statuses(filter: &Filter) -> Option<Vec<Status>> {
    if filter.field != Field::Status || !matches!(filter.op, Op::Exact | Op::In) {
        return None;
    }
    filter
        .values
        .iter()
        .map(|v| match v {
            Value::Text(t) => t.parse().ok(),
            _ => None,
        })
        .collect()
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
        self.by_name.insert((s.name.as_str().to_owned(), s.id));
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
        if now.is_none_or(|n| n.name != old.name) {
            self.by_name.remove(&(old.name.as_str().to_owned(), id));
        }
        if now.is_none_or(|n| n.status_changed_at != old.status_changed_at) {
            self.by_changed.remove(&(old.status_changed_at, id));
        }
    }

    fn row(&self, id: i64) -> Option<&Arc<Cached>> {
        self.slots.get(&id)?.row.as_ref()
    }

    /// How many rows exist.
    fn len(&self) -> usize {
        self.by_status.iter().map(BTreeSet::len).sum()
    }

    /// The rows a listing returns, after its offset and up to its limit, and
    /// how many match in all. The listing must be one the model can answer
    /// ([`Listing::in_memory`]).
    pub fn list(&self, listing: &Listing) -> (usize, Vec<Arc<Cached>>) {
        let Some(order) = Order::of(listing) else {
            return self.list_sorted(listing);
        };
        let offset = usize::try_from(listing.offset).unwrap_or(usize::MAX);
        let limit = listing.limit as usize;
        // With the count known from the indexes, the walk stops at the page's
        // end; if the index walked is the filter itself, it skips to the page
        // without looking at a row.
        if let Some(total) = self.count(listing) {
            let ids = self.candidates(listing, order);
            let rows: Vec<_> = if covers(listing, order) {
                ids.skip(offset)
                    .take(limit)
                    .filter_map(|id| self.row(id).cloned())
                    .collect()
            } else {
                ids.filter_map(|id| self.row(id))
                    .filter(|r| listing.matches(&r.service))
                    .skip(offset)
                    .take(limit)
                    .cloned()
                    .collect()
            };
            return (total, rows);
        }
        let matching = self
            .candidates(listing, order)
            .filter_map(|id| self.row(id))
            .filter(|r| listing.matches(&r.service));
        let mut total = 0;
        let mut rows = Vec::new();
        for row in matching {
            if total >= offset && rows.len() < limit {
                rows.push(row.clone());
            }
            total += 1;
        }
        (total, rows)
    }

    /// How many rows pass the listing's filters, where the indexes tell:
    /// none, one on the status, or one on the name.
    fn count(&self, listing: &Listing) -> Option<usize> {
        match listing.filters.as_slice() {
            [] => Some(self.len()),
            [f] => {
                if let Some(statuses) = statuses(f) {
                    let mut statuses = statuses;
                    statuses.sort_unstable_by_key(|s| status_index(*s));
                    statuses.dedup();
                    return Some(
                        statuses
                            .iter()
                            .map(|s| self.by_status[status_index(*s)].len())
                            .sum(),
                    );
                }
                Names::of(f).map(|names| self.by_name.range(names.range()).count())
            }
            _ => None,
        }
    }

    /// Ids in the listing's order, from the narrowest index that holds it;
    /// each still has to pass the filters.
    fn candidates<'a>(
        &'a self,
        listing: &'a Listing,
        order: Order,
    ) -> Box<dyn Iterator<Item = i64> + 'a> {
        match order {
            Order::Id { descending } => {
                if let Some(set) = listing.filters.iter().find_map(statuses) {
                    if let [one] = set.as_slice() {
                        let ids = self.by_status[status_index(*one)].iter().copied();
                        return directed(ids, descending);
                    }
                    let mut ids: Vec<i64> = set
                        .iter()
                        .flat_map(|s| self.by_status[status_index(*s)].iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids.dedup(); // a status named twice
                    return directed(ids.into_iter(), descending);
                }
                if let Some(names) = listing.filters.iter().find_map(Names::of) {
                    let mut ids: Vec<i64> = self
                        .by_name
                        .range(names.range())
                        .map(|(_, id)| *id)
                        .collect();
                    ids.sort_unstable();
                    return directed(ids.into_iter(), descending);
                }
                // Only the rows that exist, as the indexes hold only those.
                let live = self.slots.iter().filter(|(_, s)| s.row.is_some());
                directed(live.map(|(id, _)| *id), descending)
            }
            Order::Name { descending } => {
                let range = match listing.filters.iter().find_map(Names::of) {
                    Some(names) => names.range(),
                    None => (Bound::Unbounded, Bound::Unbounded),
                };
                if descending {
                    highest_first(&self.by_name, range)
                } else {
                    Box::new(self.by_name.range(range).map(|(_, id)| *id))
                }
            }
            Order::Changed { descending: false } => {
                Box::new(self.by_changed.iter().map(|(_, id)| *id))
            }
            Order::Changed { descending: true } => {
                highest_first(&self.by_changed, (Bound::Unbounded, Bound::Unbounded))
            }
        }
    }

    /// The status page's overview, from the indexes alone when it asks for
    /// no search and no group: then it costs the groups and the page, not
    /// the rows. With either, every row is looked at.
    pub fn overview(&self, ask: &Ask) -> Overview {
        if ask.q.as_deref().is_some_and(|q| !q.trim().is_empty()) || ask.group.is_some() {
            let rows = self.slots.values().filter_map(|s| s.row.as_ref());
            return overview::compute(rows.map(|r| &r.service), ask);
        }
        let counts = |per: &[usize; 5]| {
            Counts::of_each(Status::ALL.iter().copied().zip(per.iter().copied()))
        };
        let groups = self
            .by_group
            .iter()
            .map(|(name, per)| Group {
                name: name.clone(),
                total: per.iter().sum(),
                counts: counts(per),
            })
            .collect();
        let per_status = self.by_status.each_ref().map(BTreeSet::len);
        let mut services = Vec::new();
        let mut skip = ask.offset;
        for status in CONCERN {
            if services.len() >= ask.limit {
                break;
            }
            let set = &self.by_status[status_index(status)];
            if skip >= set.len() {
                skip -= set.len();
                continue;
            }
            let wanted = (ask.limit - services.len()).min(set.len() - skip);
            // A few (the problems, as a rule): sorted by name. Many: the
            // name index walked, keeping this status.
            let page: Vec<&Arc<Cached>> = if set.len() * 8 < self.len() {
                let mut rows: Vec<&Arc<Cached>> =
                    set.iter().filter_map(|id| self.row(*id)).collect();
                rows.sort_unstable_by(|a, b| a.service.name.as_str().cmp(b.service.name.as_str()));
                rows.into_iter().skip(skip).take(wanted).collect()
            } else {
                self.by_name
                    .iter()
                    .filter_map(|(_, id)| self.row(*id))
                    .filter(|r| r.service.status == status)
                    .skip(skip)
                    .take(wanted)
                    .collect()
            };
            skip = 0;
            services.extend(page.into_iter().map(|r| Card {
                service: r.service.clone(),
                segments: Vec::new(),
            }));
        }
        Overview {
            total: self.len(),
            counts: counts(&per_status),
            groups: overview::rank(groups),
            matched: self.len(),
            services,
        }
    }

    /// What no index holds: every row that matches, sorted.
    fn list_sorted(&self, listing: &Listing) -> (usize, Vec<Arc<Cached>>) {
        // In Id order already: the sort only has to move what it names.
        let mut rows: Vec<&Arc<Cached>> = self
            .slots
            .values()
            .filter_map(|slot| slot.row.as_ref())
            .filter(|row| listing.matches(&row.service))
            .collect();
        rows.sort_by(|a, b| listing.compare(&a.service, &b.service));
        let offset = usize::try_from(listing.offset).unwrap_or(usize::MAX);
        let page = rows
            .iter()
            .skip(offset)
            .take(listing.limit as usize)
            .map(|r| (*r).clone())
            .collect();
        (rows.len(), page)
    }
}

/// The first string after every string that starts with `prefix`, in byte
/// order; None when there is none (every byte is 0xFF, which no name has).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            // Names are ASCII, so the bytes stay UTF-8.
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// Whether [`Rows::candidates`] yields exactly the rows that pass the
/// listing's filters, each once, so that none needs checking. (Every
/// candidate is a row that exists.)
fn covers(listing: &Listing, order: Order) -> bool {
    match (listing.filters.as_slice(), order) {
        ([], _) => true,
        ([f], Order::Id { .. }) => statuses(f).is_some() || Names::of(f).is_some(),
        ([f], Order::Name { .. }) => Names::of(f).is_some(),
        _ => false,
    }
}

/// The Ids of an index's `range`, keys from the highest down and the Ids of
/// one key in ascending order, as a stable sort of rows in Id order has
/// them. Each key's Ids are walked forwards as they are taken, so a key that
/// thousands of rows share (no `StatusChangedAt` yet) costs only what is taken.
fn highest_first<'a, K: Ord + Clone + 'a>(
    set: &'a BTreeSet<(K, i64)>,
    range: Range<K>,
) -> Box<dyn Iterator<Item = i64> + 'a> {
    let (low, mut high) = range;
    let mut key: Option<std::collections::btree_set::Range<'a, (K, i64)>> = None;
    Box::new(std::iter::from_fn(move || loop {
        if let Some((_, id)) = key.as_mut().and_then(Iterator::next) {
            return Some(*id);
        }
        let (next, _) = set.range((low.clone(), high.clone())).next_back()?;
        key = Some(set.range((next.clone(), i64::MIN)..=(next.clone(), i64::MAX)));
        high = Bound::Excluded((next.clone(), i64::MIN));
    }))
}

fn directed<'a>(
    ids: impl DoubleEndedIterator<Item = i64> + 'a,
    descending: bool,
) -> Box<dyn Iterator<Item = i64> + 'a> {
    if descending {
        Box::new(ids.rev())
    } else {
        Box::new(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::ListParams;
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
