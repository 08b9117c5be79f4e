//! Listings and the status page's overview, answered by walking the
//! indexes of [`Rows`]: only the rows a page returns are visited where an
//! index holds the order and the filter, and the count comes from the
//! indexes where they tell it.

use super::rows::{status_index, Rows};
use super::Cached;
use crate::listing::{Filter, Listing, Op, Sort, Value};
use crate::overview::{self, Ask, Card, Counts, Group, Overview, CONCERN};
use elkservice_core::store::Field;
use elkservice_core::Status;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

/// The order a listing asks for, where an index holds it.
#[derive(Clone, Copy)]
pub(super) enum Order {
    Id { descending: bool },
    Name { descending: bool },
    Changed { descending: bool },
}

impl Order {
    /// The listing's sort, which always ends with Id (ascending unless
    /// asked otherwise), so that pages are stable.
    pub(super) fn of(listing: &Listing) -> Option<Order> {
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

/// The statuses a status filter keeps, each once (`Status__in:down|down`
/// names one).
fn statuses(filter: &Filter) -> Option<Vec<Status>> {
    if filter.field != Field::Status || !matches!(filter.op, Op::Exact | Op::In) {
        return None;
    }
    let mut statuses: Vec<Status> = filter
        .values
        .iter()
        .map(|v| match v {
            Value::Text(t) => t.parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    statuses.sort_unstable_by_key(|s| status_index(*s));
    statuses.dedup();
    Some(statuses)
}

impl Rows {
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
                    return Some(
                        statuses
                            .iter()
                            .map(|s| self.by_status[status_index(*s)].len())
                            .sum(),
                    );
                }
                Names::of(f).map(|names| self.count_names(&names))
            }
            _ => None,
        }
    }

    /// How many names `names` takes: a prefix's count is remembered until a
    /// name comes or goes.
    fn count_names(&self, names: &Names) -> usize {
        /// More prefixes than a deployment's groups: past it, start again.
        const REMEMBERED: usize = 4096;
        let Names::Prefix(prefix) = names else {
            return self.by_name.range(names.range()).count();
        };
        let mut counts = self
            .prefix_counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(n) = counts.get(*prefix) {
            return *n;
        }
        let n = self.by_name.range(names.range()).count();
        if counts.len() >= REMEMBERED {
            counts.clear();
        }
        counts.insert(prefix.to_string(), n);
        n
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
            watchers: Vec::new(),
        }
    }

    /// What no index holds: every row that matches, sorted.
    pub(super) fn list_sorted(&self, listing: &Listing) -> (usize, Vec<Arc<Cached>>) {
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
