//! The cgroup `pids` controller: `pids.current` (a single value, see
//! [`super::cgroup::single_value`]) and `pids.max`, the same file names on v1 and v2.

use super::{lines, parse_u64, ParseError};

/// Parses `pids.max`: `max` (no limit) or a task count.
pub fn max(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let mut it = lines(bytes);
    let (n, line) = it.next().ok_or(ParseError::Empty)?;
    if let Some((extra, _)) = it.next() {
        return Err(ParseError::at(extra, "unexpected extra line"));
    }
    match line.trim() {
        "max" => Ok(None),
        text => parse_u64(text, n).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_is_unlimited_and_numbers_are_task_counts() {
        // Linux 6.1, a systemd service with TasksMax=4915 and an unlimited container.
        assert_eq!(max(b"4915\n"), Ok(Some(4915)));
        assert_eq!(max(b"max\n"), Ok(None));
        assert_eq!(max(b"max\r\n"), Ok(None));
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        assert_eq!(max(b""), Err(ParseError::Empty));
        assert!(matches!(max(b"-1\n"), Err(ParseError::Malformed { line: 1, .. })));
        assert!(matches!(max(b"12\n13\n"), Err(ParseError::Malformed { line: 2, .. })));
        assert!(max(b"unlimited\n").is_err());
    }
}
