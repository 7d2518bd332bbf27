//! The sampling loop: every interval, one pass over `/proc` and the cgroup filesystem produces
//! one immutable [`Snapshot`], published on a watch channel. Nothing else reads these files.

pub mod cgroup;
pub mod conns;
pub mod fds;
pub mod held;
pub mod host;
pub mod pids;
pub mod process;
pub mod read;
pub mod settings;
pub mod sock_diag;
pub mod target;
pub mod tasks;
pub mod tier;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::logs::{LogSourceStats, LogSources};
use crate::measure::{Structure, TrimInbox, Trimmed};
use crate::oom::{OomTracker, PassFacts};
use crate::roots::Roots;
use crate::snapshot::{
    oom::PremortemSample, Basis, ErrorCounts, FdKind, FdSample, Freshness, ProcessMemory, PssCost, Snapshot,
    SocketSample, TargetSample, TaskSample, Utilization,
};
use conns::{ConnSampler, ConnSettings};
use process::{PssGate, SampledProcess, SystemFacts};
use target::TargetSpec;
use tasks::{TaskSampler, TaskSettings};
use tier::{TierSettings, Tiers};

/// Default age past which a socket or a child process counts as stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(3600);

/// What the sampler needs to know; built from the validated config.
#[derive(Debug, Clone)]
pub struct SamplerSettings {
    /// Where `/proc` and `/sys` are.
    pub roots: Roots,
    /// How to find the target.
    pub spec: TargetSpec,
    /// The `target` label value.
    pub target_name: String,
    /// At most this many processes of a group are sampled.
    pub max_processes: usize,
    /// Skip PSS for processes above this RSS, bytes.
    pub pss_max_rss: u64,
    /// Back off PSS reads slower than this.
    pub pss_time_budget: Duration,
    /// How often the expensive figures are read.
    pub tiers: TierSettings,
    /// The log sources whose figures go into every snapshot.
    pub logs: Arc<LogSources>,
    /// Socket tables, peer groups and socket ages.
    pub conns: ConnSettings,
    /// Child processes and their ages.
    pub tasks: TaskSettings,
}

/// Owns everything that persists between passes: counters, the PSS back-off and the identity
/// of the target (to tell a restart or a reused pid from a continuation).
#[derive(Debug)]
pub struct Sampler {
    settings: SamplerSettings,
    own_pid: i32,
    facts: SystemFacts,
    /// leakwatch's own process lives in the `/proc` of its own pid namespace, not necessarily
    /// under the configured procfs root (a host's `/proc`, a fixture tree).
    own_roots: Roots,
    own_facts: SystemFacts,
    gate: PssGate,
    pss: PssCost,
    /// Whether the procfs roots report descriptor counts as the `fd` directory's size.
    fd_count_by_size: bool,
    own_fd_count_by_size: bool,
    tiers: Tiers,
    /// The kernel files read every pass, kept open between passes.
    held: held::HeldFiles,
    /// Where the leader's memory and pids controllers were found.
    placement: cgroup::Placement,
    /// The target selector's last process scan.
    scans: target::ScanCache,
    /// The descriptor limits of the target's processes and of leakwatch's own, read on full passes.
    limits: process::KnownLimits,
    own_limits: process::KnownLimits,
    conns: ConnSampler,
    tasks: TaskSampler,
    /// The last socket tables and descendants read, and when: carried between full passes.
    last_sockets: Option<(SocketSample, SystemTime)>,
    last_tasks: Option<(TaskSample, SystemTime)>,
    /// OOM kills (exit watcher, ledger, pre-mortem) and the target's presence.
    oom: OomTracker,
    /// Notified by the OOM exit watcher: the loop runs a pass at once.
    wake: Arc<tokio::sync::Notify>,
    errors: ErrorCounts,
    /// For fixed-pid targets: the pid and start time first seen, so a reused pid is not taken
    /// for the target.
    pinned: Option<(i32, u64)>,
    last_group: Vec<(i32, u64)>,
    changes: u64,
    seq: u64,
    /// While the target has no process: since when, and when that was last logged.
    missing: Option<(Instant, Instant)>,
}

