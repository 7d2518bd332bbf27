//! The immutable result of one sampling pass, published to every reader (metrics, HTTP, alerts).
//!
//! Plain data only: no locks, no I/O. A field is `None` when the kernel did not provide it or it
//! could not be read; the reason is then counted in [`ErrorCounts`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::logs::LogSourceStats;
use crate::measure::Structure;
pub use crate::parse::fdlink::FdKind;
use crate::parse::pressure::Pressure;
pub use crate::parse::sockets::{Protocol, SockState};
pub use crate::parse::stat::ProcState;

pub(crate) mod json;
pub mod oom;

/// One sampling pass.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// 1 for the first sample; 0 only for the placeholder published before it.
    pub seq: u64,
    /// When the pass started.
    #[serde(serialize_with = "crate::seconds::ser_unix")]
    pub taken_at: SystemTime,
    /// How long the pass took.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub duration: Duration,
    /// Host-wide memory.
    pub host: HostSample,
    /// The watched process group.
    pub target: TargetSample,
    /// leakwatch's own process, for the standard `process_*` metrics.
    pub own_process: Option<ProcessMemory>,
    /// Errors since start, by file kind and reason.
    pub errors: ErrorCounts,
    /// Every log source's figures, in configuration order.
    pub logs: Vec<LogSourceStats>,
    /// The sizes and caps of the sampler's own structures and of the log buffers, measured at
    /// the end of the pass (in `/status` they are in the top-level `structures` list).
    #[serde(skip)]
    pub structures: Vec<Structure>,
    /// The target's presence and OOM kills (leakwatch's own count and the newest reports).
    pub oom: oom::OomStatus,
}

impl Snapshot {
    /// The placeholder before the first sample: nothing measured, not ready.
    pub fn empty(target_name: &str) -> Self {
        Self {
            seq: 0,
            taken_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            host: HostSample::default(),
            target: TargetSample { name: target_name.to_owned(), ..TargetSample::default() },
            own_process: None,
            errors: ErrorCounts::default(),
            logs: Vec::new(),
            structures: Vec::new(),
            oom: oom::OomStatus { target: target_name.to_owned(), ..Default::default() },
        }
    }
}

/// `/proc/meminfo` and `/proc/pressure/memory`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostSample {
    /// Memory figures in bytes.
    pub memory: Option<HostMemory>,
    /// Memory pressure, where the kernel has PSI.
    pub pressure: Option<Pressure>,
}

/// Host memory in bytes, as `/proc/meminfo` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HostMemory {
    /// `MemTotal`.
    pub total: u64,
    /// `MemAvailable` (absent before Linux 3.14).
    pub available: Option<u64>,
    /// `MemFree`.
    pub free: Option<u64>,
    /// `Buffers`.
    pub buffers: Option<u64>,
    /// `Cached`.
    pub cached: Option<u64>,
    /// `SwapTotal`.
    pub swap_total: Option<u64>,
    /// `SwapFree`.
    pub swap_free: Option<u64>,
}

/// The watched process group in one pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetSample {
    /// The `target` label value.
    pub name: String,
    /// The processes sampled (at most `target.max_processes`), ordered by pid.
    pub processes: Vec<ProcessIdentity>,
    /// How many processes matched before the cap.
    pub matched: usize,
    /// Group memory: the sum over `processes`.
    pub memory: Option<ProcessMemory>,
    /// The group leader's memory cgroup.
    pub cgroup: Option<CgroupSample>,
    /// The ratio alerting uses, with its basis.
    pub utilization: Option<Utilization>,
    /// What reading PSS cost and how often it was skipped.
    pub pss: PssCost,
    /// How many times the group's set of processes changed since start (restarts, pid reuse).
    pub changes: u64,
    /// Sockets held by the group, its network namespace's tables and the peer groups; `None` when
    /// no process was sampled.
    pub sockets: Option<SocketSample>,
    /// Open descriptors of the group by kind, and how close the worst process is to its limit.
    pub fds: Option<FdSample>,
    /// Child processes, their states and ages, and context switches of the group's threads.
    pub tasks: Option<TaskSample>,
    /// The group leader's `pids` cgroup controller, when it has one.
    pub pids: Option<PidsSample>,
    /// How old the expensive figures were at this pass (tiered sampling).
    pub freshness: Freshness,
}

