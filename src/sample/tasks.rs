//! Child processes of the target group and context switches of its threads.
//!
//! Descendants are found through `/proc/PID/task/TID/children` (`CONFIG_PROC_CHILDREN`): a walk
//! down the group's own tree, whose cost follows the target's processes, not the node's. Where
//! the kernel lacks that file, one scan of every `/proc/*/stat` (parent pids) finds them; that
//! scan is an expensive figure (see [`super::tier`]). Each descendant's age is taken from its
//! start time; a bounded first-seen map keyed by (pid, start time) holds that origin and is
//! pruned every pass.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::held::HeldFiles;
use super::process::SystemFacts;
use super::read::{read_capped, read_parsed, record, ReadError};
use crate::measure::{shrink_map, trim_with, Structure, Trimmed};
use crate::parse::kv;
use crate::parse::stat::{brief, ProcState};
use crate::parse::ParseError;
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorReason, ErrorSource, TaskSample};

/// Default cap on the child processes in the first-seen map.
pub const DEFAULT_TASK_MAX_TRACKED: usize = 4096;

/// The task sampler's settings, from `tasks:`.
#[derive(Debug, Clone, Copy)]
pub struct TaskSettings {
    /// Age past which a descendant is stale.
    pub stale_after: Duration,
    /// Cap on the first-seen map.
    pub max_tracked: usize,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self { stale_after: super::DEFAULT_STALE_AFTER, max_tracked: DEFAULT_TASK_MAX_TRACKED }
    }
}

/// Most descendants a children walk follows (a bound on a fork bomb).
const MAX_WALK: usize = 1 << 16;

/// State kept between passes: the first-seen map.
#[derive(Debug)]
pub struct TaskSampler {
    settings: TaskSettings,
    /// The last pass found the descendants through the `children` files (not the scan).
    children_files: bool,
    /// (pid, start ticks) → when it started (or, without `/proc/uptime`, was first seen).
    first_seen: HashMap<(i32, u64), Origin>,
}

/// Where a descendant's age is counted from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Its start time, seconds after boot (the clock `/proc/uptime` and `stat` field 22 share).
    Started(f64),
    /// When leakwatch first saw it (no `/proc/uptime` to compare the start time with).
    Seen(Instant),
}

impl Origin {
    fn age(self, uptime: Option<f64>, now: Instant) -> Duration {
        match (self, uptime) {
            (Origin::Started(at), Some(up)) => Duration::try_from_secs_f64(up - at).unwrap_or_default(),
            (Origin::Started(_), None) => Duration::ZERO,
            (Origin::Seen(at), _) => now.duration_since(at),
        }
    }
}

/// Seconds since boot, from the first field of `/proc/uptime`.
fn uptime(roots: &Roots, held: &mut HeldFiles) -> Option<f64> {
    let bytes = held.read(&roots.proc_file("uptime")).ok()?;
    std::str::from_utf8(&bytes).ok()?.split_ascii_whitespace().next()?.parse().ok()
}

/// One process of the scan.
struct Proc {
    pid: i32,
    ppid: i32,
    state: u8,
    start_ticks: u64,
}

impl TaskSampler {
    /// A sampler with an empty first-seen map.
    pub fn new(settings: TaskSettings) -> Self {
        Self { settings, children_files: false, first_seen: HashMap::new() }
    }

    /// Its structure: the first-seen map.
    pub fn structure(&self) -> Structure {
        Structure::map("task_first_seen", &self.first_seen, Some(self.settings.max_tracked))
    }

    /// Releases the first-seen map's room left by descendants that exited; every tracked one
    /// keeps its origin.
    pub fn trim(&mut self) -> Option<Trimmed> {
        let max = Some(self.settings.max_tracked);
        trim_with(&mut self.first_seen, |m| Structure::map("task_first_seen", m, max), shrink_map)
    }

    /// Whether the last pass found the descendants through the `children` files: cheap enough
    /// for every pass. Otherwise it scanned every process.
    pub fn cheap(&self) -> bool {
        self.children_files
    }

