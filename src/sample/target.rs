//! Which processes form the target, resolved afresh every pass.

use std::path::PathBuf;

use regex::Regex;

use super::read::{read_capped, record, ReadError};
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorSource};

/// How the target is selected.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// leakwatch itself (the embedded default).
    Own,
    /// A fixed pid; once it exits (or the pid is reused) the target is gone.
    Pid(i32),
    /// The pid written in a file, re-read every pass.
    Pidfile(PathBuf),
    /// Every process whose `comm` equals the name.
    ProcessName(String),
    /// Every process whose command line (arguments joined by spaces) matches.
    CmdlineRegex(Regex),
    /// The command leakwatch started with `leakwatch run`.
    Child(i32),
}

impl TargetSpec {
    /// A short description for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Own => "leakwatch itself".into(),
            Self::Pid(p) => format!("pid {p}"),
            Self::Pidfile(f) => format!("pidfile {}", f.display()),
            Self::ProcessName(n) => format!("process name {n:?}"),
            Self::CmdlineRegex(r) => format!("command line matching {:?}", r.as_str()),
            Self::Child(p) => format!("wrapped command (pid {p})"),
        }
    }
}

/// Finds the candidate pids of the target, sorted ascending. Pid reuse is handled by the caller,
/// which compares start times across passes.
pub fn candidates(spec: &TargetSpec, roots: &Roots, own_pid: i32, errors: &mut ErrorCounts) -> Vec<i32> {
    match spec {
        TargetSpec::Own => vec![own_pid],
        TargetSpec::Pid(pid) | TargetSpec::Child(pid) => vec![*pid],
        TargetSpec::Pidfile(path) => match read_capped(path).and_then(|b| parse_pidfile(path, &b)) {
            Ok(pid) => vec![pid],
            Err(e) => {
                record(errors, ErrorSource::Pidfile, &e);
                Vec::new()
            }
        },
        TargetSpec::ProcessName(name) => scan(roots, own_pid, errors, |dir| {
            read_capped(&dir.join("comm")).map(|b| trim_newline(&b) == name.as_bytes()).unwrap_or(false)
        }),
        TargetSpec::CmdlineRegex(re) => scan(roots, own_pid, errors, |dir| {
            read_capped(&dir.join("cmdline")).map(|b| re.is_match(&cmdline_text(&b))).unwrap_or(false)
        }),
    }
}

fn parse_pidfile(path: &std::path::Path, bytes: &[u8]) -> Result<i32, ReadError> {
    let text = String::from_utf8_lossy(bytes);
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ReadError::parse(path, crate::parse::ParseError::at(1, format!("not a pid: {:?}", text.trim()))))
}

fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

/// `/proc/PID/cmdline` with NUL separators turned into spaces, as `ps` shows it.
pub fn cmdline_text(bytes: &[u8]) -> String {
    let trimmed = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    String::from_utf8_lossy(trimmed).replace('\0', " ")
}

/// Lists `/proc` and keeps the pids whose directory passes `matches`. leakwatch never matches
/// itself (its own command line contains the pattern). Processes that vanish mid-scan are skipped.
fn scan(roots: &Roots, own_pid: i32, errors: &mut ErrorCounts, matches: impl Fn(&std::path::Path) -> bool) -> Vec<i32> {
    let entries = match std::fs::read_dir(roots.procfs()) {
        Ok(e) => e,
        Err(source) => {
            let err = ReadError::Io { path: roots.procfs().display().to_string(), source };
            record(errors, ErrorSource::ProcScan, &err);
            return Vec::new();
        }
    };
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| pid != own_pid && matches(&roots.pid(pid)))
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_nuls_become_spaces() {
        assert_eq!(cmdline_text(b"python3\0-m\0http.server\0"), "python3 -m http.server");
        assert_eq!(cmdline_text(b""), "");
    }

    #[test]
    fn pidfile_content_is_validated() {
        let p = std::path::Path::new("x.pid");
        assert_eq!(parse_pidfile(p, b"1234\n").unwrap(), 1234);
        assert!(parse_pidfile(p, b"-5\n").is_err());
        assert!(parse_pidfile(p, b"abc").is_err());
        assert!(parse_pidfile(p, b"").is_err());
    }
}
