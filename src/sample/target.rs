//! Which processes form the target, resolved every pass. A name or command-line selector reads
//! every process's `comm` or `cmdline` only on a full pass. Between full passes, when a process
//! was created since the last look (the newest pid in `/proc/loadavg` moved, or always when that
//! signal is unusable), `/proc` is listed and only the pids new since the last listing (and those
//! new in the one before, which may have been caught between fork and exec) are read; otherwise
//! the last matches are checked again.

use std::path::PathBuf;

use regex::Regex;

use super::held::HeldFiles;
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

/// The last scan's matches, the newest pid at that time, and the last listing of `/proc`.
#[derive(Debug, Default)]
pub struct ScanCache {
    /// `/proc/loadavg` speaks of the procfs root's pid namespace (it is leakwatch's own).
    usable: bool,
    newest: Option<u64>,
    pids: Vec<i32>,
    /// Every pid of the last listing, sorted (bounded by the namespace's processes).
    listed: Vec<i32>,
    /// The pids that were new in the last listing: read once more in the next one.
    young: Vec<i32>,
}

impl ScanCache {
    /// A cache for `roots`; it is used only when the procfs root shows leakwatch's own pid
    /// namespace (`self` is leakwatch's pid there), where `/proc/loadavg`'s newest pid is the
    /// namespace's.
    pub fn new(roots: &Roots, own_pid: i32) -> Self {
        let own = std::fs::read_link(roots.procfs().join("self"))
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()));
        Self { usable: own == Some(own_pid), newest: None, pids: Vec::new(), listed: Vec::new(), young: Vec::new() }
    }

    /// The last listing of `/proc`, as a structure.
    pub fn structure(&self) -> crate::measure::Structure {
        crate::measure::Structure::counted("target_scan", self.listed.len(), None)
    }

    /// The newest pid created in the namespace (the fifth field of `/proc/loadavg`).
    fn newest_pid(roots: &Roots, held: &mut HeldFiles) -> Option<u64> {
        let bytes = held.read(&roots.proc_file("loadavg")).ok()?;
        std::str::from_utf8(&bytes).ok()?.split_ascii_whitespace().nth(4)?.parse().ok()
    }

    /// The matching pids: the last scan's, checked again, while no process was created since;
    /// otherwise a listing that reads only the new pids; on a `full` pass (or before any listing)
    /// a scan that reads every one.
    fn resolve(
        &mut self,
        roots: &Roots,
        own_pid: i32,
        full: bool,
        (held, errors): (&mut HeldFiles, &mut ErrorCounts),
        (file, matches): (&str, impl Fn(&[u8]) -> bool),
    ) -> Vec<i32> {
        let newest = if self.usable { Self::newest_pid(roots, held) } else { None };
        if !full && newest.is_some() && newest == self.newest {
            // The last matches, read through held descriptors (a process that exits fails the read).
            self.pids.retain(|&pid| held.read(&roots.pid(pid).join(file)).is_ok_and(|b| matches(&b)));
            return self.pids.clone();
        }
        let matches = |pid: i32| read_capped(&roots.pid(pid).join(file)).is_ok_and(|b| matches(&b));
        let Some(listed) = list(roots, own_pid, errors) else {
            self.pids.clear();
            self.listed.clear();
            self.young.clear();
            return Vec::new();
        };
        let whole = full || self.listed.is_empty();
        let young: Vec<i32> = listed.iter().copied().filter(|p| self.listed.binary_search(p).is_err()).collect();
        let read = |pid: &i32| {
            whole
                || self.pids.binary_search(pid).is_ok()
                || self.young.binary_search(pid).is_ok()
                || young.binary_search(pid).is_ok()
        };
        self.pids = listed.iter().copied().filter(|pid| read(pid) && matches(*pid)).collect();
        self.listed = listed;
        self.young = young;
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
    held: &mut HeldFiles,
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
        TargetSpec::ProcessName(name) => {
            cache.resolve(roots, own_pid, full, (held, errors), ("comm", |b: &[u8]| trim_newline(b) == name.as_bytes()))
        }
        TargetSpec::CmdlineRegex(re) => {
            cache.resolve(roots, own_pid, full, (held, errors), ("cmdline", |b: &[u8]| re.is_match(&cmdline_text(b))))
        }
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

/// Lists `/proc`: every pid but leakwatch's own (its command line contains the pattern), sorted;
/// `None` (counted) when `/proc` cannot be listed.
fn list(roots: &Roots, own_pid: i32, errors: &mut ErrorCounts) -> Option<Vec<i32>> {
    let entries = match std::fs::read_dir(roots.procfs()) {
        Ok(e) => e,
        Err(source) => {
            let err = ReadError::Io { path: roots.procfs().display().to_string(), source };
            record(errors, ErrorSource::ProcScan, &err);
            return None;
        }
    };
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| pid != own_pid)
        .collect();
    pids.sort_unstable();
    Some(pids)
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
        let mut held = HeldFiles::default();
        assert!(candidates(&spec, &roots, own, &mut cache, true, &mut held, &mut errors).is_empty());
        let mut child = std::process::Command::new(&program).arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        // Until the exec the child's comm is the test's; not a full pass: the fork is the signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut found = Vec::new();
        while found.is_empty() && std::time::Instant::now() < deadline {
            found = candidates(&spec, &roots, own, &mut cache, false, &mut held, &mut errors);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(found, [pid], "the new process is found without a full pass");
        assert_eq!(candidates(&spec, &roots, own, &mut cache, false, &mut held, &mut errors), [pid], "and kept");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            candidates(&spec, &roots, own, &mut cache, false, &mut held, &mut errors).is_empty(),
            "an exited one is dropped"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn between_full_passes_only_new_pids_are_read() {
        let dir = std::env::temp_dir().join(format!("leakwatch-scan-listing-{}", std::process::id()));
        let comm = |pid: i32, name: &str| {
            std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
            std::fs::write(dir.join(pid.to_string()).join("comm"), format!("{name}\n")).unwrap();
        };
        comm(100, "other");
        comm(101, "other");
        let roots = Roots::new(&dir, "/nonexistent-sys");
        let mut cache = ScanCache::new(&roots, 1);
        assert!(!cache.usable, "a fixture tree has no `self`: every pass lists");
        let spec = TargetSpec::ProcessName("app".into());
        let mut errors = ErrorCounts::default();
        let mut held = HeldFiles::default();
        let mut look = |full: bool| candidates(&spec, &roots, 1, &mut cache, full, &mut held, &mut errors);
        assert!(look(false).is_empty(), "the first listing reads every pid");
        comm(102, "app");
        assert_eq!(look(false), [102], "a new pid is read in the pass that lists it");
        comm(103, "other");
        assert_eq!(look(false), [102]);
        // 103 was new in the last listing (caught between fork and exec, say): read once more.
        comm(103, "app");
        assert_eq!(look(false), [102, 103]);
        // 100 is old: renaming it is seen on the next full pass, not before.
        comm(100, "app");
        assert_eq!(look(false), [102, 103]);
        assert_eq!(look(true), [100, 102, 103], "a full pass reads every pid");
        std::fs::remove_dir_all(dir.join("102")).unwrap();
        assert_eq!(look(false), [100, 103], "an exited match leaves at once");
        assert_eq!(cache.structure().len, 3);
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
