//! The quorum rule: how a service's status follows from its watchers' votes.
//!
//! Each watcher's latest observation of a service is its vote. Votes that are
//! `unknown` or `starting`, and votes older than `writer.stale_after_secs`,
//! abstain; but every remembered watcher counts in the base the quorum is
//! taken of, so watchers that fall silent make a service `unknown`, never
//! `down`. A problem needs the quorum: `down` when enough watchers say
//! `down`; `degraded` when enough say `down` or `degraded`; `normal` when
//! enough see the service at all and too few see a problem.
//!
//! The decision is a pure function of the votes and a reference time, so
//! writers that apply the same votes decide the same.

use elkservice_core::domain::DETAIL_MAX_LEN;
use elkservice_core::{Status, Vote};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::fmt;

/// How many of the watchers that report a service must agree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Rule {
    /// More than half of them (the default).
    #[default]
    Majority,
    /// One is enough.
    Any,
    /// Every one of them.
    All,
    /// At least this many (all of them when fewer report it).
    AtLeast(u32),
}

impl Rule {
    /// Votes needed out of `of` watchers.
    pub fn needed(self, of: usize) -> usize {
        match self {
            Rule::Majority => of / 2 + 1,
            Rule::Any => 1,
            Rule::All => of.max(1),
            Rule::AtLeast(n) => (n as usize).min(of).max(1),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Majority => f.write_str("majority"),
            Rule::Any => f.write_str("any"),
            Rule::All => f.write_str("all"),
            Rule::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Word(String),
        }
        const EXPECTED: &str = "\"majority\", \"any\", \"all\" or a number of watchers from 1";
        match Raw::deserialize(d)? {
            Raw::Number(n) => u32::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .map(Rule::AtLeast)
                .ok_or_else(|| de::Error::custom(format!("quorum {n}: expected {EXPECTED}"))),
            // Environment variables arrive as text.
            Raw::Word(w) => match w.as_str() {
                "majority" => Ok(Rule::Majority),
                "any" => Ok(Rule::Any),
                "all" => Ok(Rule::All),
                other => other
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .map(Rule::AtLeast)
                    .ok_or_else(|| {
                        de::Error::custom(format!("quorum {other:?}: expected {EXPECTED}"))
                    }),
            },
        }
    }
}

/// What the votes decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub running: bool,
    pub detail: Option<String>,
    pub planned: bool,
    /// Votes for exactly this status, out of `of` watchers.
    pub agreed: usize,
    pub of: usize,
}

/// The row's present state, kept when the votes allow it, so that which
/// agreeing watcher spoke last does not churn `Running` and `Detail`.
pub struct Present<'a> {
    pub status: Status,
    pub running: bool,
    pub detail: Option<&'a str>,
}

/// Decide from `votes` as of `now_ns`: a vote older than `stale_after_ns`
/// (None: never) abstains.
pub fn decide(
    rule: Rule,
    votes: &[Vote],
    now_ns: i64,
    stale_after_ns: Option<i64>,
    present: &Present<'_>,
) -> Decision {
    let of = votes.len();
    let fresh = |v: &Vote| stale_after_ns.is_none_or(|limit| now_ns - ns(v) <= limit);
    let counting: Vec<&Vote> = votes
        .iter()
        .filter(|v| fresh(v) && v.status.settled().is_some())
        .collect();
    let count = |pred: &dyn Fn(Status) -> bool| counting.iter().filter(|v| pred(v.status)).count();
    let needed = rule.needed(of);
    let status = if count(&|s| s == Status::Down) >= needed {
        Status::Down
    } else if count(&|s| matches!(s, Status::Down | Status::Degraded)) >= needed {
        Status::Degraded
    } else if counting.len() >= needed {
        Status::Normal
    } else if votes
        .iter()
        .any(|v| v.status == Status::Starting && fresh(v))
    {
        Status::Starting
    } else {
        Status::Unknown
    };
    let agreeing: Vec<&Vote> = votes
        .iter()
        .filter(|v| v.status == status && fresh(v))
        .collect();
    let agreed = agreeing.len();
    let newest = agreeing.iter().max_by_key(|v| ns(v)).copied();
    let present_detail = present.detail.and_then(unannotated);
    let keep = present.status == status
        && agreeing
            .iter()
            .any(|v| v.running == present.running && v.detail.as_deref() == present_detail);
    let (running, detail) = match newest {
        _ if keep => (present.running, present_detail.map(str::to_owned)),
        Some(v) => (v.running, v.detail.clone()),
        None => (
            present.running && status != Status::Unknown,
            Some(silent(votes, now_ns, stale_after_ns)),
        ),
    };
    // With several watchers, the detail says how many agreed, so that the
    // history, the feed and the notifications say it too.
    let detail = if of > 1 && status.settled().is_some() {
        Some(annotated(detail.as_deref(), status, agreed, of))
    } else {
        detail
    };
    let planned = status == Status::Down && agreeing.iter().all(|v| v.planned);
    Decision {
        status,
        running,
        detail,
        planned,
        agreed,
        of,
    }
}