/// How old each expensive figure group was when the pass started: zero when it was read in this
/// pass, at most `sampling.expensive_every` intervals otherwise; `None` when never read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Freshness {
    /// The descriptor walk (counts by kind, socket inodes); the oldest over the group.
    #[serde(serialize_with = "crate::seconds::ser_opt_duration")]
    pub fds: Option<Duration>,
    /// PSS (`smaps_rollup`); the oldest over the group.
    #[serde(serialize_with = "crate::seconds::ser_opt_duration")]
    pub pss: Option<Duration>,
    /// The socket tables.
    #[serde(serialize_with = "crate::seconds::ser_opt_duration")]
    pub sockets: Option<Duration>,
    /// The descendants and their states.
    #[serde(serialize_with = "crate::seconds::ser_opt_duration")]
    pub tasks: Option<Duration>,
    /// Passes between two full passes (`sampling.expensive_every`).
    pub expensive_every: u32,
}

impl Freshness {
    /// The figure groups with their `figures` label values.
    pub(crate) fn groups(&self) -> [(&'static str, Option<Duration>); 4] {
        [("fds", self.fds), ("pss", self.pss), ("sockets", self.sockets), ("tasks", self.tasks)]
    }
}

/// How a socket table was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SocketMethod {
    /// A `NETLINK_SOCK_DIAG` dump (leakwatch shares the target's network namespace).
    SockDiag,
    /// `/proc/PID/net/*` of the group leader (another namespace, a fixture tree, `method:
    /// proc_net`, or a kernel without the diag module for that table).
    ProcNet,
}

impl SocketMethod {
    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SockDiag => "sock_diag",
            Self::ProcNet => "proc_net",
        }
    }
}

/// Socket counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SocketSample {
    /// How each table was read this pass (tables that could not be read are absent).
    pub methods: BTreeMap<Protocol, SocketMethod>,
    /// Sockets held by the group (matched by inode with its fds), by table and state.
    #[serde(serialize_with = "json::by_table")]
    pub held: BTreeMap<(Protocol, SockState), u64>,
    /// Every socket of the namespace's tables, by table and state (includes `time_wait`, which no
    /// process holds, and other processes' sockets).
    #[serde(serialize_with = "json::by_table")]
    pub netns: BTreeMap<(Protocol, SockState), u64>,
    /// The group's listening TCP sockets.
    pub listeners: Vec<Listener>,
    /// Fill of the fullest listener's accept queue, queued ÷ backlog (`sock_diag` only: the
    /// `/proc/net` tables do not show the backlog).
    pub accept_queue_utilization: Option<f64>,
    /// The configured peer groups, in configuration order.
    pub peers: Vec<PeerSample>,
    /// Held sockets (not listening) first seen longer ago than `stale_after`.
    pub stale: u64,
    /// The configured age past which a socket is stale.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub stale_after: Duration,
    /// Sockets in the first-seen map.
    pub tracked: usize,
    /// The first-seen map's cap (`connections.max_tracked`).
    pub tracked_max: usize,
    /// Held sockets left out of the first-seen map this pass because it was full (no age known).
    pub untracked: u64,
    /// What reading the tables and matching them cost this pass.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub duration: Duration,
}

/// A listening TCP socket of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Listener {
    /// `tcp` or `tcp6`.
    pub protocol: Protocol,
    /// The local port.
    pub port: u16,
    /// Connections waiting in the accept queue.
    pub queued: u64,
    /// The accept-queue limit (`listen()` backlog), when the table shows it.
    pub backlog: Option<u64>,
}

/// Connections of the group to one configured peer group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerSample {
    /// The `peer` label value.
    pub name: String,
    /// The configured limit (e.g. the pool size).
    pub limit: u64,
    /// Held TCP sockets to the peer, by state.
    pub by_state: BTreeMap<SockState, u64>,
    /// Held TCP sockets to the peer in any state.
    pub connections: u64,
    /// Of those, first seen longer ago than `stale_after`.
    pub stale: u64,
    /// connections ÷ limit: the ratio the alert rules read.
    pub utilization: f64,
}

