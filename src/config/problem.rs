//! [`Problem`]: one value that parsed but failed validation, with its key path as data and the
//! line it is written on (filled in by [`super::locate::locate`] when the file is known).

use std::fmt;

/// A validation problem: printed `key.path: message`, plus ` (line N)` once located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value is in the config, `logs.sources[1].max_lines` (a flag, e.g.
    /// `--web.config.file`, or several keys for a conflict between them).
    pub key_path: String,
    /// The 1-based line of `key_path` in the config file, when it was found there.
    pub(crate) line: Option<usize>,
    /// What is wrong with the value.
    pub(crate) message: String,
}

impl Problem {
    /// A problem with the value at `key_path`, not yet located.
    pub(crate) fn new(key_path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key_path: key_path.into(), line: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key_path.is_empty() {
            true => write!(f, "{}", self.message)?,
            false => write!(f, "{}: {}", self.key_path, self.message)?,
        }
        match self.line {
            Some(line) => write!(f, " (line {line})"),
            None => Ok(()),
        }
    }
}

/// The problems one per line or joined by `sep`, as printed.
pub(crate) fn join(problems: &[Problem], sep: &str) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_its_key_path_message_and_line() {
        let mut p = Problem::new("target.max_processes", "must be 1..=10000, got 0");
        assert_eq!(p.to_string(), "target.max_processes: must be 1..=10000, got 0");
        p.line = Some(4);
        assert_eq!(p.to_string(), "target.max_processes: must be 1..=10000, got 0 (line 4)");
        assert_eq!(Problem::new("", "the reload task failed").to_string(), "the reload task failed");
    }
}