/// Why nothing could be decided: which watchers have gone quiet, since when.
fn silent(votes: &[Vote], now_ns: i64, stale_after_ns: Option<i64>) -> String {
    let quiet: Vec<String> = votes
        .iter()
        .filter(|v| stale_after_ns.is_some_and(|l| now_ns - ns(v) > l))
        .map(|v| {
            format!(
                "{} since {}",
                v.watcher,
                v.observed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        })
        .collect();
    match quiet.as_slice() {
        [] => "too few watchers can see it".to_owned(),
        [one] => format!("no observation from watcher {one}"),
        many => format!("no observation from watchers {}", many.join(", ")),
    }
}

fn ns(v: &Vote) -> i64 {
    v.observed_at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `detail (down: 2 of 3 watchers)`, within the column's length.
fn annotated(detail: Option<&str>, status: Status, agreed: usize, of: usize) -> String {
    let note = format!("{status}: {agreed} of {of} watchers");
    match detail {
        None => note,
        Some(d) => {
            let room = DETAIL_MAX_LEN.saturating_sub(note.chars().count() + 3);
            let d: String = d.chars().take(room).collect();
            format!("{d} ({note})")
        }
    }
}

/// A detail without what [`annotated`] added: the watchers' own words.
fn unannotated(detail: &str) -> Option<&str> {
    let is_note = |n: &str| {
        n.ends_with(" watchers")
            && n.split_once(": ")
                .is_some_and(|(s, _)| s.parse::<Status>().is_ok())
    };
    if is_note(detail) {
        return None;
    }
    match detail.strip_suffix(')').and_then(|d| d.rsplit_once(" (")) {
        Some((d, note)) if is_note(note) => Some(d),
        _ => Some(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    const SEC: i64 = 1_000_000_000;

    fn vote(watcher: &str, status: Status, second: i64) -> Vote {
        Vote {
            watcher: watcher.into(),
            status,
            running: status != Status::Down,
            observed_at: Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap(),
            detail: (status == Status::Down).then(|| format!("{watcher}: refused")),
            fresh: true,
            planned: false,
        }
    }

    fn at(second: i64) -> i64 {
        (1_800_000_000 + second) * SEC
    }

    fn normal() -> Present<'static> {
        Present {
            status: Status::Normal,
            running: true,
            detail: None,
        }
    }

    fn status(rule: Rule, votes: &[Vote], now: i64) -> (Status, usize, usize) {
        let d = decide(rule, votes, at(now), Some(30 * SEC), &normal());
        (d.status, d.agreed, d.of)
    }

    use Status::{Degraded, Down, Normal, Starting, Unknown};

    #[test]
    fn one_watcher_decides_alone_as_before() {
        for s in Status::ALL {
            let d = decide(Rule::Majority, &[vote("a", s, 0)], at(0), None, &normal());
            assert_eq!(d.status, s);
            assert_eq!((d.agreed, d.of), (1, 1));
        }
    }

    #[test]
    fn a_minority_that_cannot_reach_the_target_is_outvoted() {
        let votes = [
            vote("a", Normal, 0),
            vote("b", Normal, 1),
            vote("c", Down, 2),
        ];
        assert_eq!(status(Rule::Majority, &votes, 2), (Normal, 2, 3));
        assert_eq!(status(Rule::Any, &votes, 2), (Down, 1, 3));
        let votes = [vote("a", Down, 0), vote("b", Normal, 1), vote("c", Down, 2)];
        assert_eq!(status(Rule::Majority, &votes, 2), (Down, 2, 3));
        assert_eq!(status(Rule::All, &votes, 2), (Normal, 1, 3));
        assert_eq!(status(Rule::AtLeast(2), &votes, 2), (Down, 2, 3));
    }

    #[test]
    fn degraded_counts_the_watchers_that_see_any_problem() {
        let votes = [
            vote("a", Degraded, 0),
            vote("b", Down, 0),
            vote("c", Normal, 0),
        ];
        assert_eq!(status(Rule::Majority, &votes, 0), (Degraded, 1, 3));
    }

    #[test]
    fn watchers_that_fall_silent_give_unknown_never_down() {
        // b and c last spoke a minute ago; a alone is no majority of three.
        let votes = [vote("a", Down, 60), vote("b", Down, 0), vote("c", Down, 0)];
        let d = decide(Rule::Majority, &votes, at(60), Some(30 * SEC), &normal());
        assert_eq!(d.status, Unknown);
        assert_eq!(
            d.detail.as_deref(),
            Some(
                "no observation from watchers b since 2027-01-15T08:00:00Z, \
                 c since 2027-01-15T08:00:00Z"
            )
        );
        // Once they are forgotten, a is the whole base again.
        assert_eq!(status(Rule::Majority, &votes[..1], 60), (Down, 1, 1));
    }

    #[test]
    fn unknown_and_starting_abstain() {
        let votes = [
            vote("a", Unknown, 0),
            vote("b", Normal, 0),
            vote("c", Down, 0),
        ];
        assert_eq!(status(Rule::Majority, &votes, 0), (Normal, 1, 3));
        let votes = [
            vote("a", Unknown, 0),
            vote("b", Unknown, 0),
            vote("c", Down, 0),
        ];
        assert_eq!(status(Rule::Majority, &votes, 0).0, Unknown);
        let votes = [
            vote("a", Starting, 0),
            vote("b", Starting, 0),
            vote("c", Down, 0),
        ];
        assert_eq!(status(Rule::Majority, &votes, 0).0, Starting);
    }

    #[test]
    fn the_present_detail_is_kept_while_a_watcher_agreeing_with_it_still_says_so() {
        let votes = [vote("a", Down, 0), vote("b", Down, 1)];
        let present = Present {
            status: Down,
            running: false,
            detail: Some("a: refused"),
        };
        let d = decide(Rule::Majority, &votes, at(1), None, &present);
        assert_eq!(
            d.detail.as_deref(),
            Some("a: refused (down: 2 of 2 watchers)")
        );
        // Decided again from that: the same, not a churn of details.
        let again = Present {
            detail: d.detail.as_deref(),
            ..present
        };
        assert_eq!(decide(Rule::Majority, &votes, at(1), None, &again), d);
        let d = decide(Rule::Majority, &votes, at(1), None, &normal());
        assert_eq!(
            d.detail.as_deref(),
            Some("b: refused (down: 2 of 2 watchers)"),
            "else the newest"
        );
        let one = decide(Rule::Majority, &votes[..1], at(1), None, &normal());
        assert_eq!(
            one.detail.as_deref(),
            Some("a: refused"),
            "alone, as before"
        );
        let none = annotated(None, Normal, 2, 3);
        assert_eq!(none, "normal: 2 of 3 watchers");
        assert_eq!(unannotated(&none), None);
    }

    #[test]
    fn planned_only_when_every_watcher_saying_down_says_planned() {
        let mut votes = [vote("a", Down, 0), vote("b", Down, 0)];
        votes[0].planned = true;
        assert!(!decide(Rule::Majority, &votes, at(0), None, &normal()).planned);
        votes[1].planned = true;
        assert!(decide(Rule::Majority, &votes, at(0), None, &normal()).planned);
    }

    #[test]
    fn rules_parse_from_config_words_and_numbers() {
        let parse =
            |v: serde_json::Value| serde_json::from_value::<Rule>(v).map_err(|e| e.to_string());
        assert_eq!(parse("majority".into()), Ok(Rule::Majority));
        assert_eq!(parse("all".into()), Ok(Rule::All));
        assert_eq!(parse(2.into()), Ok(Rule::AtLeast(2)));
        assert_eq!(parse("3".into()), Ok(Rule::AtLeast(3)));
        assert!(parse(0.into()).unwrap_err().contains("expected"));
        assert!(parse("most".into()).unwrap_err().contains("expected"));
        assert_eq!(Rule::AtLeast(5).needed(3), 3);
        assert_eq!(Rule::Majority.needed(4), 3);
    }
}
