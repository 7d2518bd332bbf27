//! One process: `/proc/PID/{stat,status,limits}` and its descriptor count every pass; PSS
//! (`smaps_rollup`) through a [`PssGate`] when the tiers ask for it.

use std::path::Path;
use std::time::{Duration, Instant};

use procfs::process::{LimitValue, Limits, Stat};
use procfs::FromRead;

use super::fds::{self, FdScan};
use super::held::HeldFiles;
use super::read::{ok_or_record, read_capped, read_parsed};
use crate::parse::{kv, ParseError};
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorReason, ErrorSource, ProcessIdentity, ProcessMemory, PssCost};

/// Constants of the running kernel that turn ticks and pages into seconds and bytes.
#[derive(Debug, Clone, Copy)]
pub struct SystemFacts {
    /// Clock ticks per second (`_SC_CLK_TCK`).
    pub ticks_per_second: f64,
    /// Boot time, seconds since the Unix epoch (`btime` in `/proc/stat`), if readable.
    pub boot_time: Option<f64>,
}

impl SystemFacts {
    /// Reads the facts once; `btime` comes from the configured procfs root.
    pub fn read(roots: &Roots) -> Self {
        let boot_time = read_capped(&roots.proc_file("stat")).ok().and_then(|b| btime(&b));
        Self { ticks_per_second: procfs::ticks_per_second() as f64, boot_time }
    }
}

fn btime(stat: &[u8]) -> Option<f64> {
    String::from_utf8_lossy(stat)
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|v| v as f64)
}

/// When to read PSS: `smaps_rollup` walks every page table of the target and can stall a huge
/// process for seconds (process-exporter#246), so it is skipped above an RSS ceiling and backed
/// off exponentially after a read that exceeds the time budget.
#[derive(Debug, Clone)]
pub struct PssGate {
    max_rss: u64,
    time_budget: Duration,
    skip_passes: u32,
    next_backoff: u32,
}

/// What [`PssGate::read`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssRead {
    /// Skipped: the RSS is above the ceiling or the gate is backing off.
    Refused,
    /// Read: the figure, or `None` when `smaps_rollup` was unreadable (counted in errors).
    Read(Option<u64>),
}

/// The longest back-off, in sampling passes, after slow `smaps_rollup` reads.
pub const MAX_PSS_BACKOFF_PASSES: u32 = 64;

impl PssGate {
    /// A gate with the configured RSS ceiling and time budget.
    pub fn new(max_rss: u64, time_budget: Duration) -> Self {
        Self { max_rss, time_budget, skip_passes: 0, next_backoff: 1 }
    }

    /// New limits (a reload); a back-off in progress continues.
    pub fn set_limits(&mut self, max_rss: u64, time_budget: Duration) {
        self.max_rss = max_rss;
        self.time_budget = time_budget;
    }

    /// Reads the PSS of the process whose `/proc/PID` is `dir`, unless its RSS is above the
    /// ceiling or the gate is backing off. `allowed` is the pass's state: `None` until the
    /// pass's first read asks (the back-off counts passes that wanted a read).
    pub fn read(
        &mut self,
        allowed: &mut Option<bool>,
        dir: &Path,
        rss: Option<u64>,
        cost: &mut PssCost,
        errors: &mut ErrorCounts,
    ) -> PssRead {
        if !*allowed.get_or_insert_with(|| self.begin_pass(cost)) {
            return PssRead::Refused;
        }
        if rss.is_some_and(|rss| rss > self.max_rss) {
            cost.skipped_rss += 1;
            return PssRead::Refused;
        }
        let started = Instant::now();
        let pss = read_parsed(&dir.join("smaps_rollup"), pss);
        self.finish_read(started.elapsed(), cost);
        // One slow read stops the rest of the group for this pass too.
        *allowed = Some(self.skip_passes == 0);
        PssRead::Read(ok_or_record(errors, ErrorSource::SmapsRollup, pss))
    }

    /// Called once per pass before the group is read; returns whether PSS may be read this pass.
    fn begin_pass(&mut self, cost: &mut PssCost) -> bool {
        cost.last_read = None;
        if self.skip_passes > 0 {
            self.skip_passes -= 1;
            cost.skipped_budget += 1;
            return false;
        }
        true
    }