/// A target that stays missing is logged again this often.
pub const MISSING_TARGET_REPEAT: Duration = Duration::from_secs(60);

impl Sampler {
    /// A sampler for the given settings; reads boot time once.
    pub fn new(settings: SamplerSettings) -> Self {
        let facts = SystemFacts::read(&settings.roots);
        let own_roots = Roots::default();
        let own_facts = SystemFacts::read(&own_roots);
        let gate = PssGate::new(settings.pss_max_rss, settings.pss_time_budget);
        let conns = ConnSampler::new(settings.conns.clone(), &own_roots);
        let tasks = TaskSampler::new(settings.tasks);
        let tiers = Tiers::new(settings.tiers, settings.max_processes);
        let wake = Arc::new(tokio::sync::Notify::new());
        let oom = OomTracker::new(&settings.roots, settings.logs.clone(), wake.clone());
        Self {
            fd_count_by_size: fds::is_procfs(settings.roots.procfs()),
            own_fd_count_by_size: fds::is_procfs(own_roots.procfs()),
            tiers,
            held: held::HeldFiles::default(),
            placement: cgroup::Placement::default(),
            scans: target::ScanCache::new(&settings.roots, std::process::id() as i32),
            limits: process::KnownLimits::default(),
            own_limits: process::KnownLimits::default(),
            last_sockets: None,
            last_tasks: None,
            conns,
            tasks,
            oom,
            wake,
            settings,
            own_pid: std::process::id() as i32,
            facts,
            own_roots,
            own_facts,
            gate,
            pss: PssCost::default(),
            errors: ErrorCounts::default(),
            pinned: None,
            last_group: Vec::new(),
            changes: 0,
            seq: 0,
            missing: None,
        }
    }

    /// New settings (a reload), kept from the next pass on. Everything that persists between
    /// passes stays (counters, first-seen maps, the PSS back-off); a different target selector
    /// starts the target's identity afresh, so the switch is not counted as a restart.
    pub fn reconfigure(&mut self, settings: SamplerSettings) {
        if settings.roots != self.settings.roots {
            self.facts = SystemFacts::read(&settings.roots);
            self.fd_count_by_size = fds::is_procfs(settings.roots.procfs());
            self.held.clear();
            self.placement = cgroup::Placement::default();
        }
        if settings.roots != self.settings.roots || settings.spec.describe() != self.settings.spec.describe() {
            self.scans = target::ScanCache::new(&settings.roots, self.own_pid);
        }
        if settings.spec.describe() != self.settings.spec.describe() {
            self.pinned = None;
            self.last_group.clear();
            self.forget_target();
            self.oom.forget();
        }
        self.tiers.set_settings(settings.tiers, settings.max_processes);
        self.oom.reconfigure(&settings.roots, settings.logs.clone());
        self.gate.set_limits(settings.pss_max_rss, settings.pss_time_budget);
        self.conns.set_settings(settings.conns.clone());
        self.tasks.set_settings(settings.tasks);
        self.settings = settings;
    }

    /// Lets the pre-mortem samples carry the memory leak detector's judgement (the alert
    /// engine's latest state).
    pub fn with_trends(mut self, rx: tokio::sync::watch::Receiver<Arc<crate::alert::AlertState>>) -> Self {
        self.oom.set_trends(rx);
        self
    }