    /// Drops every first-seen time (the target is gone: its children are no longer tracked).
    pub fn forget(&mut self) {
        self.first_seen.clear();
    }

    /// New settings (a reload); the first-seen map is kept, cut to a lowered cap.
    pub fn set_settings(&mut self, settings: TaskSettings) {
        let excess = self.first_seen.len().saturating_sub(settings.max_tracked);
        let extra: Vec<(i32, u64)> = self.first_seen.keys().take(excess).copied().collect();
        extra.iter().for_each(|k| {
            self.first_seen.remove(k);
        });
        self.settings = settings;
    }

    /// One pass over the descendants of `group` and its threads' context switches.
    pub fn sample(
        &mut self,
        roots: &Roots,
        group: &[i32],
        facts: &SystemFacts,
        held: &mut HeldFiles,
        errors: &mut ErrorCounts,
    ) -> TaskSample {
        let now = Instant::now();
        let uptime = uptime(roots, held);
        let mut out = TaskSample {
            stale_after: self.settings.stale_after,
            tracked_max: self.settings.max_tracked,
            ..TaskSample::default()
        };
        let descendants = match walk_children(roots, group) {
            Some(found) => {
                self.children_files = true;
                found
            }
            None => {
                self.children_files = false;
                from_scan(scan(roots, errors), group)
            }
        };
        out.children = descendants.iter().filter(|(_, direct)| *direct).count() as u64;
        let descendants: Vec<&Proc> = descendants.iter().map(|(p, _)| p).collect();
        // Processes that are gone leave the map before new ones ask for room.
        let current: HashSet<(i32, u64)> = descendants.iter().map(|p| (p.pid, p.start_ticks)).collect();
        self.first_seen.retain(|key, _| current.contains(key));
        for p in descendants {
            *out.descendants.entry(ProcState::from_letter(p.state)).or_insert(0) += 1;
            let started = uptime.map(|_| Origin::Started(p.start_ticks as f64 / facts.ticks_per_second));
            let room = self.first_seen.len() < self.settings.max_tracked;
            let origin = match self.first_seen.get(&(p.pid, p.start_ticks)) {
                Some(origin) => Some(*origin),
                None if room => {
                    let origin = started.unwrap_or(Origin::Seen(now));
                    self.first_seen.insert((p.pid, p.start_ticks), origin);
                    Some(origin)
                }
                None => {
                    out.untracked += 1;
                    started
                }
            };
            if origin.is_some_and(|o| o.age(uptime, now) >= self.settings.stale_after) {
                out.stale += 1;
            }
        }
        out.tracked = self.first_seen.len();
        let switches = group
            .iter()
            .map(|&pid| thread_switches(roots, pid, errors))
            .try_fold((0u64, 0u64), |acc, s| s.map(|(v, i)| (acc.0 + v, acc.1 + i)));
        if let Some((v, i)) = switches {
            out.voluntary_switches = Some(v);
            out.involuntary_switches = Some(i);
        }
        out
    }
}

/// The descendants of `group` in the scanned process table, each with whether its parent is in
/// the group.
fn from_scan(procs: Vec<Proc>, group: &[i32]) -> Vec<(Proc, bool)> {
    let mut children_of: HashMap<i32, Vec<usize>> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        children_of.entry(p.ppid).or_default().push(i);
    }
    let mut queue: Vec<(i32, bool)> = group.iter().map(|&pid| (pid, true)).collect();
    let mut seen: HashSet<i32> = group.iter().copied().collect();
    let mut found: Vec<(usize, bool)> = Vec::new();
    while let Some((parent, in_group)) = queue.pop() {
        for &i in children_of.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            let p = &procs[i];
            if seen.insert(p.pid) {
                queue.push((p.pid, false));
                found.push((i, in_group));
            }
        }
    }
    let mut procs: Vec<Option<Proc>> = procs.into_iter().map(Some).collect();
    found.into_iter().filter_map(|(i, direct)| procs[i].take().map(|p| (p, direct))).collect()
}