    fn finish_read(&mut self, took: Duration, cost: &mut PssCost) {
        cost.read_seconds_total += took.as_secs_f64();
        cost.last_read = Some(cost.last_read.unwrap_or_default() + took);
        if took > self.time_budget {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                budget_ms = self.time_budget.as_millis() as u64,
                skip_passes = self.next_backoff,
                "smaps_rollup read exceeded its time budget; backing off"
            );
            self.skip_passes = self.next_backoff;
            self.next_backoff = (self.next_backoff * 2).min(MAX_PSS_BACKOFF_PASSES);
        } else {
            self.next_backoff = 1;
        }
    }
}

/// One process of a pass.
#[derive(Debug, Clone)]
pub struct SampledProcess {
    /// Who it is.
    pub id: ProcessIdentity,
    /// Its figures.
    pub memory: ProcessMemory,
    /// Its descriptors by kind and socket inodes, if the `fd` directory could be walked (filled
    /// in by the tiers, from this pass's walk or an earlier one).
    pub fds: Option<FdScan>,
}

/// The descriptor soft limits read at the last pass, by process: `/proc/PID/limits` is read again
/// only on a full pass or when the process's descriptor count moved (a limit changes rarely; a
/// process that lowers its own at start then opens descriptors). Holds the last group's entries.
#[derive(Debug, Default)]
pub struct KnownLimits {
    /// (pid, start ticks, open descriptors, soft limit) of the last pass's processes.
    entries: Vec<(i32, u64, Option<u64>, Option<u64>)>,
}

impl KnownLimits {
    fn get(&self, pid: i32, start: u64, open_fds: Option<u64>) -> Option<Option<u64>> {
        self.entries.iter().find(|e| e.0 == pid && e.1 == start && e.2 == open_fds).map(|e| e.3)
    }
}

