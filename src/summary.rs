//! The `summary` section of `GET /status`: what an operator reads first, typed once and shared
//! by the server (built here from the snapshot, the alert state, the structures and the cleanup
//! statistics) and `leakwatch status` (which reads it back and prints it). The other sections of
//! the document keep the full figures.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::alert::engine::{AlertState, State};
use crate::cleanup::CleanupStats;
use crate::measure::Structure;
use crate::snapshot::{Snapshot, SockState};

/// The summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// leakwatch itself.
    pub(crate) leakwatch: Own,
    /// The snapshot summarized.
    pub(crate) snapshot: SnapshotInfo,
    /// The target and whether it was found.
    pub(crate) target: Target,
    /// Firing alerts, then pending ones (each with the detector's time to the limit, if any).
    pub(crate) alerts: Vec<Alert>,
    /// Resources the leak detector finds growing.
    pub(crate) growing: Vec<Growth>,
    /// Memory against its limit.
    pub(crate) memory: Memory,
    /// Open descriptors against their limit (no process: `None`).
    pub(crate) fds: Option<Fds>,
    /// Held sockets by state (no process: `None`).
    pub(crate) connections: Option<Connections>,
    /// Child processes (no process: `None`).
    pub(crate) tasks: Option<Tasks>,
    /// OOM kills seen by leakwatch.
    pub(crate) oom: Oom,
    /// Every log source.
    pub(crate) logs: Vec<LogSource>,
    /// Every internal structure.
    pub(crate) structures: Vec<StructureRow>,
    /// The cleanup task; `None` when it does not run.
    pub(crate) cleanup: Option<CleanupSummary>,
}

/// leakwatch's own figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Own {
    /// The version.
    pub(crate) version: String,
    /// leakwatch's pid.
    pub(crate) pid: u32,
    /// Seconds since it started.
    pub(crate) uptime_seconds: Option<f64>,
    /// Its resident set size, bytes.
    pub(crate) rss_bytes: Option<u64>,
}

/// Which pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotInfo {
    /// 0 before the first pass.
    pub(crate) seq: u64,
    /// When it was taken (Unix seconds).
    pub(crate) taken_at: f64,
    /// How long it took, seconds.
    pub(crate) duration_seconds: f64,
}

/// Whether the target has a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetState {
    /// No pass yet.
    #[default]
    Starting,
    /// At least one process matched.
    Up,
    /// Nothing matched the selector (the pid does not exist, the pidfile is missing, ...).
    NotFound,
}

/// The target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Target {
    /// The `target` label value.
    pub(crate) name: String,
    /// Up or not found.
    pub(crate) state: TargetState,
    /// The processes sampled: (pid, comm).
    pub(crate) processes: Vec<(i32, String)>,
    /// How many matched before the cap.
    pub(crate) matched: usize,
}

/// One pending or firing alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Alert {
    /// Alert name.
    pub(crate) alert: String,
    /// `firing` or `pending`.
    pub(crate) state: String,
    /// Severity.
    pub(crate) severity: String,
    /// The value judged (a ratio; OOM kills for the OOM rule).
    pub(crate) value: f64,
    /// The level it is compared with.
    pub(crate) level: f64,
    /// The detector's seconds until the limit (prediction alerts).
    pub(crate) seconds_to_limit: Option<f64>,
    /// Since when it is pending or firing (Unix seconds).
    pub(crate) active_since: Option<f64>,
    /// The summary text.
    pub(crate) summary: String,
}

/// A resource the leak detector finds growing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Growth {
    /// `memory`, `fds` or `pids`.
    pub(crate) resource: String,
    /// Growth per second.
    pub(crate) slope_per_second: Option<f64>,
    /// Seconds until the limit (projected from the peaks).
    pub(crate) seconds_to_limit: Option<f64>,
}

/// Memory against its limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Memory {
    /// Resident set size of the group, bytes.
    pub(crate) rss: Option<u64>,
    /// The cgroup's working set, bytes.
    pub(crate) cgroup_working_set: Option<u64>,
    /// The cgroup's limit; `None` when unlimited or unknown.
    pub(crate) cgroup_limit: Option<u64>,
    /// The ratio alerting uses: used bytes, limit bytes and the basis.
    pub(crate) utilization: Option<(u64, u64, String)>,
}