/// The pids listed in every `/proc/PID/task/*/children` of `pid`; `None` when the kernel has
/// no such file (the thread list itself is readable), `Some(empty)` when the process is gone.
fn children_of(roots: &Roots, pid: i32) -> Option<Vec<i32>> {
    let Ok(tasks) = std::fs::read_dir(roots.pid(pid).join("task")) else { return Some(Vec::new()) };
    let mut out = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        match read_capped(&task.path().join("children")) {
            Ok(bytes) => out
                .extend(String::from_utf8_lossy(&bytes).split_ascii_whitespace().filter_map(|p| p.parse::<i32>().ok())),
            Err(e) if e.reason() == ErrorReason::NotFound && task.path().exists() => return None,
            // A thread that exited since the listing.
            Err(_) => {}
        }
    }
    Some(out)
}

/// The descendants of `group` down the `children` files, each with whether its parent is in the
/// group; `None` when the kernel has no `children` file. Processes that exit mid-walk are
/// skipped; at most [`MAX_WALK`] are followed.
fn walk_children(roots: &Roots, group: &[i32]) -> Option<Vec<(Proc, bool)>> {
    let mut queue: Vec<(i32, bool)> = Vec::new();
    for &pid in group {
        queue.extend(children_of(roots, pid)?.into_iter().map(|c| (c, true)));
    }
    let mut seen: HashSet<i32> = group.iter().copied().collect();
    let mut out = Vec::new();
    while let Some((pid, direct)) = queue.pop() {
        if out.len() >= MAX_WALK || !seen.insert(pid) {
            continue;
        }
        let Some(b) = read_capped(&roots.pid(pid).join("stat")).ok().and_then(|s| brief(&s).ok()) else { continue };
        out.push((Proc { pid, ppid: b.ppid, state: b.state, start_ticks: b.start_ticks }, direct));
        queue.extend(children_of(roots, pid).unwrap_or_default().into_iter().map(|c| (c, false)));
    }
    Some(out)
}

/// Every process's parent, state and start time. Processes that exit mid-scan are skipped.
fn scan(roots: &Roots, errors: &mut ErrorCounts) -> Vec<Proc> {
    let entries = match std::fs::read_dir(roots.procfs()) {
        Ok(e) => e,
        Err(source) => {
            record(
                errors,
                ErrorSource::ProcScan,
                &ReadError::Io { path: roots.procfs().display().to_string(), source },
            );
            return Vec::new();
        }
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(|pid| {
            let stat = read_capped(&roots.pid(pid).join("stat")).ok()?;
            let b = brief(&stat).ok()?;
            Some(Proc { pid, ppid: b.ppid, state: b.state, start_ticks: b.start_ticks })
        })
        .collect()
}

/// Voluntary and involuntary switches summed over the threads of `pid` (`/proc/PID/status`
/// reports the main thread's only). `None` if the task list cannot be read.
fn thread_switches(roots: &Roots, pid: i32, errors: &mut ErrorCounts) -> Option<(u64, u64)> {
    let dir = roots.pid(pid).join("task");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(source) => {
            record(errors, ErrorSource::TaskStatus, &ReadError::Io { path: dir.display().to_string(), source });
            return None;
        }
    };
    let mut sum = (0u64, 0u64);
    for entry in entries.filter_map(Result::ok) {
        match read_parsed(&entry.path().join("status"), switches) {
            Ok((v, i)) => {
                sum.0 += v;
                sum.1 += i;
            }
            // A thread that exited since the listing: not an error.
            Err(e) if e.reason() == ErrorReason::NotFound => {}
            Err(e) => {
                record(errors, ErrorSource::TaskStatus, &e);
                return None;
            }
        }
    }
    Some(sum)
}

