//! Human-friendly units in the config file: durations (`5s`, `250ms`) and byte sizes (`8MiB`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::Deserializer;

/// Parses `5s`, `250ms`, `1m`, `1h 30m` (humantime syntax).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration like 5s or 250ms: {e}"))
}

/// Parses a byte size: a plain integer, or a number with `B`, `KiB`, `MiB`, `GiB`, `TiB`
/// (or `kB`/`KB`/`MB`/`GB`/`TB`, also powers of 1024 as the kernel uses them).
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a byte size like 1048576, 512MiB or 8GiB");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "kB" | "KB" | "K" => 10,
        "MiB" | "MB" | "M" => 20,
        "GiB" | "GB" | "G" => 30,
        "TiB" | "TB" | "T" => 40,
        _ => return Err(bad()),
    };
    number.checked_mul(1u64 << shift).ok_or_else(|| format!("{text:?} overflows 64 bits"))
}

/// Serde adapter for durations written as strings. The value is parsed inside the visitor, so a
/// bad one is reported at its own line and column (an error raised after deserializing would only
/// carry the enclosing mapping's position).
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_option(Optional(DurationVisitor))
}

/// Serde adapter for byte sizes written as integers or strings (parsed in the visitor, as
/// [`de_duration`]).
pub(crate) fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    d.deserialize_option(Optional(BytesVisitor))
}

/// `None` for a null or absent value, else the inner visitor's value.
struct Optional<V>(V);

impl<'de, V: Visitor<'de> + Copy> Visitor<'de> for Optional<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

#[derive(Clone, Copy)]
struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration like 5s or 250ms")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

#[derive(Clone, Copy)]
struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte size like 1048576, 512MiB or 8GiB")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is not a byte size: it is negative")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_bytes(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("4 GiB"), Ok(4 << 30));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999999999999GiB").is_err());
        assert!(parse_bytes("20000000000TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