    /// Notified when a pass should run at once (the OOM exit watcher saw something).
    pub fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// One full pass.
    pub fn sample(&mut self) -> Snapshot {
        let started = Instant::now();
        let taken_at = SystemTime::now();
        let roots = self.settings.roots.clone();
        let host = host::sample(&roots, &mut self.held, &mut self.errors);

        let pass = self.tiers.begin(taken_at);
        let mut pids = target::candidates(
            &self.settings.spec,
            &roots,
            self.own_pid,
            &mut self.scans,
            pass.full,
            &mut self.held,
            &mut self.errors,
        );
        let matched = pids.len();
        pids.truncate(self.settings.max_processes);
        let limits = (&mut self.limits, pass.full);
        let mut group = process::sample_group(
            &roots,
            &pids,
            &self.facts,
            self.fd_count_by_size,
            limits,
            &mut self.held,
            &mut self.errors,
        );
        self.drop_reused_pid(&mut group);
        let changed = self.count_change(&group);
        let stamps = self.tiers.processes(pass, &roots, &mut group, &mut self.gate, &mut self.pss, &mut self.errors);

        let own_process = match self.settings.spec {
            TargetSpec::Own => group.first().map(|p| p.memory),
            _ => process::sample_group(
                &self.own_roots,
                &[self.own_pid],
                &self.own_facts,
                self.own_fd_count_by_size,
                (&mut self.own_limits, pass.full),
                &mut self.held,
                &mut self.errors,
            )
            .first()
            .map(|p| p.memory),
        };

        let memory = group.iter().map(|p| p.memory).reduce(|mut acc, m| {
            acc.accumulate(&m);
            acc
        });
        let (located, pids) = match group.first() {
            Some(leader) => match cgroup::memberships(&roots, leader.id.pid, &mut self.held, &mut self.errors) {
                Some(members) => {
                    self.placement.sample(&roots, leader.id.pid, &members, pass.full, &mut self.held, &mut self.errors)
                }
                None => (None, None),
            },
            None => (None, None),
        };
        let (sockets, fds, tasks) = match group.first() {
            Some(leader) => {
                let mut inodes: Vec<u64> =
                    group.iter().filter_map(|p| p.fds.as_ref()).flat_map(|f| f.socket_inodes.iter().copied()).collect();
                inodes.sort_unstable();
                inodes.dedup();
                let dump = self.tiers.dump_sockets(pass, &inodes);
                let sockets = match self.last_sockets.take() {
                    Some(last) if !dump => last,
                    _ => (self.conns.sample(&roots, leader.id.pid, &inodes, &mut self.errors), taken_at),
                };
                let rescan = pass.full || changed || self.tasks.cheap();
                let tasks = match self.last_tasks.take() {
                    Some(last) if !rescan => last,
                    _ => {
                        let pids: Vec<i32> = group.iter().map(|p| p.id.pid).collect();
                        (self.tasks.sample(&roots, &pids, &self.facts, &mut self.held, &mut self.errors), taken_at)
                    }
                };
                self.last_sockets = Some(sockets.clone());
                self.last_tasks = Some(tasks.clone());
                (Some(sockets), Some(fd_sample(&group)), Some(tasks))
            }
            None => {
                self.forget_target();
                (None, None, None)
            }
        };
        let age = |at: Option<SystemTime>| at.map(|at| taken_at.duration_since(at).unwrap_or_default());
        let freshness = Freshness {
            fds: age(stamps.fds),
            pss: age(stamps.pss),
            sockets: age(sockets.as_ref().map(|s| s.1)),
            tasks: age(tasks.as_ref().map(|t| t.1)),
            expensive_every: self.settings.tiers.expensive_every,
        };
        let (sockets, tasks) = (sockets.map(|s| s.0), tasks.map(|t| t.0));
        let utilization =
            utilization(located.as_ref().and_then(|(_, c)| c.limit.zip(c.working_set)), memory.as_ref(), &host);
        let processes: Vec<_> = group.into_iter().map(|p| p.id).collect();
        let now = crate::seconds::unix(taken_at);
        let oom = self.oom.pass(PassFacts {
            now,
            target: &self.settings.target_name,
            processes: &processes,
            cgroup: located.as_ref().map(|(l, c)| (l, c)),
            sample: premortem_sample(
                now,
                memory.as_ref(),
                located.as_ref().map(|(_, c)| c),
                utilization.as_ref(),
                fds.as_ref(),
                sockets.as_ref(),
                tasks.as_ref(),
                processes.len(),
            ),
        });
        let cgroup = located.map(|(_, c)| c);
        self.log_missing(oom.up);

        self.held.end_pass();
        self.seq += 1;
        let logs = self.settings.logs.stats();
        let structures = self.structures(&logs);
        Snapshot {
            seq: self.seq,
            taken_at,
            duration: started.elapsed(),
            host,
            target: TargetSample {
                name: self.settings.target_name.clone(),
                processes,
                matched,
                memory,
                cgroup,
                utilization,
                pss: self.pss,
                changes: self.changes,
                sockets,
                fds,
                tasks,
                pids,
                freshness,
            },
            own_process,
            errors: self.errors.clone(),
            logs,
            structures,
            oom,
        }
    }

