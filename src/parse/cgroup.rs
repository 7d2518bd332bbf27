//! cgroup v1 and v2 memory-controller files.

use super::{lines, parse_u64, ParseError};

/// Values at or above this are the kernel's way of saying "no limit" in cgroup v1
/// (`9223372036854771712` = `PAGE_COUNTER_MAX` pages on 64-bit); a real limit is never that large.
pub const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// A memory limit: a byte count, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit is set (`max` in v2, a near-`i64::MAX` value in v1).
    Unlimited,
    /// The limit in bytes.
    Bytes(u64),
}

impl Limit {
    /// The limit in bytes, if one is set.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::Bytes(b) => Some(b),
        }
    }
}

/// A file holding one unsigned integer, such as `memory.current` or `memory.usage_in_bytes`.
pub fn single_value(bytes: &[u8]) -> Result<u64, ParseError> {
    let mut it = lines(bytes);
    let (n, line) = it.next().ok_or(ParseError::Empty)?;
    if let Some((extra, _)) = it.next() {
        return Err(ParseError::at(extra, "unexpected extra line"));
    }
    parse_u64(line.trim(), n)
}

/// A limit file: `memory.max` (v2, `max` or bytes) or `memory.limit_in_bytes` (v1).
pub fn limit(bytes: &[u8]) -> Result<Limit, ParseError> {
    let first = lines(bytes).next().ok_or(ParseError::Empty)?;
    if first.1.trim() == "max" {
        return Ok(Limit::Unlimited);
    }
    let value = single_value(bytes)?;
    Ok(if value >= V1_UNLIMITED_THRESHOLD { Limit::Unlimited } else { Limit::Bytes(value) })
}

/// A flat keyed file of `name value` lines: `memory.stat`, `memory.events`, v1 `memory.oom_control`.
///
/// Unknown keys are kept (and ignored by callers); when a key repeats, the first value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatKeyed(Vec<(String, u64)>);

impl FlatKeyed {
    /// The value of `key`, if the kernel wrote it.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The number of keys read.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no key was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses a flat keyed file. Every non-empty line must be `key value` with an unsigned value.
pub fn flat_keyed(bytes: &[u8]) -> Result<FlatKeyed, ParseError> {
    let mut out = Vec::new();
    for (n, line) in lines(bytes) {
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ParseError::at(n, format!("expected `key value`, got {:?}", truncate(&line))));
        };
        let value = parse_u64(value, n)?;
        out.push((key.to_owned(), value));
    }
    Ok(FlatKeyed(out))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_max_is_unlimited_and_numbers_are_bytes() {
        assert_eq!(limit(b"max\n"), Ok(Limit::Unlimited));
        assert_eq!(limit(b"268435456\n"), Ok(Limit::Bytes(268_435_456)));
    }

    #[test]
    fn v1_page_counter_max_is_unlimited_not_a_tiny_ratio() {
        assert_eq!(limit(b"9223372036854771712\n"), Ok(Limit::Unlimited));
    }

    #[test]
    fn single_value_rejects_garbage_empty_negative_and_overflow() {
        assert_eq!(single_value(b""), Err(ParseError::Empty));
        assert!(single_value(b"-1\n").is_err());
        assert!(single_value(b"18446744073709551616\n").is_err());
        assert!(single_value(b"12 kB\n").is_err());
        assert!(single_value(b"1\n2\n").is_err());
        assert_eq!(single_value(b"4096\r\n"), Ok(4096));
    }

    #[test]
    fn flat_keyed_reads_a_kernel_6_1_v2_memory_stat_and_ignores_unknown_keys() {
        let text = b"anon 1048576\nfile 2097152\nkernel 4096\nshmem 0\ninactive_file 1048576\nsome_future_key 7\n";
        let stat = flat_keyed(text).unwrap();
        assert_eq!(stat.get("anon"), Some(1_048_576));
        assert_eq!(stat.get("inactive_file"), Some(1_048_576));
        assert_eq!(stat.get("absent"), None);
        assert_eq!(stat.len(), 6);
    }

    #[test]
    fn flat_keyed_first_duplicate_wins_and_garbage_names_its_line() {
        assert_eq!(flat_keyed(b"a 1\na 2\n").unwrap().get("a"), Some(1));
        let err = flat_keyed(b"cache 1\nrss twelve\n").unwrap_err();
        assert!(matches!(err, ParseError::Malformed { line: 2, .. }), "{err}");
        assert!(flat_keyed(b"\xff\xfe 1 2\n").is_err());
    }
}

/// One line of `/proc/PID/cgroup`: `hierarchy-ID:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Hierarchy id; 0 for the unified (v2) hierarchy.
    pub hierarchy: u32,
    /// Controllers bound to the hierarchy (empty for v2; may hold `name=systemd`).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the reader's cgroup namespace (may start with `/..`).
    pub path: String,
}

/// Parses `/proc/PID/cgroup`. The path keeps any colons it contains and a `(deleted)` suffix is
/// dropped (the cgroup was removed; its directory is gone either way).
pub fn memberships(bytes: &[u8]) -> Result<Vec<Membership>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in lines(bytes) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ParseError::at(n, "expected `id:controllers:path`"));
        };
        let hierarchy = id.parse::<u32>().map_err(|_| ParseError::at(n, format!("bad hierarchy id {id:?}")))?;
        let controllers = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect::<Vec<_>>();
        let path = path.strip_suffix(" (deleted)").unwrap_or(path).to_owned();
        out.push(Membership { hierarchy, controllers, path });
    }
    Ok(out)
}

#[cfg(test)]
mod membership_tests {
    use super::*;

    #[test]
    fn hybrid_v1_and_v2_lines() {
        let m = memberships(b"4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/../../pod1/ctr\n").unwrap();
        assert_eq!(m[0].controllers, vec!["memory"]);
        assert_eq!(m[0].path, "/process_api/abc");
        assert_eq!(m[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[2].hierarchy, 0);
        assert!(m[2].controllers.is_empty());
        assert_eq!(m[2].path, "/../../pod1/ctr");
    }

    #[test]
    fn deleted_suffix_and_garbage() {
        assert_eq!(memberships(b"0::/a:b (deleted)\n").unwrap()[0].path, "/a:b");
        assert!(memberships(b"x::/\n").is_err());
        assert!(memberships(b"0:/\n").is_err());
    }
}