/// Open descriptors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fds {
    /// Open descriptors of the group.
    pub(crate) open: Option<u64>,
    /// The soft limit (`RLIMIT_NOFILE`) of the group leader.
    pub(crate) limit: Option<u64>,
    /// The worst process's open ÷ limit.
    pub(crate) utilization: Option<f64>,
}

/// Held sockets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Connections {
    /// Held sockets by state, summed over the tables.
    pub(crate) by_state: BTreeMap<String, u64>,
    /// Of those, in `close_wait` (the peer closed, the app did not).
    pub(crate) close_wait: u64,
    /// Held sockets older than `stale_after`.
    pub(crate) stale: u64,
    /// The configured peer groups: (name, connections, limit).
    pub(crate) peers: Vec<(String, u64, u64)>,
}

/// Child processes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tasks {
    /// Direct children.
    pub(crate) children: u64,
    /// Every descendant.
    pub(crate) descendants: u64,
    /// Descendants older than `stale_after`.
    pub(crate) stale: u64,
    /// Threads of the group.
    pub(crate) threads: Option<u64>,
    /// `pids.current` and `pids.max` of the cgroup.
    pub(crate) pids: Option<(Option<u64>, Option<u64>)>,
}

/// OOM kills.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Oom {
    /// Kills leakwatch saw.
    pub(crate) kills_total: u64,
    /// When the last one happened (Unix seconds).
    pub(crate) last_kill_at: Option<f64>,
}

/// A log source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LogSource {
    /// Its name.
    pub(crate) name: String,
    /// `file`, `stdout` or `stderr`.
    pub(crate) kind: String,
    /// The configured path or glob of a file source.
    pub(crate) pattern: Option<String>,
    /// Lines held, and the cap.
    pub(crate) lines: (usize, usize),
    /// Text bytes held, and the cap.
    pub(crate) bytes: (usize, usize),
    /// Subscribers now, and the cap.
    pub(crate) subscribers: (usize, usize),
    /// Lines stored since start.
    pub(crate) lines_total: u64,
    /// Failed reads since start (a missing file counts once per attempt).
    pub(crate) read_errors: u64,
    /// Why the file is refused or not read now (e.g. it does not exist).
    pub(crate) problem: Option<String>,
}

/// An internal structure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StructureRow {
    /// What it is, and its log source.
    pub(crate) name: String,
    /// Entries held now.
    pub(crate) len: u64,
    /// The cap.
    pub(crate) max: Option<u64>,
    /// Room in the allocation.
    pub(crate) capacity: Option<u64>,
    /// Bytes allocated.
    pub(crate) bytes: Option<u64>,
}

/// The cleanup task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CleanupSummary {
    /// Seconds between cleanups.
    pub(crate) interval_seconds: f64,
    /// leakwatch's RSS that starts one, bytes.
    pub(crate) memory_threshold: u64,
    /// Cleanups by trigger: interval, memory, admin.
    pub(crate) performed: (u64, u64, u64),
    /// Bytes freed since start.
    pub(crate) freed_bytes_total: u64,
    /// The last one.
    pub(crate) last: Option<LastCleanup>,
}

/// The last cleanup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LastCleanup {
    /// `interval`, `memory` or `admin`.
    pub(crate) trigger: String,
    /// When (Unix seconds).
    pub(crate) at: f64,
    /// Bytes freed.
    pub(crate) freed_bytes: u64,
    /// Structures trimmed.
    pub(crate) structures: usize,
    /// leakwatch's RSS before and after, bytes.
    pub(crate) rss: (Option<u64>, Option<u64>),
}