    /// The log buffers' and the sampler's own structures.
    fn structures(&self, logs: &[LogSourceStats]) -> Vec<Structure> {
        let mut out: Vec<Structure> = logs.iter().flat_map(LogSourceStats::structures).collect();
        out.extend(self.conns.structures());
        out.push(self.tasks.structure());
        out.push(self.tiers.structure());
        out.push(self.scans.structure());
        out.push(self.held.structure());
        out.extend(self.oom.structures());
        out.push(Structure::counted("sample_errors", self.errors.len(), None));
        out
    }

    /// Trims the sampler's structures (called between passes).
    pub fn trim(&mut self) -> Vec<Trimmed> {
        let mut out = self.conns.trim();
        out.extend(self.tasks.trim());
        out.extend(self.oom.trim());
        out
    }

    /// Logs a target without a process: at once, then every [`MISSING_TARGET_REPEAT`] while it
    /// lasts (a target that was up and left is logged by the OOM tracker as gone).
    fn log_missing(&mut self, up: bool) {
        let now = Instant::now();
        let target = &self.settings.target_name;
        match self.missing {
            // A wrapped command that exited is logged (and ends leakwatch) in `lifecycle`.
            _ if up || matches!(self.settings.spec, TargetSpec::Child(_)) => self.missing = None,
            None => {
                self.missing = Some((now, now));
                if self.last_group.is_empty() {
                    let watching = self.settings.spec.describe();
                    tracing::warn!(%target, "target not found: no process matches {watching}; looking again every pass");
                }
            }
            Some((since, logged)) if now.duration_since(logged) >= MISSING_TARGET_REPEAT => {
                let watching = self.settings.spec.describe();
                let gone = humantime::format_duration(Duration::from_secs(now.duration_since(since).as_secs()));
                tracing::warn!(%target, "target still not found after {gone}: no process matches {watching}");
                self.missing = Some((since, now));
            }
            Some(_) => {}
        }
    }

    /// A fixed pid (`--pid`, the wrapped child, the pid in a pidfile) is the target only while its
    /// start time is the one first seen: a new process that reuses the pid is someone else.
    fn drop_reused_pid(&mut self, group: &mut Vec<SampledProcess>) {
        if !matches!(self.settings.spec, TargetSpec::Pid(_) | TargetSpec::Child(_) | TargetSpec::Pidfile(_)) {
            return;
        }
        let Some(id) = group.first().map(|p| &p.id) else { return };
        match self.pinned {
            Some((pid, start)) if pid == id.pid && start != id.start_ticks => {
                tracing::warn!(pid, "pid was reused by another process; the target is gone");
                group.clear();
            }
            Some((pid, _)) if pid == id.pid => {}
            _ => self.pinned = Some((id.pid, id.start_ticks)),
        }
    }

    /// Counts a change of the group's processes; returns whether the group differs from the
    /// last pass's.
    fn count_change(&mut self, group: &[SampledProcess]) -> bool {
        if group.is_empty() {
            return false;
        }
        let current: Vec<(i32, u64)> = group.iter().map(|p| (p.id.pid, p.id.start_ticks)).collect();
        if current == self.last_group {
            return false;
        }
        if !self.last_group.is_empty() {
            self.changes += 1;
            tracing::info!(processes = current.len(), "target changed (restart or new processes)");
        }
        self.last_group = current;
        true
    }

    /// Drops what is carried between passes about the target's sockets, children and
    /// descriptors (it is gone, or another one is watched).
    fn forget_target(&mut self) {
        self.conns.forget();
        self.tasks.forget();
        self.tiers.forget();
        self.last_sockets = None;
        self.last_tasks = None;
    }
}

