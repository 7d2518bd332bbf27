//! Pure parsers for the kernel files that `procfs` does not cover: cgroup v1/v2 memory
//! controller files, pressure-stall information, socket tables and `sock_diag` replies, fd link
//! targets and the few `stat` fields of a process scan. They take bytes, never paths, so they
//! run on fixtures and under a fuzzer alike.

pub mod cgroup;
pub mod fdlink;
pub mod kv;
pub mod pressure;
pub mod sock_diag;
pub mod sockets;
pub mod stat;

/// A kernel file did not have the shape its parser expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file was empty where a value was required.
    #[error("empty file")]
    Empty,
    /// A line could not be parsed.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },
    /// A parser from the `procfs` crate rejected the content.
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    pub(crate) fn at(line: usize, reason: impl Into<String>) -> Self {
        Self::Malformed { line, reason: reason.into() }
    }
}

/// Parses a decimal `u64`, naming the offending text on failure.
pub(crate) fn parse_u64(text: &str, line: usize) -> Result<u64, ParseError> {
    text.parse::<u64>().map_err(|e| ParseError::at(line, format!("{text:?} is not an unsigned integer: {e}")))
}

/// Iterates the non-empty lines of `bytes` with 1-based numbers, tolerating CRLF and invalid UTF-8
/// (a line with invalid UTF-8 is yielded lossily and then fails to parse as a number).
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, std::borrow::Cow<'_, str>)> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l))))
        .filter(|(_, l)| !l.trim().is_empty())
}
