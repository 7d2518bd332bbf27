//! Bounded file reads and the mapping of failures onto counted [`ErrorReason`]s.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::parse::ParseError;
use crate::snapshot::{ErrorCounts, ErrorReason, ErrorSource};

/// The largest kernel file leakwatch reads in one go. Everything it samples is far smaller;
/// a bigger file means something is wrong (or hostile), and reading it could stall the sampler.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a file could not be turned into a value.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file exceeded [`MAX_FILE_BYTES`].
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// The content did not parse.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        #[source]
        source: ParseError,
    },
}

impl ReadError {
    /// Whether the path lies under a `/proc/PID` directory that no longer exists (the process
    /// exited between being listed and being read).
    pub fn process_gone(&self) -> bool {
        let path = match self {
            ReadError::Io { path, .. } | ReadError::TooLarge { path } | ReadError::Parse { path, .. } => {
                Path::new(path)
            }
        };
        let mut prefix = std::path::PathBuf::new();
        for part in path.components() {
            prefix.push(part);
            let is_pid =
                part.as_os_str().to_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            if is_pid {
                return !prefix.exists();
            }
        }
        false
    }

    /// The bounded reason label for this error.
    pub fn reason(&self) -> ErrorReason {
        match self {
            ReadError::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorReason::NotFound,
                io::ErrorKind::PermissionDenied => ErrorReason::PermissionDenied,
                // A process that exited between open and read answers ESRCH.
                _ if source.raw_os_error() == Some(3) => ErrorReason::NotFound,
                _ => ErrorReason::Io,
            },
            ReadError::TooLarge { .. } => ErrorReason::TooLarge,
            ReadError::Parse { .. } => ErrorReason::Malformed,
        }
    }

    /// Wraps a parser error with the file it came from.
    pub fn parse(path: &Path, source: ParseError) -> Self {
        ReadError::Parse { path: path.display().to_string(), source }
    }
}

/// Reads a whole kernel file, refusing anything above [`MAX_FILE_BYTES`].
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    let io_err = |source| ReadError::Io { path: path.display().to_string(), source };
    let file = File::open(path).map_err(io_err)?;
    let mut buf = Vec::with_capacity(4096);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf).map_err(io_err)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { path: path.display().to_string() });
    }
    Ok(buf)
}

/// Reads and parses a file in one step.
pub fn read_parsed<T>(path: &Path, parse: impl FnOnce(&[u8]) -> Result<T, ParseError>) -> Result<T, ReadError> {
    let bytes = read_capped(path)?;
    parse(&bytes).map_err(|e| ReadError::parse(path, e))
}

/// Records a failed read: counts it and logs the first occurrence of each (source, reason) at
/// warn level, later ones at debug, so a permanently failing file does not flood the log.
pub fn record(errors: &mut ErrorCounts, source: ErrorSource, err: &ReadError) {
    let reason = err.reason();
    let first = errors.record(source, reason);
    if reason == ErrorReason::NotFound && err.process_gone() {
        // A process that exited during the pass: counted, not a failure worth a warning (the
        // target's presence is logged by the sampler).
        tracing::debug!(source = source.as_str(), "process gone: {err}");
    } else if first {
        tracing::warn!(source = source.as_str(), reason = reason.as_str(), "sample error: {err}");
    } else {
        tracing::debug!(source = source.as_str(), reason = reason.as_str(), "sample error: {err}");
    }
}

/// Unwraps a read result, recording the error and yielding `None` on failure.
pub fn ok_or_record<T>(errors: &mut ErrorCounts, source: ErrorSource, result: Result<T, ReadError>) -> Option<T> {
    result.map_err(|e| record(errors, source, &e)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_under_a_vanished_pid_directory_is_a_gone_process() {
        let dir = std::env::temp_dir().join(format!("leakwatch-gone-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("12")).unwrap();
        let live = read_capped(&dir.join("12/stat")).unwrap_err();
        let gone = read_capped(&dir.join("13/net/tcp")).unwrap_err();
        let host = read_capped(&dir.join("meminfo")).unwrap_err();
        assert!(!live.process_gone(), "the process directory is there: the file is missing");
        assert!(gone.process_gone());
        assert!(!host.process_gone(), "not under a pid directory");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_files_are_not_found_and_big_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("leakwatch-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = read_capped(&dir.join("nope")).unwrap_err();
        assert_eq!(missing.reason(), ErrorReason::NotFound);
        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert_eq!(read_capped(&big).unwrap_err().reason(), ErrorReason::TooLarge);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