/// Open file descriptors of the group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FdSample {
    /// Descriptors by kind, summed over the processes whose `fd` directory could be read.
    pub by_kind: BTreeMap<FdKind, u64>,
    /// The worst process's open descriptors ÷ its soft `RLIMIT_NOFILE` (the one that hits
    /// `EMFILE` first): the ratio the alert rules read. `None` when no limit is known.
    pub utilization: Option<f64>,
}

/// Child processes of the group and context switches of its threads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskSample {
    /// Processes whose parent is in the group (and that are not in the group themselves).
    pub children: u64,
    /// Every descendant of the group (children, their children, ...) by state.
    pub descendants: BTreeMap<ProcState, u64>,
    /// Descendants older (by their start time) than `stale_after`: stuck workers.
    pub stale: u64,
    /// The configured age past which a descendant is stale.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub stale_after: Duration,
    /// Descendants in the first-seen map.
    pub tracked: usize,
    /// The first-seen map's cap (`tasks.max_tracked`).
    pub tracked_max: usize,
    /// Descendants left out of the first-seen map this pass because it was full.
    pub untracked: u64,
    /// Voluntary context switches summed over every thread of the group.
    pub voluntary_switches: Option<u64>,
    /// Involuntary (preempted) context switches summed over every thread of the group.
    pub involuntary_switches: Option<u64>,
}

/// The `pids` controller of the target's cgroup: tasks (processes and threads) against `pids.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PidsSample {
    /// Hierarchy version (v1: the `pids` hierarchy; v2: the unified one).
    pub version: CgroupVersion,
    /// `pids.current`.
    pub current: Option<u64>,
    /// `pids.max`; `None` when it is `max` (no limit) or unreadable.
    pub max: Option<u64>,
}

/// A process, identified across pid reuse by its start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// Command name (`comm`), at most 15 bytes.
    pub comm: String,
}

/// Memory and resource figures of one process, or the sum over a group.
///
/// For a group, a field is present only if it was read for every process: a partial sum would
/// understate usage and look like a drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcessMemory {
    /// Resident set size (`VmRSS`), bytes.
    pub rss: Option<u64>,
    /// Resident anonymous memory (`RssAnon`), bytes.
    pub rss_anon: Option<u64>,
    /// Resident file mappings (`RssFile`), bytes.
    pub rss_file: Option<u64>,
    /// Resident shared memory (`RssShmem`), bytes.
    pub rss_shmem: Option<u64>,
    /// Proportional set size from `smaps_rollup`, bytes.
    pub pss: Option<u64>,
    /// Swapped-out anonymous memory (`VmSwap`), bytes.
    pub swap: Option<u64>,
    /// Peak resident set size (`VmHWM`), bytes.
    pub rss_peak: Option<u64>,
    /// Virtual memory size (`VmSize`), bytes.
    pub virtual_size: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Soft limit on open file descriptors (`RLIMIT_NOFILE`); `None` also when unlimited.
    pub max_fds: Option<u64>,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Start time, seconds since the Unix epoch (the oldest process for a group).
    pub start_time_seconds: Option<f64>,
}

impl ProcessMemory {
    /// Adds another process's figures into this group sum.
    pub(crate) fn accumulate(&mut self, other: &ProcessMemory) {
        fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            Some(a? + b?)
        }
        self.rss = sum(self.rss, other.rss);
        self.rss_anon = sum(self.rss_anon, other.rss_anon);
        self.rss_file = sum(self.rss_file, other.rss_file);
        self.rss_shmem = sum(self.rss_shmem, other.rss_shmem);
        self.pss = sum(self.pss, other.pss);
        self.swap = sum(self.swap, other.swap);
        self.rss_peak = sum(self.rss_peak, other.rss_peak);
        self.virtual_size = sum(self.virtual_size, other.virtual_size);
        self.threads = sum(self.threads, other.threads);
        self.open_fds = sum(self.open_fds, other.open_fds);
        self.max_fds = sum(self.max_fds, other.max_fds);
        self.cpu_seconds = sum(self.cpu_seconds, other.cpu_seconds);
        self.start_time_seconds = match (self.start_time_seconds, other.start_time_seconds) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
    }
}

/// Cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy hierarchies (the `memory` controller mounted on its own).
    V1,
    /// The unified hierarchy.
    V2,
}

impl CgroupVersion {
    /// Label value: `v1` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// How the target's cgroup directory was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVia {
    /// The path in `/proc/PID/cgroup` under leakwatch's own cgroup mount (or `--sysfs-root`).
    Direct,
    /// Through the target's own view, `/proc/PID/root/sys/fs/cgroup`: needed from a sidecar in
    /// another cgroup namespace, where `/proc/PID/cgroup` reads like `0::/../..`.
    ProcRoot,
}

impl CgroupVia {
    /// Label value: `direct` or `proc_root`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::ProcRoot => "proc_root",
        }
    }
}

/// The memory controller of the target's cgroup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CgroupSample {
    /// Hierarchy version.
    pub version: CgroupVersion,
    /// How the directory was found.
    pub via: CgroupVia,
    /// The cgroup path as `/proc/PID/cgroup` names it (for the `_info` metric only).
    pub path: String,
    /// `memory.current` / `memory.usage_in_bytes`.
    pub usage: Option<u64>,
    /// `memory.max` / `memory.limit_in_bytes`; `None` when unlimited.
    pub limit: Option<u64>,
    /// usage − inactive_file, floored at 0 (the kubelet's working set).
    pub working_set: Option<u64>,
    /// Anonymous memory: v2 `anon`, v1 `total_rss`.
    pub rss: Option<u64>,
    /// Page cache: v2 `file`, v1 `total_cache`.
    pub cache: Option<u64>,
    /// Shared memory: v2 `shmem`, v1 `total_shmem`.
    pub shmem: Option<u64>,
    /// Inactive page cache: v2 `inactive_file`, v1 `total_inactive_file`.
    pub inactive_file: Option<u64>,
    /// Swap in use: v2 `memory.swap.current`, v1 `total_swap`.
    pub swap: Option<u64>,
    /// OOM kills: v2 `memory.events` `oom_kill`, v1 `memory.oom_control` `oom_kill` (Linux ≥ 4.13).
    pub oom_kills: Option<u64>,
    /// Times usage hit the limit: v2 `memory.events` `max`, v1 `memory.failcnt`.
    pub limit_hits: Option<u64>,
    /// v2 `memory.pressure`.
    pub pressure: Option<Pressure>,
}

impl CgroupSample {
    /// A sample of the cgroup at `path` with no figure read yet.
    pub(crate) fn empty(version: CgroupVersion, via: CgroupVia, path: String) -> Self {
        Self {
            version,
            via,
            path,
            usage: None,
            limit: None,
            working_set: None,
            rss: None,
            cache: None,
            shmem: None,
            inactive_file: None,
            swap: None,
            oom_kills: None,
            limit_hits: None,
            pressure: None,
        }
    }
}

/// What the utilization ratio is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// cgroup working set / cgroup limit: what the OOM killer acts on.
    CgroupWorkingSet,
    /// Group RSS / host `MemTotal`, when no cgroup limit is set.
    HostRss,
}

impl Basis {
    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CgroupWorkingSet => "cgroup_working_set",
            Self::HostRss => "host_rss",
        }
    }
}

/// The memory utilization of the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Utilization {
    /// Which figures are compared.
    pub basis: Basis,
    /// The used bytes on that basis.
    pub used: u64,
    /// The limit on that basis.
    pub limit: u64,
}

impl Utilization {
    /// used / limit.
    pub(crate) fn ratio(&self) -> f64 {
        self.used as f64 / self.limit as f64
    }
}

/// Cost of reading `smaps_rollup` (it can stall a huge target), cumulative since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PssCost {
    /// Time spent reading `smaps_rollup` in the last pass, if it was read.
    #[serde(serialize_with = "crate::seconds::ser_opt_duration")]
    pub last_read: Option<Duration>,
    /// Total time spent reading it since start.
    pub read_seconds_total: f64,
    /// Reads skipped because the process's RSS was above `pss.max_rss`.
    pub skipped_rss: u64,
    /// Reads skipped while backing off after a read exceeded `pss.time_budget`.
    pub skipped_budget: u64,
}

