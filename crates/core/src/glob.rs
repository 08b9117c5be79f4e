//! Globs on service names (`es-*`, `kibana?`, `*`): `*` is any run of
//! characters, `?` one character, anything else itself. Used where a person
//! names a set of services: silences, and the notifier's webhooks.

use crate::domain::NAME_MAX_LEN;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A pattern over service names, checked when made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Glob(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be 1-{NAME_MAX_LEN} characters of letters, digits, '.', '_', '-' and the wildcards '*' and '?'"
)]
pub struct InvalidGlob;

impl Glob {
    pub fn parse(s: &str) -> Result<Self, InvalidGlob> {
        let ok = !s.is_empty()
            && s.len() <= NAME_MAX_LEN
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'*' | b'?')
            });
        ok.then(|| Glob(s.to_owned())).ok_or(InvalidGlob)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, name: &str) -> bool {
        // Names and patterns are ASCII (checked on both sides): bytes will do.
        let (p, n) = (self.0.as_bytes(), name.as_bytes());
        // Iterative matching with one backtrack point: linear enough for names.
        let (mut pi, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ni));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == n[ni] => {
                    pi += 1;
                    ni += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        pi = sp + 1;
                        ni = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Glob::parse(&s).map_err(|e| serde::de::Error::custom(format!("{s:?} {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_in_a_shell() {
        let cases = [
            ("*", "anything", true),
            ("es-*", "es-1", true),
            ("es-*", "es-", true),
            ("es-*", "kibana", false),
            ("*-db", "orders-db", true),
            ("*-db", "orders-db2", false),
            ("k?bana", "kibana", true),
            ("k?bana", "kbana", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("nginx", "nginx", true),
            ("nginx", "nginx2", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Glob::parse(pattern).unwrap().matches(name),
                want,
                "{pattern} {name}"
            );
        }
    }

    #[test]
    fn a_pattern_with_other_characters_is_refused() {
        for bad in ["", "es/*", "a b", "[ab]", &"x".repeat(NAME_MAX_LEN + 1)] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
    }
}