/// Reads the cheap figures of the processes of one group in a pass; `fd_count_by_size` says
/// the procfs root reports descriptor counts as the `fd` directory's size (see [`fds::count`]);
/// `limits` are re-read on a `full` pass (see [`KnownLimits`]). Returns one entry per process
/// that could be identified (its `stat` was readable); processes that vanished are skipped and
/// counted.
pub fn sample_group(
    roots: &Roots,
    pids: &[i32],
    facts: &SystemFacts,
    fd_count_by_size: bool,
    (limits, full): (&mut KnownLimits, bool),
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Vec<SampledProcess> {
    let group: Vec<SampledProcess> = pids
        .iter()
        .filter_map(|&pid| sample_one(roots, pid, facts, fd_count_by_size, (limits, full), held, errors))
        .collect();
    limits.entries = group.iter().map(|p| (p.id.pid, p.id.start_ticks, p.memory.open_fds, p.memory.max_fds)).collect();
    group
}

fn sample_one(
    roots: &Roots,
    pid: i32,
    facts: &SystemFacts,
    fd_count_by_size: bool,
    (limits, full): (&KnownLimits, bool),
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Option<SampledProcess> {
    let dir = roots.pid(pid);
    let stat = ok_or_record(errors, ErrorSource::Stat, held.read_parsed(&dir.join("stat"), parse_stat))?;
    // An exiting process (PF_EXITING: dying or a zombie) is gone in all but name: its memory is
    // being torn down, and on cgroup v1 its /proc/PID/cgroup already reads `/`, which in a
    // container resolves to leakwatch's own cgroup. Counted as vanished.
    if stat.flags & PF_EXITING != 0 {
        errors.record(ErrorSource::Stat, ErrorReason::NotFound);
        return None;
    }
    let identity = ProcessIdentity { pid, start_ticks: stat.starttime, comm: stat.comm.clone() };
    let mut m = ProcessMemory {
        cpu_seconds: Some((stat.utime + stat.stime) as f64 / facts.ticks_per_second),
        start_time_seconds: facts.boot_time.map(|b| b + stat.starttime as f64 / facts.ticks_per_second),
        ..ProcessMemory::default()
    };
    if let Some(status) = ok_or_record(errors, ErrorSource::Status, held.read_parsed(&dir.join("status"), status)) {
        m.rss = status.rss;
        m.rss_anon = status.rss_anon;
        m.rss_file = status.rss_file;
        m.rss_shmem = status.rss_shmem;
        m.swap = status.swap;
        m.rss_peak = status.rss_peak;
        m.virtual_size = status.virtual_size;
        m.threads = status.threads;
    }
    m.open_fds = ok_or_record(errors, ErrorSource::Fd, fds::count(&dir.join("fd"), fd_count_by_size));
    m.max_fds = match limits.get(pid, stat.starttime, m.open_fds) {
        Some(known) if !full => known,
        _ => ok_or_record(errors, ErrorSource::Limits, read_parsed(&dir.join("limits"), fd_soft_limit)).flatten(),
    };
    Some(SampledProcess { id: identity, memory: m, fds: None })
}

/// The kernel's task flag for a process that has begun to exit (`include/linux/sched.h`).
const PF_EXITING: u32 = 0x0000_0004;

fn parse_stat(bytes: &[u8]) -> Result<Stat, ParseError> {
    Stat::from_read(bytes).map_err(|e| ParseError::Invalid(e.to_string()))
}

/// The `/proc/PID/status` fields leakwatch uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusFields {
    /// `VmRSS`.
    pub rss: Option<u64>,
    /// `RssAnon`.
    pub rss_anon: Option<u64>,
    /// `RssFile`.
    pub rss_file: Option<u64>,
    /// `RssShmem`.
    pub rss_shmem: Option<u64>,
    /// `VmSwap`.
    pub swap: Option<u64>,
    /// `VmHWM`.
    pub rss_peak: Option<u64>,
    /// `VmSize`.
    pub virtual_size: Option<u64>,
    /// `Threads`.
    pub threads: Option<u64>,
}

/// Parses `/proc/PID/status`. Kernel threads have no `Vm*` lines: those fields are `None`.
/// A file without a `Name:` line is truncated (the process exited mid-read) and rejected.
pub fn status(bytes: &[u8]) -> Result<StatusFields, ParseError> {
    let s = kv::colon_keyed(bytes)?;
    if s.text("Name").is_none() {
        return Err(ParseError::Invalid("no Name: line (truncated status)".into()));
    }
    Ok(StatusFields {
        rss: s.bytes("VmRSS")?,
        rss_anon: s.bytes("RssAnon")?,
        rss_file: s.bytes("RssFile")?,
        rss_shmem: s.bytes("RssShmem")?,
        swap: s.bytes("VmSwap")?,
        rss_peak: s.bytes("VmHWM")?,
        virtual_size: s.bytes("VmSize")?,
        threads: s.count("Threads")?,
    })
}

/// Parses `Pss:` out of `/proc/PID/smaps_rollup`.
pub fn pss(bytes: &[u8]) -> Result<u64, ParseError> {
    kv::colon_keyed(bytes)?.bytes("Pss")?.ok_or_else(|| ParseError::Invalid("no Pss: line".into()))
}

/// The soft `Max open files` limit; `None` when unlimited.
fn fd_soft_limit(bytes: &[u8]) -> Result<Option<u64>, ParseError> {
    let limits = Limits::from_read(bytes).map_err(|e| ParseError::Invalid(e.to_string()))?;
    Ok(match limits.max_open_files.soft_limit {
        LimitValue::Value(v) => Some(v),
        LimitValue::Unlimited => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_status_is_rejected_and_kernel_threads_have_no_rss() {
        assert!(status(b"VmRSS:\t100 kB\n").is_err());
        let kthread = status(b"Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n").unwrap();
        assert_eq!(kthread.rss, None);
        assert_eq!(kthread.threads, Some(1));
    }

    #[test]
    fn pss_from_a_rollup() {
        let text = b"00400000-7ffd4f1e6000 ---p 00000000 00:00 0                      [rollup]\nRss:  2048 kB\nPss:  1024 kB\n";
        assert_eq!(pss(text), Ok(1024 * 1024));
        assert!(pss(b"Rss: 1 kB\n").is_err());
    }

    #[test]
    fn an_exiting_process_is_skipped_as_vanished() {
        let dir = std::env::temp_dir().join(format!("leakwatch-exiting-{}", std::process::id()));
        for (pid, flags) in [(10, 0x0040_0000u32), (11, 0x0040_0004)] {
            std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
            let stat = format!("{pid} (app) S 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 1 1 0 0 20 0 1 0 100 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
            std::fs::write(dir.join(pid.to_string()).join("stat"), stat).unwrap();
        }
        let roots = Roots::new(&dir, "/nonexistent-sys");
        let facts = SystemFacts { ticks_per_second: 100.0, boot_time: None };
        let mut errors = ErrorCounts::default();
        let group = sample_group(
            &roots,
            &[10, 11],
            &facts,
            false,
            (&mut KnownLimits::default(), true),
            &mut HeldFiles::default(),
            &mut errors,
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(group.iter().map(|p| p.id.pid).collect::<Vec<_>>(), [10], "the exiting process 11 is skipped");
        assert!(errors.get(ErrorSource::Stat, ErrorReason::NotFound) >= 1);
    }

    #[test]
    fn limits_are_read_again_on_a_full_pass_or_when_the_descriptor_count_moves() {
        let dir = std::env::temp_dir().join(format!("leakwatch-limits-{}", std::process::id()));
        let proc = dir.join("10");
        std::fs::create_dir_all(proc.join("fd")).unwrap();
        let stat =
            "10 (app) S 1 10 10 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        std::fs::write(proc.join("stat"), stat).unwrap();
        let real = std::fs::read_to_string("/proc/self/limits").unwrap();
        let limit = |soft: u64| {
            let text: String = real
                .lines()
                .map(|l| match l.starts_with("Max open files") {
                    true => format!("Max open files            {soft:<21}4096                 files     \n"),
                    false => format!("{l}\n"),
                })
                .collect();
            std::fs::write(proc.join("limits"), text).unwrap();
        };
        let roots = Roots::new(&dir, "/nonexistent-sys");
        let facts = SystemFacts { ticks_per_second: 100.0, boot_time: None };
        let mut errors = ErrorCounts::default();
        let mut known = KnownLimits::default();
        let mut max_fds = |full: bool| {
            sample_group(&roots, &[10], &facts, false, (&mut known, full), &mut HeldFiles::default(), &mut errors)[0]
                .memory
                .max_fds
        };
        limit(1024);
        assert_eq!(max_fds(false), Some(1024), "the first look reads the file");
        limit(64);
        assert_eq!(max_fds(false), Some(1024), "kept while the descriptor count stays");
        std::fs::write(proc.join("fd").join("3"), "").unwrap();
        assert_eq!(max_fds(false), Some(64), "the count moved: read again");
        limit(128);
        assert_eq!(max_fds(true), Some(128), "a full pass reads it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn btime_is_read_from_proc_stat() {
        assert_eq!(btime(b"cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), Some(1.7e9));
        assert_eq!(btime(b"cpu 1 2 3\n"), None);
    }

    #[test]
    fn a_slow_read_backs_off_exponentially_and_a_fast_one_resets() {
        let mut gate = PssGate::new(u64::MAX, Duration::from_millis(10));
        let mut cost = PssCost::default();
        assert!(gate.begin_pass(&mut cost));
        gate.finish_read(Duration::from_millis(20), &mut cost);
        assert!(!gate.begin_pass(&mut cost), "one pass skipped after the first slow read");
        assert!(gate.begin_pass(&mut cost));
        gate.finish_read(Duration::from_millis(20), &mut cost);
        assert!(!gate.begin_pass(&mut cost));
        assert!(!gate.begin_pass(&mut cost), "two passes skipped after the second");
        assert!(gate.begin_pass(&mut cost));
        gate.finish_read(Duration::from_millis(1), &mut cost);
        assert!(gate.begin_pass(&mut cost));
        assert_eq!(cost.skipped_budget, 3);
    }
}
