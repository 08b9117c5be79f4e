//! What the status page shows first, over every service however many: the
//! counts per status, the groups, and one page of services with problems
//! first. Pure; `routes::overview` reads the rows (from the read model or the
//! database) and the page's last day of transitions.

use crate::uptime::Segment;
use elkservice_core::store::votes::Watcher;
use elkservice_core::{Service, Status};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// Most groups listed: beyond, a page of groups would not be an overview.
pub const MAX_GROUPS: usize = 200;

/// Problems first: the order of concern.
pub const CONCERN: [Status; 5] = [
    Status::Down,
    Status::Degraded,
    Status::Unknown,
    Status::Starting,
    Status::Normal,
];

fn concern(status: Status) -> usize {
    CONCERN
        .iter()
        .position(|s| *s == status)
        .expect("one of the five")
}

/// A service's group: its name up to the first `-`, `.` or `_` (`es` for
/// `es-data-1`); a name with none is a group of its own.
pub fn group_of(name: &str) -> &str {
    name.split(['-', '.', '_']).next().unwrap_or(name)
}

/// Services per status; every status is present, so a client need not guess.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[schema(value_type = BTreeMap<String, usize>)]
pub struct Counts(BTreeMap<&'static str, usize>);

impl Counts {
    fn new() -> Self {
        Counts(Status::ALL.iter().map(|s| (s.as_str(), 0)).collect())
    }

    pub fn of_each(counts: impl Iterator<Item = (Status, usize)>) -> Self {
        let mut all = Counts::new();
        for (status, n) in counts {
            all.0.insert(status.as_str(), n);
        }
        all
    }

    fn add(&mut self, status: Status) {
        *self.0.entry(status.as_str()).or_default() += 1;
    }

    fn of(&self, status: Status) -> usize {
        self.0.get(status.as_str()).copied().unwrap_or(0)
    }

    /// Down first, then degraded, and so on: how a group ranks.
    fn rank(&self) -> [std::cmp::Reverse<usize>; 4] {
        [0, 1, 2, 3].map(|i| std::cmp::Reverse(self.of(CONCERN[i])))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub name: String,
    pub total: usize,
    pub counts: Counts,
}

/// A service on the page: the row and its last day.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Card {
    #[serde(flatten)]
    pub service: Service,
    /// Its statuses over the last 24 hours, oldest first.
    pub segments: Vec<Segment>,
}

/// The answer of `GET /status/overview`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Overview {
    /// Every service.
    pub total: usize,
    /// Every service, per status.
    pub counts: Counts,
    /// Groups of two or more services, those with problems first, then by
    /// name; at most 200.
    pub groups: Vec<Group>,
    /// Services that pass `q` and `group`.
    pub matched: usize,
    /// Those, problems first then by name, after `offset`, at most `limit`.
    pub services: Vec<Card>,
    /// Every watcher with a vote, as `GET /watchers` lists them: the page
    /// shows one that has gone silent.
    pub watchers: Vec<Watcher>,
}

/// Which services the page asks for.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Part of the name in any case, or a status's name.
    pub q: Option<String>,
    pub group: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

impl Ask {
    fn keeps(&self, s: &Service, q: Option<&str>) -> bool {
        let in_group = self
            .group
            .as_deref()
            .is_none_or(|g| group_of(s.name.as_str()) == g);
        let found = q.is_none_or(|q| {
            s.status.as_str() == q || s.name.as_str().to_ascii_lowercase().contains(q)
        });
        in_group && found
    }
}

/// The groups worth listing: two or more services, more problems first,
/// then by name; at most [`MAX_GROUPS`].
pub fn rank(mut groups: Vec<Group>) -> Vec<Group> {
    groups.retain(|g| g.total >= 2);
    groups.sort_by(|a, b| (a.counts.rank(), &a.name).cmp(&(b.counts.rank(), &b.name)));
    groups.truncate(MAX_GROUPS);
    groups
}

