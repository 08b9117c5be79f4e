//! JSON bodies that must be objects.
//!
//! A struct that derives `Deserialize` also reads from a JSON array of its
//! fields in declaration order (serde's "sequence" form), so that
//! `[1, "kibana", "down", false, "2026-11-27T10:00:00Z", "w"]` would pass as
//! a status event, and an array of the right length as an api body. No
//! sender of this contract writes that form, and a positional body that
//! happens to fit is far more likely a mistake than a message, so bodies
//! from outside are read through [`Object`], which refuses everything but an
//! object.

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// `T`, read only from a JSON object: anything else is "invalid type: …,
/// expected a JSON object", a data error like a field of the wrong type.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(Fields(PhantomData))
            .map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    fn read(text: &str) -> Result<Pair, serde_json::Error> {
        serde_json::from_str::<Object<Pair>>(text).map(|o| o.0)
    }

    #[test]
    fn only_an_object_is_read() {
        // What the derive alone accepts, and this refuses.
        assert!(serde_json::from_str::<Pair>(r#"[1, "x"]"#).is_ok());
        let err = read(r#"[1, "x"]"#).unwrap_err();
        assert!(err.is_data(), "{err}");
        assert!(err.to_string().contains("expected a JSON object"), "{err}");

        assert_eq!(
            read(r#"{"a": 1, "b": "x"}"#).unwrap(),
            Pair {
                a: 1,
                b: Some("x".into())
            }
        );
        // The struct's own rules still hold, and still say where.
        let err = read(r#"{"a": 1, "c": 2}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `c`"), "{err}");
        assert_eq!(err.line(), 1);
        assert!(read(r#"{"b": "x"}"#).is_err());
        assert!(read("5").unwrap_err().is_data());
        assert!(read("{").unwrap_err().is_eof());
    }
}
