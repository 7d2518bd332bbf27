//! One process: `/proc/PID/{stat,status,limits,fd,smaps_rollup}`.

use std::time::{Duration, Instant};

use procfs::process::{LimitValue, Limits, Stat};
use procfs::FromRead;

use super::fds::{self, FdScan};
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
    /// Its descriptors, if the `fd` directory could be read.
    pub fds: Option<FdScan>,
}

/// Reads the processes of one group in a pass; PSS only when a gate is given. Returns one entry per process that could be
/// identified (its `stat` was readable); processes that vanished are skipped and counted.
pub fn sample_group(
    roots: &Roots,
    pids: &[i32],
    facts: &SystemFacts,
    mut gate: Option<&mut PssGate>,
    cost: &mut PssCost,
    errors: &mut ErrorCounts,
) -> Vec<SampledProcess> {
    let mut pss_allowed = gate.as_deref_mut().is_some_and(|g| g.begin_pass(cost));
    let mut out = Vec::with_capacity(pids.len());
    for &pid in pids {
        if let Some(sampled) = sample_one(roots, pid, facts, &mut pss_allowed, gate.as_deref_mut(), cost, errors) {
            out.push(sampled);
        }
    }
    out
}

fn sample_one(
    roots: &Roots,
    pid: i32,
    facts: &SystemFacts,
    pss_allowed: &mut bool,
    gate: Option<&mut PssGate>,
    cost: &mut PssCost,
    errors: &mut ErrorCounts,
) -> Option<SampledProcess> {
    let dir = roots.pid(pid);
    let stat = ok_or_record(errors, ErrorSource::Stat, read_parsed(&dir.join("stat"), parse_stat))?;
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
    if let Some(status) = ok_or_record(errors, ErrorSource::Status, read_parsed(&dir.join("status"), status)) {
        m.rss = status.rss;
        m.rss_anon = status.rss_anon;
        m.rss_file = status.rss_file;
        m.rss_shmem = status.rss_shmem;
        m.swap = status.swap;
        m.rss_peak = status.rss_peak;
        m.virtual_size = status.virtual_size;
        m.threads = status.threads;
    }
    m.max_fds = ok_or_record(errors, ErrorSource::Limits, read_parsed(&dir.join("limits"), fd_soft_limit)).flatten();
    let fds = ok_or_record(errors, ErrorSource::Fd, fds::scan(&dir.join("fd")));
    m.open_fds = fds.as_ref().map(FdScan::total);
    if let (true, Some(gate)) = (*pss_allowed, gate) {
        match m.rss {
            Some(rss) if rss > gate.max_rss => cost.skipped_rss += 1,
            _ => {
                let started = Instant::now();
                let pss = read_parsed(&dir.join("smaps_rollup"), pss);
                gate.finish_read(started.elapsed(), cost);
                m.pss = ok_or_record(errors, ErrorSource::SmapsRollup, pss);
                // One slow read stops the rest of the group for this pass too.
                *pss_allowed = gate.skip_passes == 0;
            }
        }
    }
    Some(SampledProcess { id: identity, memory: m, fds })
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
        let group = sample_group(&roots, &[10, 11], &facts, None, &mut PssCost::default(), &mut errors);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(group.iter().map(|p| p.id.pid).collect::<Vec<_>>(), [10], "the exiting process 11 is skipped");
        assert!(errors.get(ErrorSource::Stat, ErrorReason::NotFound) >= 1);
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