/// Descriptors by kind over the group (from the walks), and the worst process's open ÷ soft
/// limit (from this pass's count).
fn fd_sample(group: &[SampledProcess]) -> FdSample {
    let mut out = FdSample::default();
    for p in group {
        if let Some(scan) = &p.fds {
            for (kind, n) in FdKind::ALL.iter().zip(scan.by_kind) {
                *out.by_kind.entry(*kind).or_insert(0) += n;
            }
        }
        if let (Some(open), Some(limit)) = (p.memory.open_fds, p.memory.max_fds.filter(|l| *l > 0)) {
            let ratio = open as f64 / limit as f64;
            out.utilization = Some(out.utilization.map_or(ratio, |r: f64| r.max(ratio)));
        }
    }
    out
}

/// One pass's key figures for the OOM pre-mortem.
#[allow(clippy::too_many_arguments)]
fn premortem_sample(
    now: f64,
    memory: Option<&ProcessMemory>,
    cgroup: Option<&crate::snapshot::CgroupSample>,
    utilization: Option<&Utilization>,
    fds: Option<&FdSample>,
    sockets: Option<&crate::snapshot::SocketSample>,
    tasks: Option<&crate::snapshot::TaskSample>,
    processes: usize,
) -> PremortemSample {
    PremortemSample {
        at: now,
        rss_bytes: memory.and_then(|m| m.rss),
        cgroup_usage_bytes: cgroup.and_then(|c| c.usage),
        cgroup_working_set_bytes: cgroup.and_then(|c| c.working_set),
        cgroup_limit_bytes: cgroup.and_then(|c| c.limit),
        utilization_ratio: utilization.map(Utilization::ratio),
        basis: utilization.map(|u| u.basis.as_str()),
        trend_bytes_per_second: None,
        seconds_to_limit: None,
        fds: fds.map(|f| f.by_kind.values().sum()),
        connections: sockets.map(|s| s.held.values().sum()),
        tasks: tasks.map(|t| processes as u64 + t.descendants.values().sum::<u64>()),
    }
}

/// The basis the OOM killer acts on: cgroup working set against its limit when a limit is set,
/// otherwise the group's RSS against host memory.
fn utilization(
    cgroup_limit_and_ws: Option<(u64, u64)>,
    memory: Option<&ProcessMemory>,
    host: &crate::snapshot::HostSample,
) -> Option<Utilization> {
    if let Some((limit, used)) = cgroup_limit_and_ws.filter(|(limit, _)| *limit > 0) {
        return Some(Utilization { basis: Basis::CgroupWorkingSet, used, limit });
    }
    let total = host.memory.map(|m| m.total).filter(|t| *t > 0)?;
    Some(Utilization { basis: Basis::HostRss, used: memory?.rss?, limit: total })
}

/// What the sampling loop runs with: the sampler's settings and the interval. A reload sends a
/// new one on the loop's watch channel.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// The sampler's settings.
    pub settings: SamplerSettings,
    /// Time between passes.
    pub interval: Duration,
}

fn ticker(period: Duration, first: tokio::time::Instant) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick
}

