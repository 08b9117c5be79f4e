//! Lenient JSON values that Beego-era clients send: booleans as `1`/`0`, and
//! integers spelled with a zero fraction.

use serde::de::{self, Visitor};
use serde::Deserialize;
use utoipa::ToSchema;

/// `true`/`false`, or `1`/`0` as Beego clients send it.
#[derive(Debug, Clone, Copy)]
pub struct FlexBool(pub bool);

impl<'de> Deserialize<'de> for FlexBool {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FlexBool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, 1 or 0")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<FlexBool, E> {
                Ok(FlexBool(b))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<FlexBool, E> {
                match n {
                    0 => Ok(FlexBool(false)),
                    1 => Ok(FlexBool(true)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<FlexBool, E> {
                u64::try_from(n)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for FlexBool {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .enum_values(Some([0, 1])),
            )
            .description(Some("`true`/`false`, or `1`/`0` as Beego clients send it"))
            .into()
    }
}

impl ToSchema for FlexBool {}

/// An integer that JSON may also spell with a zero fraction (`5.0`), as some
/// clients' serialisers do; anything else that is not an integer of `T`'s range
/// is refused.
#[derive(Debug, Clone, Copy)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: TryFrom<i64> + TryFrom<u64>> Visitor<'_> for V<T> {
            type Value = Whole<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "an integer that fits {}", std::any::type_name::<T>())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Whole<T>, E> {
                T::try_from(n)
                    .map(Whole)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Whole<T>, E> {
                // Range checks first: `as` saturates, which would hide an overflow.
                if x.fract() != 0.0 || !(-9.2e18..=1.8e19).contains(&x) {
                    Err(E::invalid_value(de::Unexpected::Float(x), &self))
                } else if x < 0.0 {
                    self.visit_i64(x as i64)
                } else {
                    self.visit_u64(x as u64)
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
