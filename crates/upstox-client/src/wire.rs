//! Reading Upstox's JSON into typed fields: prices and amounts as exact decimals, and enums that
//! tolerate values this crate does not know yet.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};

/// A price or amount: a JSON number (or numeric string) read as the decimal the server wrote
/// (`570.95`, never `570.950000000000045`), `null` or absent as zero; written back as a number.
pub mod decimal {
    use super::*;

    /// Writes the decimal as a JSON number, as Upstox does.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::float::serialize(d, s)
    }

    /// Reads a number, a numeric string or `null`.
    ///
    /// # Errors
    /// Anything else, or a number outside the decimal's range.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }

    struct DecimalVisitor;

    impl Visitor<'_> for DecimalVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a price (number)")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Decimal, E> {
            Ok(Decimal::ZERO)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // Rust prints the shortest text that reads back as the same f64: the server's text.
            Decimal::from_str(&v.to_string()).map_err(|_| E::custom(format!("{v} is not a price")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(Decimal::ZERO);
            }
            Decimal::from_str(v)
                .or_else(|_| Decimal::from_scientific(v))
                .map_err(|_| E::custom(format!("{v:?} is not a price")))
        }
    }
}

/// An optional price: `null` or absent is `None`, otherwise as [`decimal`].
pub mod decimal_opt {
    use super::*;

    /// Writes the decimal as a JSON number, or `null`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::decimal::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` as `None`, anything else as [`decimal`] does.
    ///
    /// # Errors
    /// As [`decimal::deserialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::decimal")] Decimal);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

/// An optional enum field: a value this crate does not know (Upstox adds products and order
/// types now and then) reads as `None` instead of failing the whole answer.
pub mod lenient {
    use super::*;

    /// Writes the value's wire spelling, or `null`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    /// Reads a string into `T`, or `None` for `null`, absent or unknown.
    ///
    /// # Errors
    /// A value that is not a string.
    pub fn deserialize<'de, T: FromStr, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        Ok(s.and_then(|s| {
            let parsed = s.parse().ok();
            if parsed.is_none() && !s.is_empty() {
                tracing::debug!(value = %s, "an enum value this client does not know");
            }
            parsed
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use upstox_types::Product;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct T {
        #[serde(with = "decimal", default)]
        price: Decimal,
        #[serde(with = "lenient", default)]
        product: Option<Product>,
    }

    #[test]
    fn prices_read_as_the_decimal_written_and_unknown_enums_as_none() {
        let t: T = serde_json::from_str(r#"{"price": 570.95, "product": "D"}"#).expect("parse");
        assert_eq!(t.price, Decimal::new(57095, 2));
        assert_eq!(t.product, Some(Product::Delivery));
        let t: T = serde_json::from_str(r#"{"price": null, "product": "OCO"}"#).expect("parse");
        assert_eq!((t.price, t.product), (Decimal::ZERO, None));
        let t: T = serde_json::from_str(r#"{"price": "12.5"}"#).expect("parse");
        assert_eq!(t.price, Decimal::new(125, 1));
        let t: T = serde_json::from_str(r#"{"price": 3}"#).expect("parse");
        assert_eq!(t.price, Decimal::from(3));
        assert!(serde_json::from_str::<T>(r#"{"price": "abc"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"price": 1e300}"#).is_err());
        let back = serde_json::to_value(T {
            price: Decimal::new(57095, 2),
            product: Some(Product::Intraday),
        })
        .expect("ser");
        assert_eq!(back, serde_json::json!({"price": 570.95, "product": "I"}));
    }
}