impl Summary {
    /// The summary of what the server holds now.
    pub(crate) fn of(
        version: &str,
        snapshot: &Snapshot,
        alerts: &AlertState,
        structures: &[Structure],
        cleanup: Option<&CleanupStats>,
    ) -> Self {
        let t = &snapshot.target;
        let state = match (snapshot.seq, snapshot.oom.up) {
            (0, _) => TargetState::Starting,
            (_, true) => TargetState::Up,
            (_, false) => TargetState::NotFound,
        };
        let own = snapshot.own_process.as_ref();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Self {
            leakwatch: Own {
                version: version.to_owned(),
                pid: std::process::id(),
                uptime_seconds: own.and_then(|p| p.start_time_seconds).map(|s| (now - s).max(0.0)),
                rss_bytes: own.and_then(|p| p.rss),
            },
            snapshot: SnapshotInfo {
                seq: snapshot.seq,
                taken_at: snapshot.taken_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
                duration_seconds: snapshot.duration.as_secs_f64(),
            },
            target: Target {
                name: t.name.clone(),
                state,
                processes: t.processes.iter().map(|p| (p.pid, p.comm.clone())).collect(),
                matched: t.matched,
            },
            alerts: active_alerts(alerts),
            growing: alerts
                .trends
                .iter()
                .filter(|g| g.trend.growing)
                .map(|g| Growth {
                    resource: g.resource.to_owned(),
                    slope_per_second: g.trend.slope_per_second,
                    seconds_to_limit: g.trend.seconds_to_limit,
                })
                .collect(),
            memory: Memory {
                rss: t.memory.and_then(|m| m.rss),
                cgroup_working_set: t.cgroup.as_ref().and_then(|c| c.working_set),
                cgroup_limit: t.cgroup.as_ref().and_then(|c| c.limit),
                utilization: t.utilization.map(|u| (u.used, u.limit, u.basis.as_str().to_owned())),
            },
            fds: t.fds.as_ref().map(|f| Fds {
                open: t.memory.and_then(|m| m.open_fds),
                limit: t.memory.and_then(|m| m.max_fds),
                utilization: f.utilization,
            }),
            connections: t.sockets.as_ref().map(|s| {
                let mut by_state = BTreeMap::new();
                for (&(_, state), &n) in &s.held {
                    *by_state.entry(state.as_str().to_owned()).or_insert(0) += n;
                }
                Connections {
                    close_wait: s.held.iter().filter(|((_, st), _)| *st == SockState::CloseWait).map(|(_, n)| n).sum(),
                    by_state,
                    stale: s.stale,
                    peers: s.peers.iter().map(|p| (p.name.clone(), p.connections, p.limit)).collect(),
                }
            }),
            tasks: t.tasks.as_ref().map(|k| Tasks {
                children: k.children,
                descendants: k.descendants.values().sum(),
                stale: k.stale,
                threads: t.memory.and_then(|m| m.threads),
                pids: t.pids.map(|p| (p.current, p.max)),
            }),
            oom: Oom { kills_total: snapshot.oom.kills_total, last_kill_at: snapshot.oom.last_kill_at },
            logs: snapshot
                .logs
                .iter()
                .map(|l| LogSource {
                    name: l.name.clone(),
                    kind: l.kind.to_owned(),
                    pattern: l.pattern.clone(),
                    lines: (l.ring.lines, l.limits.max_lines),
                    bytes: (l.ring.bytes, l.limits.max_bytes),
                    subscribers: (l.ring.subscribers, l.limits.max_subscribers),
                    lines_total: l.ring.lines_total,
                    read_errors: l.read_errors,
                    problem: l.problem.clone().or_else(|| l.refused.clone()),
                })
                .collect(),
            structures: structures
                .iter()
                .map(|s| StructureRow {
                    name: match &s.source {
                        Some(source) => format!("{} {source}", s.name),
                        None => s.name.to_owned(),
                    },
                    len: s.len,
                    max: s.max,
                    capacity: s.capacity,
                    bytes: s.bytes,
                })
                .collect(),
            cleanup: cleanup.map(|c| CleanupSummary {
                interval_seconds: c.settings.interval.as_secs_f64(),
                memory_threshold: c.settings.memory_threshold,
                performed: (c.performed.interval, c.performed.memory, c.performed.admin),
                freed_bytes_total: c.freed_bytes_total,
                last: c.last.as_ref().map(|r| LastCleanup {
                    trigger: r.trigger.as_str().to_owned(),
                    at: r.at,
                    freed_bytes: r.freed_bytes,
                    structures: r.structures.len(),
                    rss: (r.rss_before_bytes, r.rss_after_bytes),
                }),
            }),
        }
    }
}

/// Firing alerts first, then pending ones; within each, the most severe first.
fn active_alerts(alerts: &AlertState) -> Vec<Alert> {
    let mut active: Vec<_> =
        alerts.alerts.iter().filter(|a| matches!(a.state, State::Firing | State::Pending)).collect();
    active.sort_by_key(|a| (a.state != State::Firing, std::cmp::Reverse(a.severity), a.alert.clone()));
    active
        .into_iter()
        .map(|a| Alert {
            alert: a.alert.clone(),
            state: a.state.as_str().to_owned(),
            severity: a.severity.as_str().to_owned(),
            value: a.value,
            level: a.level,
            seconds_to_limit: a.seconds_to_limit,
            active_since: a.active_since,
            summary: a.summary.clone(),
        })
        .collect()
}