/// `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of a status file.
pub fn switches(bytes: &[u8]) -> Result<(u64, u64), ParseError> {
    let s = kv::colon_keyed(bytes)?;
    let get = |k: &str| s.count(k)?.ok_or_else(|| ParseError::Invalid(format!("no {k}: line")));
    Ok((get("voluntary_ctxt_switches")?, get("nonvoluntary_ctxt_switches")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(pid: i32, state: char, ppid: i32, start: u64) -> String {
        format!("{pid} (w) {state} {ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 1\n")
    }

    #[test]
    fn descendants_by_state_age_from_start_time_and_the_capped_map() {
        let root = std::env::temp_dir().join(format!("leakwatch-tasks-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // 7 is the group; 8 (a zombie) and 11 are its children, 9 a grandchild; 10 is unrelated.
        for (pid, state, ppid, start) in
            [(7, 'S', 1, 100), (8, 'Z', 7, 200), (9, 'S', 8, 50_000), (10, 'R', 1, 300), (11, 'R', 7, 400)]
        {
            std::fs::create_dir_all(root.join(pid.to_string())).unwrap();
            std::fs::write(root.join(format!("{pid}/stat")), stat_line(pid, state, ppid, start)).unwrap();
        }
        std::fs::create_dir_all(root.join("7/task/7")).unwrap();
        std::fs::write(
            root.join("7/task/7/status"),
            "Name:\tw\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t1\n",
        )
        .unwrap();
        // Uptime 505 s: with 100 ticks a second, 8 started at 2 s, 11 at 4 s, 9 at 500 s.
        std::fs::write(root.join("uptime"), "505.00 1000.00\n").unwrap();
        let roots = Roots::new(&root, "/nonexistent");
        let facts = SystemFacts { ticks_per_second: 100.0, boot_time: None };
        let mut sampler = TaskSampler::new(TaskSettings { stale_after: Duration::from_secs(60), max_tracked: 2 });
        let mut errors = ErrorCounts::default();
        let t = sampler.sample(&roots, &[7], &facts, &mut HeldFiles::default(), &mut errors);
        assert_eq!(t.children, 2);
        assert_eq!(t.descendants.get(&ProcState::Zombie), Some(&1));
        assert_eq!(t.descendants.values().sum::<u64>(), 3, "{:?}", t.descendants);
        assert_eq!(t.stale, 2, "8 and 11 are 500 s old, 9 only 5 s");
        assert_eq!((t.tracked, t.untracked), (2, 1), "the cap of 2 leaves one out");
        assert_eq!((t.voluntary_switches, t.involuntary_switches), (Some(5), Some(1)));
        std::fs::remove_dir_all(root.join("8")).unwrap();
        std::fs::remove_dir_all(root.join("9")).unwrap();
        let t = sampler.sample(&roots, &[7], &facts, &mut HeldFiles::default(), &mut errors);
        assert_eq!((t.children, t.tracked, t.untracked, t.stale), (1, 1, 0, 1), "8 and 9 are gone and pruned");
        assert_eq!(errors.iter().count(), 0, "{errors:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_children_files_find_the_same_tree_as_the_scan() {
        // sh forks a sleep and waits: one child, one grandchild under the sh.
        let mut sh = std::process::Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().unwrap();
        let pid = sh.id() as i32;
        let roots = Roots::default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while children_of(&roots, pid).is_some_and(|c| c.is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let walked = walk_children(&roots, &[pid]).expect("this kernel has the children files");
        let scanned = from_scan(scan(&roots, &mut ErrorCounts::default()), &[pid]);
        let facts = SystemFacts::read(&roots);
        let mut sampler = TaskSampler::new(TaskSettings::default());
        let t = sampler.sample(&roots, &[pid], &facts, &mut HeldFiles::default(), &mut ErrorCounts::default());
        for (p, _) in &walked {
            let _ = std::process::Command::new("kill").arg(p.pid.to_string()).status();
        }
        let _ = sh.kill();
        let _ = sh.wait();
        let pids = |v: &[(Proc, bool)]| v.iter().map(|(p, d)| (p.pid, *d)).collect::<Vec<_>>();
        assert_eq!(walked.len(), 1, "the sleep");
        assert_eq!(pids(&walked), pids(&scanned), "the walk and the scan agree");
        assert!(sampler.cheap(), "the pass used the children files");
        assert_eq!(t.children, 1);
    }

    #[test]
    fn switches_need_both_lines() {
        assert_eq!(switches(b"Name:\tx\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t2\n"), Ok((5, 2)));
        assert!(switches(b"Name:\tx\nvoluntary_ctxt_switches:\t5\n").is_err());
    }
}
