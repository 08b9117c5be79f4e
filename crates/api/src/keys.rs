//! API keys. Config holds only SHA-256 digests of the keys, so a leaked config
//! file does not leak a key; a request's bearer key is hashed and looked up.

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The accepted keys' digests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing(HashSet<String>);

impl KeyRing {
    /// Parse digests, comma-separated; each must be 64 lowercase hex digits.
    pub fn parse<'a>(digests: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut set = HashSet::new();
        for d in digests.into_iter().map(str::trim).filter(|d| !d.is_empty()) {
            let ok = d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !ok {
                return Err(format!(
                    "{:?} is not a SHA-256 digest (64 lowercase hex digits); \
                     run `elkservice-api new-key` to make a key and its digest",
                    truncate(d)
                ));
            }
            set.insert(d.to_owned());
        }
        Ok(KeyRing(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn accepts(&self, key: &str) -> bool {
        self.0.contains(&digest(key))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(12).collect::<String>() + if s.chars().count() > 12 { "…" } else { "" }
}

impl<'de> Deserialize<'de> for KeyRing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Joined(String),
            List(Vec<String>),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Joined(s) => KeyRing::parse(s.split(',')),
            Raw::List(v) => KeyRing::parse(v.iter().map(String::as_str)),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

/// Lowercase hex SHA-256 of a key.
pub fn digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random key (256 bits, hex) and its digest.
pub fn new_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let d = digest(&key);
    (key, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_lowercase_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn new_key_matches_its_digest() {
        let (key, d) = new_key();
        assert_eq!(key.len(), 64);
        let ring = KeyRing::parse([d.as_str()]).unwrap();
        assert!(ring.accepts(&key));
        assert!(!ring.accepts("other"));
    }

    #[test]
    fn keyring_rejects_what_is_not_a_digest() {
        assert!(KeyRing::parse(["secret"]).is_err());
        assert!(KeyRing::parse([&"A".repeat(64) as &str]).is_err());
        assert_eq!(KeyRing::parse(["", " "]).unwrap(), KeyRing::default());
    }
}
