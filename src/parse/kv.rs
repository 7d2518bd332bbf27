//! `Key:   value [kB]` files: `/proc/meminfo` and `/proc/PID/status`.
//!
//! Written here rather than taken from `procfs` because its parsers multiply `kB` values without
//! an overflow check and fail the whole file on one missing key; leakwatch needs a few keys, each
//! optional, with a clear error when one of *them* is malformed.

use super::{lines, ParseError};

/// The lines of a colon-keyed file, values kept as text until asked for.
#[derive(Debug, Clone, Default)]
pub struct ColonKeyed(Vec<(String, String, usize)>);

impl ColonKeyed {
    /// The raw text after the colon for `key`, trimmed. The first occurrence wins.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _, _)| k == key).map(|(_, v, _)| v.as_str())
    }

    /// `key` as a plain count (`Threads:  4`).
    pub fn count(&self, key: &str) -> Result<Option<u64>, ParseError> {
        self.value(key, false)
    }

    /// `key` in bytes: a `kB` suffix is multiplied by 1024; no suffix is taken as bytes
    /// (`HugePages_*` style counts are never asked for this way).
    pub fn bytes(&self, key: &str) -> Result<Option<u64>, ParseError> {
        self.value(key, true)
    }

    fn value(&self, key: &str, unit_allowed: bool) -> Result<Option<u64>, ParseError> {
        let Some((_, text, line)) = self.0.iter().find(|(k, _, _)| k == key) else {
            return Ok(None);
        };
        let bad = |why: &str| ParseError::at(*line, format!("{key}: {why}: {text:?}"));
        let mut parts = text.split_ascii_whitespace();
        let number = parts.next().ok_or_else(|| bad("no value"))?;
        let number: u64 = number.parse().map_err(|_| bad("not an unsigned integer"))?;
        let multiplier = match (parts.next(), unit_allowed) {
            (None, _) => 1,
            (Some("kB"), true) => 1024,
            (Some(_), _) => return Err(bad("unexpected unit")),
        };
        if parts.next().is_some() {
            return Err(bad("trailing text"));
        }
        number.checked_mul(multiplier).map(Some).ok_or_else(|| bad("overflows u64 bytes"))
    }
}

/// Splits a colon-keyed file into its lines. Lines without a colon are errors; unknown keys are kept.
pub fn colon_keyed(bytes: &[u8]) -> Result<ColonKeyed, ParseError> {
    let mut out = Vec::new();
    for (n, line) in lines(bytes) {
        let (key, value) =
            line.split_once(':').ok_or_else(|| ParseError::at(n, "expected `Key: value`, found no colon"))?;
        out.push((key.trim().to_owned(), value.trim().to_owned(), n));
    }
    if out.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(ColonKeyed(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_6_1: &[u8] = b"Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  220000 kB\n\
VmSize:\t  219000 kB\nVmHWM:\t  210000 kB\nVmRSS:\t  209000 kB\nRssAnon:\t  204800 kB\nRssFile:\t    4200 kB\n\
RssShmem:\t       0 kB\nVmSwap:\t       0 kB\nThreads:\t1\n";

    #[test]
    fn reads_status_fields_in_bytes() {
        let s = colon_keyed(STATUS_6_1).unwrap();
        assert_eq!(s.bytes("VmRSS").unwrap(), Some(209_000 * 1024));
        assert_eq!(s.count("Threads").unwrap(), Some(1));
        assert_eq!(s.text("Name"), Some("python3"));
        assert_eq!(s.bytes("VmPTE").unwrap(), None, "absent keys (kernel threads, old kernels) are None");
    }

    #[test]
    fn malformed_values_name_key_and_line_without_panicking() {
        let s = colon_keyed(b"VmRSS: 18446744073709551615 kB\nVmHWM: abc kB\nVmSize: 1 MB\n").unwrap();
        assert!(s.bytes("VmRSS").unwrap_err().to_string().contains("overflows"));
        let e = s.bytes("VmHWM").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("VmHWM"), "{e}");
        assert!(s.bytes("VmSize").is_err());
        assert!(colon_keyed(b"no colon here\n").is_err());
        assert!(colon_keyed(b"").is_err());
    }
}