/// Runs passes on the configured interval until cancelled, publishing each snapshot. File reads
/// happen on the blocking pool so a stalled `/proc` read never blocks HTTP. A new
/// [`SamplerConfig`] on `config` (a reload) applies from the next pass, which starts at once.
/// Trim requests from `trims` are answered between passes (the sampler's structures are never
/// touched during one).
pub async fn run(
    mut sampler: Sampler,
    mut config: watch::Receiver<Arc<SamplerConfig>>,
    tx: watch::Sender<Arc<Snapshot>>,
    mut trims: TrimInbox,
    token: CancellationToken,
) {
    let wake = sampler.wake();
    let mut interval = config.borrow_and_update().interval;
    let mut tick = ticker(interval, tokio::time::Instant::now());
    let mut open = true;
    loop {
        let mut apply: Option<Arc<SamplerConfig>> = None;
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {}
            // The OOM exit watcher saw an exit or a counter change: count it now.
            _ = wake.notified() => {}
            changed = config.changed(), if open => {
                if changed.is_err() {
                    open = false;
                    continue;
                }
                let next = config.borrow_and_update().clone();
                // This pass runs now; the next one a full interval later.
                if next.interval != interval {
                    interval = next.interval;
                    tick = ticker(interval, tokio::time::Instant::now() + interval);
                } else {
                    tick.reset();
                }
                apply = Some(next);
            }
            Some(reply) = trims.recv() => {
                // Shrinking a large map copies it: on the blocking pool, like a pass.
                let trim = tokio::task::spawn_blocking(move || {
                    let trimmed = sampler.trim();
                    (sampler, trimmed)
                });
                match trim.await {
                    Ok((s, trimmed)) => {
                        sampler = s;
                        let _ = reply.send(trimmed);
                    }
                    Err(e) => {
                        tracing::error!("trimming the sampler failed: {e}; sampling stops");
                        break;
                    }
                }
                continue;
            }
        }
        let pass = tokio::task::spawn_blocking(move || {
            if let Some(next) = apply {
                sampler.reconfigure(next.settings.clone());
            }
            let snapshot = sampler.sample();
            (sampler, snapshot)
        });
        match pass.await {
            Ok((s, snapshot)) => {
                sampler = s;
                tx.send_replace(Arc::new(snapshot));
            }
            Err(e) => {
                tracing::error!("sampling pass failed: {e}; sampling stops");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a fixture tree in a temp dir, removed on drop.
    struct FixtureCopy(std::path::PathBuf);

    impl Drop for FixtureCopy {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn copy_fixture(name: &str) -> FixtureCopy {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        let to = std::env::temp_dir().join(format!("leakwatch-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&to);
        let status = std::process::Command::new("cp").arg("-a").arg(&from).arg(&to).status().unwrap();
        assert!(status.success());
        FixtureCopy(to)
    }

    fn sampler(root: &std::path::Path) -> Sampler {
        Sampler::new(SamplerSettings {
            roots: Roots::new(root.join("proc"), root.join("sys")),
            spec: TargetSpec::Pid(4242),
            target_name: "app".into(),
            max_processes: 8,
            pss_max_rss: u64::MAX,
            pss_time_budget: Duration::from_secs(1),
            tiers: Default::default(),
            logs: Default::default(),
            conns: Default::default(),
            tasks: Default::default(),
        })
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_the_target() {
        let tree = copy_fixture("cgroup-v2-limited");
        let mut sampler = sampler(&tree.0);
        let first = sampler.sample();
        assert_eq!(first.target.processes.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![4242]);
        assert!(first.target.memory.is_some());

        // Another process now holds pid 4242: same pid, a later start time (field 22).
        let stat_path = tree.0.join("proc/4242/stat");
        let stat = std::fs::read_to_string(&stat_path).unwrap();
        let (head, tail) = stat.rsplit_once(") ").unwrap();
        let mut fields: Vec<&str> = tail.split(' ').collect();
        assert_eq!(fields[19], "461031", "field 22 is the start time");
        fields[19] = "999999";
        std::fs::write(&stat_path, format!("{head}) {}", fields.join(" "))).unwrap();

        let second = sampler.sample();
        assert!(second.target.processes.is_empty(), "the new process is someone else: {:?}", second.target.processes);
        assert!(second.target.memory.is_none(), "no figures of the impostor are reported as the target's");
    }

    #[tokio::test]
    async fn a_new_config_takes_effect_in_a_pass_that_starts_at_once() {
        let tree = copy_fixture("cgroup-v2-limited");
        let first = sampler(&tree.0);
        let settings = first.settings.clone();
        let (config_tx, config_rx) =
            watch::channel(Arc::new(SamplerConfig { settings: settings.clone(), interval: Duration::from_secs(3600) }));
        let (tx, mut rx) = watch::channel(Arc::new(Snapshot::empty("app")));
        let token = CancellationToken::new();
        let (_trims, inbox) = crate::measure::trim_channel();
        let task = tokio::spawn(run(first, config_rx, tx, inbox, token.clone()));
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().target.name, "app", "the first pass runs at once");
        let renamed = SamplerSettings { target_name: "renamed".into(), max_processes: 1, ..settings };
        config_tx.send_replace(Arc::new(SamplerConfig { settings: renamed, interval: Duration::from_secs(1800) }));
        // Without the update the next pass would be an hour away.
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.expect("a pass at once").unwrap();
        let s = rx.borrow_and_update().clone();
        assert_eq!((s.target.name.as_str(), s.seq), ("renamed", 2), "the new settings, the same sampler");
        token.cancel();
        task.await.unwrap();
    }

    /// A bash that connects to `port` when a line arrives on its stdin and says so on stdout.
    fn connector(port: u16) -> std::process::Child {
        use std::process::{Command, Stdio};
        let script = format!("read a; exec 5<>/dev/tcp/127.0.0.1/{port}; echo connected; sleep 60");
        Command::new("bash").args(["-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap()
    }

    fn held_tcp(s: &Snapshot) -> u64 {
        let sockets = s.target.sockets.as_ref().expect("sockets sampled");
        sockets.held.iter().filter(|((p, _), _)| p.is_tcp()).map(|(_, n)| n).sum()
    }

    #[test]
    fn a_new_socket_is_walked_and_dumped_in_the_same_pass_and_carried_figures_age() {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut child = connector(listener.local_addr().unwrap().port());
        let mut sampler = Sampler::new(SamplerSettings {
            roots: Roots::default(),
            spec: TargetSpec::Pid(child.id() as i32),
            target_name: "app".into(),
            max_processes: 8,
            pss_max_rss: u64::MAX,
            pss_time_budget: Duration::from_secs(1),
            // No full pass after the first: only a cheap signal can bring a re-read.
            tiers: TierSettings { expensive_every: 1000, pss_rss_change: 0.05 },
            logs: Default::default(),
            conns: Default::default(),
            tasks: Default::default(),
        });
        let first = sampler.sample();
        let fresh = first.target.freshness;
        assert_eq!(
            (fresh.fds, fresh.sockets, fresh.tasks),
            (Some(Duration::ZERO), Some(Duration::ZERO), Some(Duration::ZERO))
        );
        assert_eq!(held_tcp(&first), 0);
        std::thread::sleep(Duration::from_millis(50));
        let second = sampler.sample();
        let fresh = second.target.freshness;
        assert!(fresh.fds.is_some_and(|a| a >= Duration::from_millis(50)), "the walk is carried: {fresh:?}");
        assert!(fresh.sockets.is_some_and(|a| a >= Duration::from_millis(50)), "the dump is carried: {fresh:?}");
        assert_eq!(second.target.fds, first.target.fds);

        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "connected");
        let third = sampler.sample();
        let _ = child.kill();
        let _ = child.wait();
        let fresh = third.target.freshness;
        assert_eq!((fresh.fds, fresh.sockets), (Some(Duration::ZERO), Some(Duration::ZERO)), "re-read in this pass");
        assert_eq!(held_tcp(&third), 1, "the new connection is counted in the pass that saw the count change");
        // That the ages are exported is in the golden expositions (tests/fixtures/golden/).
    }

    #[test]
    fn every_carried_figure_is_at_most_one_cadence_old() {
        let tree = copy_fixture("cgroup-v2-limited");
        let mut settings = sampler(&tree.0).settings;
        settings.tiers = TierSettings { expensive_every: 3, pss_rss_change: 0.05 };
        let mut sampler = Sampler::new(settings);
        let mut starts: Vec<SystemTime> = Vec::new();
        for pass in 0..7 {
            let s = sampler.sample();
            starts.push(s.taken_at);
            let last_full = starts[pass - pass % 3];
            let bound = s.taken_at.duration_since(last_full).unwrap();
            for (figures, age) in s.target.freshness.groups() {
                let age = age.unwrap_or_else(|| panic!("{figures} never read"));
                assert!(age <= bound, "pass {pass}: {figures} is {age:?} old, the last full pass {bound:?} ago");
                if pass % 3 == 0 {
                    assert_eq!(age, Duration::ZERO, "pass {pass} is full: {figures}");
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
