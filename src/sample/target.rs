//! Which processes form the target, resolved every pass. A name or command-line selector scans
//! every process only on a full pass or when a process was created since the last scan (the
//! newest pid in `/proc/loadavg` moved); otherwise the last scan's matches are checked again.

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

/// The last scan's matches and the newest pid at that time.
#[derive(Debug, Default)]
pub struct ScanCache {
    /// `/proc/loadavg` speaks of the procfs root's pid namespace (it is leakwatch's own).
    usable: bool,
    newest: Option<u64>,
    pids: Vec<i32>,
}

impl ScanCache {
    /// A cache for `roots`; it is used only when the procfs root shows leakwatch's own pid
    /// namespace (`self` is leakwatch's pid there), where `/proc/loadavg`'s newest pid is the
    /// namespace's.
    pub fn new(roots: &Roots, own_pid: i32) -> Self {
        let own = std::fs::read_link(roots.procfs().join("self"))
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()));
        Self { usable: own == Some(own_pid), newest: None, pids: Vec::new() }
    }

    /// The newest pid created in the namespace (the fifth field of `/proc/loadavg`).
    fn newest_pid(roots: &Roots) -> Option<u64> {
        let bytes = read_capped(&roots.proc_file("loadavg")).ok()?;
        std::str::from_utf8(&bytes).ok()?.split_ascii_whitespace().nth(4)?.parse().ok()
    }

    /// The matching pids: the last scan's, checked again, while no process was created since;
    /// otherwise (or on a `full` pass) a new scan.
    fn resolve(
        &mut self,
        roots: &Roots,
        own_pid: i32,
        full: bool,
        errors: &mut ErrorCounts,
        matches: impl Fn(&std::path::Path) -> bool,
    ) -> Vec<i32> {
        let newest = if self.usable { Self::newest_pid(roots) } else { None };
        if !full && newest.is_some() && newest == self.newest {
            self.pids.retain(|&pid| matches(&roots.pid(pid)));
            return self.pids.clone();
        }
        self.pids = scan(roots, own_pid, errors, matches);
        self.newest = newest;
        self.pids.clone()
    }
}

/// Finds the candidate pids of the target, sorted ascending; a `full` pass always scans. Pid
/// reuse is handled by the caller, which compares start times across passes.
pub fn candidates(
    spec: &TargetSpec,
    roots: &Roots,
    own_pid: i32,
    cache: &mut ScanCache,
    full: bool,
    errors: &mut ErrorCounts,
) -> Vec<i32> {
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
        TargetSpec::ProcessName(name) => cache.resolve(roots, own_pid, full, errors, |dir| {
            read_capped(&dir.join("comm")).map(|b| trim_newline(&b) == name.as_bytes()).unwrap_or(false)
        }),
        TargetSpec::CmdlineRegex(re) => cache.resolve(roots, own_pid, full, errors, |dir| {
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
    fn a_cached_match_is_checked_again_and_a_new_process_is_found() {
        let dir = std::env::temp_dir().join(format!("leakwatch-scan-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("lwscantest");
        std::fs::copy("/bin/sleep", &program).unwrap();
        let roots = Roots::default();
        let own = std::process::id() as i32;
        let mut cache = ScanCache::new(&roots, own);
        assert!(cache.usable, "the test's /proc is its own pid namespace's");
        let spec = TargetSpec::ProcessName("lwscantest".into());
        let mut errors = ErrorCounts::default();
        assert!(candidates(&spec, &roots, own, &mut cache, true, &mut errors).is_empty());
        let mut child = std::process::Command::new(&program).arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        // Until the exec the child's comm is the test's; not a full pass: the fork is the signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut found = Vec::new();
        while found.is_empty() && std::time::Instant::now() < deadline {
            found = candidates(&spec, &roots, own, &mut cache, false, &mut errors);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(found, [pid], "the new process is found without a full pass");
        assert_eq!(candidates(&spec, &roots, own, &mut cache, false, &mut errors), [pid], "and kept");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(candidates(&spec, &roots, own, &mut cache, false, &mut errors).is_empty(), "an exited one is dropped");
        std::fs::remove_dir_all(&dir).unwrap();
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
