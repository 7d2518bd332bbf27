//! Time values as `f64` seconds, converted in one place. Every instant that `/metrics` and
//! `/status` both show goes through [`unix`], every duration through [`Duration::as_secs_f64`]
//! in [`ser_duration`], so the two endpoints carry the same `f64`. A leaf: it imports nothing
//! from the crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serializer;

/// `t` as Unix seconds (0 before the epoch).
pub(crate) fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Now, as Unix seconds.
pub(crate) fn now() -> f64 {
    unix(SystemTime::now())
}

/// Serializes a duration as seconds.
pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Serializes an optional duration as seconds (or null).
pub(crate) fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Serializes a time as Unix seconds ([`unix`]).
pub(crate) fn ser_unix<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(unix(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_read_back_from_json_are_the_same_f64() {
        // /status and /metrics show the same instants; a client comparing them needs the exact
        // value back (serde_json's float_roundtrip; without it the last bit can differ).
        let mut t = 1_796_286_055.426_667_5_f64;
        for _ in 0..10_000 {
            let text = serde_json::to_string(&t).expect("serialize");
            assert_eq!(serde_json::from_str::<f64>(&text).expect("parse"), t, "{text}");
            assert_eq!(text.parse::<f64>().expect("parse"), t, "the text format's parse agrees: {text}");
            t += 0.000_123_7;
        }
    }

    #[test]
    fn before_the_epoch_is_zero() {
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(1)), 0.0);
        assert_eq!(unix(UNIX_EPOCH + Duration::from_millis(1_500)), 1.5);
    }
}