/// Which kind of file an error came from (a bounded label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorSource {
    /// `/proc/meminfo`.
    Meminfo,
    /// `/proc/pressure/memory`.
    Pressure,
    /// The configured pidfile.
    Pidfile,
    /// Listing `/proc` to match process names or command lines.
    ProcScan,
    /// `/proc/PID/stat`.
    Stat,
    /// `/proc/PID/status`.
    Status,
    /// `/proc/PID/smaps_rollup`.
    SmapsRollup,
    /// `/proc/PID/limits`.
    Limits,
    /// `/proc/PID/fd`.
    Fd,
    /// `/proc/PID/cgroup` and finding the cgroup directory.
    Cgroup,
    /// The cgroup's memory usage and limit files.
    CgroupMemory,
    /// The cgroup's `memory.stat`.
    CgroupMemoryStat,
    /// The cgroup's `memory.events` / `memory.oom_control` / `memory.failcnt`.
    CgroupMemoryEvents,
    /// The cgroup's `memory.pressure`.
    CgroupPressure,
    /// `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}` (the fallback socket tables).
    ProcNet,
    /// The `NETLINK_SOCK_DIAG` socket dump (the default socket tables).
    SockDiag,
    /// `/proc/PID/task/TID/status` (context switches per thread).
    TaskStatus,
    /// The cgroup's `pids.current` and `pids.max`.
    CgroupPids,
}

impl ErrorSource {
    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Meminfo => "meminfo",
            Self::Pressure => "pressure",
            Self::Pidfile => "pidfile",
            Self::ProcScan => "proc_scan",
            Self::Stat => "stat",
            Self::Status => "status",
            Self::SmapsRollup => "smaps_rollup",
            Self::Limits => "limits",
            Self::Fd => "fd",
            Self::Cgroup => "cgroup",
            Self::CgroupMemory => "cgroup_memory",
            Self::CgroupMemoryStat => "cgroup_memory_stat",
            Self::CgroupMemoryEvents => "cgroup_memory_events",
            Self::CgroupPressure => "cgroup_pressure",
            Self::ProcNet => "proc_net",
            Self::SockDiag => "sock_diag",
            Self::TaskStatus => "task_status",
            Self::CgroupPids => "cgroup_pids",
        }
    }
}

/// Why a read failed (a bounded label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorReason {
    /// The file is missing: usually the process exited mid-sample.
    NotFound,
    /// Not readable by leakwatch's user (another UID without `CAP_SYS_PTRACE`).
    PermissionDenied,
    /// The content did not parse.
    Malformed,
    /// The file is larger than leakwatch will read.
    TooLarge,
    /// Any other I/O error.
    Io,
}

impl ErrorReason {
    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::PermissionDenied => "permission_denied",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::Io => "io",
        }
    }
}

/// Sample errors since start. Bounded: one entry per (source, reason) pair at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts(BTreeMap<(ErrorSource, ErrorReason), u64>);

impl ErrorCounts {
    /// Counts one error; returns true when it is the first of its kind (worth a log line).
    pub fn record(&mut self, source: ErrorSource, reason: ErrorReason) -> bool {
        let n = self.0.entry((source, reason)).or_insert(0);
        *n += 1;
        *n == 1
    }

    #[cfg(test)]
    /// The count for one pair.
    pub(crate) fn get(&self, source: ErrorSource, reason: ErrorReason) -> u64 {
        self.0.get(&(source, reason)).copied().unwrap_or(0)
    }

    /// Distinct (source, reason) pairs counted.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// All non-zero counts.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorSource, ErrorReason, u64)> + '_ {
        self.0.iter().map(|(&(s, r), &n)| (s, r, n))
    }
}
/// A located cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Hierarchy version.
    pub version: CgroupVersion,
    /// How it was found.
    pub(crate) via: CgroupVia,
    /// The path `/proc/PID/cgroup` gives.
    pub(crate) path: String,
    /// The directory holding the `memory.*` files.
    pub dir: PathBuf,
}