/// The overview of `rows` (every service), without segments: the route
/// adds those for the page it returns.
pub fn compute<'a>(rows: impl Iterator<Item = &'a Service>, ask: &Ask) -> Overview {
    let q = ask
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_ascii_lowercase);
    let mut counts = Counts::new();
    let mut groups: HashMap<&str, (usize, Counts)> = HashMap::new();
    let mut matched: Vec<&Service> = Vec::new();
    let mut total = 0;
    for s in rows {
        total += 1;
        counts.add(s.status);
        let g = groups
            .entry(group_of(s.name.as_str()))
            .or_insert_with(|| (0, Counts::new()));
        g.0 += 1;
        g.1.add(s.status);
        if ask.keeps(s, q.as_deref()) {
            matched.push(s);
        }
    }
    let groups = rank(
        groups
            .into_iter()
            .map(|(name, (total, counts))| Group {
                name: name.to_owned(),
                total,
                counts,
            })
            .collect(),
    );

    // Only the page is sorted in full; the rest is only put behind it.
    let order = |a: &&Service, b: &&Service| {
        (concern(a.status), a.name.as_str()).cmp(&(concern(b.status), b.name.as_str()))
    };
    let end = ask.offset.saturating_add(ask.limit).min(matched.len());
    if end > 0 && end < matched.len() {
        matched.select_nth_unstable_by(end - 1, order);
    }
    let page = &mut matched[..end];
    page.sort_unstable_by(order);
    let services = page
        .iter()
        .skip(ask.offset)
        .map(|s| Card {
            service: (*s).clone(),
            segments: Vec::new(),
        })
        .collect();
    Overview {
        total,
        counts,
        groups,
        matched: matched.len(),
        services,
        watchers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::service;

    fn names(o: &Overview) -> Vec<&str> {
        o.services.iter().map(|c| c.service.name.as_str()).collect()
    }

    fn ask(q: Option<&str>, group: Option<&str>, limit: usize, offset: usize) -> Ask {
        Ask {
            q: q.map(str::to_owned),
            group: group.map(str::to_owned),
            limit,
            offset,
        }
    }

    #[test]
    fn counts_and_groups_cover_every_service_and_the_page_puts_problems_first() {
        let mut rows: Vec<Service> = (0..1500)
            .map(|i| service(i, &format!("web-{i:04}"), Status::Normal))
            .collect();
        rows.push(service(2000, "es-data-1", Status::Normal));
        rows.push(service(2001, "es-data-2", Status::Down));
        rows.push(service(2002, "kibana", Status::Degraded));
        rows[700].status = Status::Down;
        let o = compute(rows.iter(), &ask(None, None, 4, 0));
        assert_eq!(o.total, 1503);
        assert_eq!(o.matched, 1503);
        assert_eq!(o.counts.of(Status::Normal), 1500);
        assert_eq!(o.counts.of(Status::Down), 2);
        assert_eq!(o.counts.of(Status::Starting), 0);
        assert_eq!(names(&o), ["es-data-2", "web-0700", "kibana", "es-data-1"]);
        // Groups of two or more, those with more problems first, then by name.
        let groups: Vec<_> = o
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.total))
            .collect();
        assert_eq!(groups, [("es", 2), ("web", 1500)]);
        // A page further on follows on from the first.
        let o = compute(rows.iter(), &ask(None, None, 3, 3));
        assert_eq!(names(&o), ["es-data-1", "web-0000", "web-0001"]);
        let o = compute(rows.iter(), &ask(None, None, 10, 1500));
        assert_eq!(names(&o), ["web-1497", "web-1498", "web-1499"]);
    }

    #[test]
    fn a_search_is_by_part_of_the_name_in_any_case_or_by_status() {
        let rows = [
            service(1, "Kibana", Status::Normal),
            service(2, "es-1", Status::Down),
            service(3, "logstash", Status::Down),
            service(4, "downloader", Status::Normal),
        ];
        let o = compute(rows.iter(), &ask(Some(" KIB "), None, 10, 0));
        assert_eq!(names(&o), ["Kibana"]);
        let o = compute(rows.iter(), &ask(Some("down"), None, 10, 0));
        assert_eq!(names(&o), ["es-1", "logstash", "downloader"]);
        let o = compute(rows.iter(), &ask(None, Some("es"), 10, 0));
        assert_eq!((names(&o), o.total), (vec!["es-1"], 4));
    }
}
