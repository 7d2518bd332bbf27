//! OOM kills that are never lost, and what preceded them.
//!
//! ```text
//!  watch.rs  thread: pidfd per target process ─┐ (counter file opened in advance, read at exit)
//!            inotify on v2 memory.events ──────┼─► Event ─► wakes the sampling loop (a pass at once)
//!  sampler pass: the cgroup counter as read ───┤
//!                                              ▼
//!  OomTracker (owned by the Sampler) ─► ledger.rs: one count per kill (dedupe by cgroup identity)
//!                                    ─► report.rs: pre-mortem ring ─► OomReport (newest few)
//!                                    ─► OomStatus in every Snapshot (/metrics, /oom, /status)
//! ```
//!
//! The kernel's own counter lives in the target's cgroup, which a container restart replaces:
//! leakwatch's count lives for the sidecar's lifetime instead.

pub(crate) mod ledger;
pub(crate) mod report;
pub(crate) mod watch;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::alert::AlertState;
use crate::logs::LogSources;
use crate::measure::Structure;
use crate::roots::Roots;
use crate::snapshot::oom::{Detection, OomReport, OomStatus, PremortemSample, SeenBy};
use crate::snapshot::{CgroupSample, Location, ProcessIdentity};
use ledger::{CgroupKey, Ledger};
use report::{Premortem, MAX_REPORTS};
use watch::{Event, WatchSet, WatchedCgroup, Watcher};

/// From this utilization on, the watcher reads the counter every [`watch::NEAR_LIMIT_POLL`].
pub(crate) const NEAR_LIMIT_RATIO: f64 = 0.9;

/// What one pass found, for the tracker.
pub(crate) struct PassFacts<'a> {
    /// When the pass started (Unix seconds).
    pub(crate) now: f64,
    /// The `target` label value.
    pub(crate) target: &'a str,
    /// The group's processes.
    pub(crate) processes: &'a [ProcessIdentity],
    /// The leader's cgroup, located and read.
    pub(crate) cgroup: Option<(&'a Location, &'a CgroupSample)>,
    /// The pass's key figures (without the trend, which the tracker adds).
    pub(crate) sample: PremortemSample,
}

/// Owns the ledger, the pre-mortem, the exit watcher and the target's up/down state.
pub(crate) struct OomTracker {
    roots: Roots,
    /// pidfds work only on pids of leakwatch's own pid namespace: the configured procfs must be
    /// leakwatch's own.
    pidfds: bool,
    ledger: Ledger,
    premortem: Premortem,
    watcher: Option<Watcher>,
    trends: Option<tokio::sync::watch::Receiver<Arc<AlertState>>>,
    logs: Arc<LogSources>,
    target: String,
    up: Option<bool>,
    last_kill_at: Option<f64>,
    /// The cgroup last located: its key and path.
    cgroup: Option<(CgroupKey, String)>,
    pids: Vec<i32>,
    /// Host `oom_kill` as read after the last counted kill: an inference needs a rise beyond it.
    vmstat_used: u64,
}

impl std::fmt::Debug for OomTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OomTracker").field("target", &self.target).field("kills", &self.ledger.total()).finish()
    }
}

impl OomTracker {
    /// A tracker for targets under `roots`; `wake` is notified when the watcher saw something
    /// (the sampling loop then runs a pass at once).
    pub(crate) fn new(roots: &Roots, logs: Arc<LogSources>, wake: Arc<Notify>) -> Self {
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake.notify_one());
        let watcher = Watcher::start(notify)
            .inspect_err(|e| tracing::warn!("cannot start the OOM exit watcher: {e}; kills are seen by sampling only"))
            .ok();
        Self {
            roots: roots.clone(),
            pidfds: own_procfs(roots),
            ledger: Ledger::default(),
            premortem: Premortem::default(),
            watcher,
            trends: None,
            logs,
            target: String::new(),
            up: None,
            last_kill_at: None,
            cgroup: None,
            pids: Vec::new(),
            vmstat_used: 0,
        }
    }

    /// Reads the memory leak detector's judgement from the alert engine's state for the
    /// pre-mortem samples.
    pub(crate) fn set_trends(&mut self, rx: tokio::sync::watch::Receiver<Arc<AlertState>>) {
        self.trends = Some(rx);
    }

    /// New roots or log sources (a reload).
    pub(crate) fn reconfigure(&mut self, roots: &Roots, logs: Arc<LogSources>) {
        self.pidfds = own_procfs(roots);
        self.roots = roots.clone();
        self.logs = logs;
    }

    /// A different target selector: the ledger starts afresh (its first cgroup is a baseline).
    pub(crate) fn forget(&mut self) {
        self.ledger = Ledger::default();
        self.cgroup = None;
        self.pids.clear();
    }

    /// Takes the watcher's events and the pass's counter reading, counts new kills (freezing a
    /// report for each batch), keeps the pass's figures and re-aims the watcher.
    pub(crate) fn pass(&mut self, facts: PassFacts<'_>) -> OomStatus {
        if facts.target != self.target {
            if !self.target.is_empty() {
                self.ledger.reset();
                self.last_kill_at = None;
            }
            self.target = facts.target.to_owned();
        }
        self.take_events(facts.now);
        let located = facts.cgroup.and_then(|(loc, sample)| Some((key_of(loc)?, loc, sample)));
        if let Some((key, loc, sample)) = located {
            if let Some(counter) = sample.oom_kills {
                let new = self.ledger.observe(key, counter);
                if new > 0 {
                    let gone = self.pids.iter().copied().filter(|p| !facts.processes.iter().any(|q| q.pid == *p));
                    let pids = gone.collect();
                    self.kill(facts.now, new, Detection::Cgroup, SeenBy::Sample, pids, Some(loc.path.clone()));
                }
            }
            self.cgroup = Some((key, loc.path.clone()));
        }
        let up = !facts.processes.is_empty();
        let near_limit = up && facts.sample.utilization_ratio.is_some_and(|r| r >= NEAR_LIMIT_RATIO);
        if up {
            let mut sample = facts.sample;
            self.add_trend(&mut sample);
            self.premortem.push(sample);
        }
        self.log_state(up, facts.processes);
        self.pids = facts.processes.iter().map(|p| p.pid).collect();
        self.aim(facts.processes, located.map(|(key, loc, _)| (key, loc)), near_limit);
        OomStatus {
            target: self.target.clone(),
            up,
            kills_total: self.ledger.total(),
            inferred_total: self.ledger.inferred(),
            last_kill_at: self.last_kill_at,
            max_reports: MAX_REPORTS,
            reports: self.premortem.reports(),
            watch_events_dropped: self.watcher.as_ref().map_or(0, Watcher::dropped),
        }
    }

    fn take_events(&mut self, now: f64) {
        let Some(events) = self.watcher.as_ref().map(Watcher::drain) else { return };
        let path = self.cgroup.as_ref().map(|(_, p)| p.clone());
        for event in events {
            match event {
                Event::Exited { pid, cgroup, counter: Some(counter), .. } => {
                    let new = cgroup.map_or(0, |key| self.ledger.observe(key, counter));
                    if new > 0 {
                        self.kill(now, new, Detection::Cgroup, SeenBy::Pidfd, vec![pid], path.clone());
                    } else {
                        self.premortem.attribute_exit(pid, now);
                    }
                }
                Event::Exited { pid, cgroup, counter: None, vmstat } => {
                    // Last resort: the cgroup is gone, but the host counter rose as the target died
                    // (beyond what kills already counted account for).
                    match vmstat {
                        Some((before, after)) if after > before.max(self.vmstat_used) => {
                            self.vmstat_used = after;
                            // Against the last cgroup the target was seen in: should it be read
                            // again (a restart in the same cgroup), the kill is not counted twice.
                            self.ledger.infer(cgroup.or(self.cgroup.as_ref().map(|(key, _)| *key)));
                            self.kill(now, 1, Detection::Inferred, SeenBy::Pidfd, vec![pid], path.clone());
                        }
                        _ => {
                            self.premortem.attribute_exit(pid, now);
                        }
                    }
                }
                Event::Changed { cgroup, counter, notified } => {
                    let new = self.ledger.observe(cgroup, counter);
                    let by = if notified { SeenBy::EventsNotify } else { SeenBy::NearLimitPoll };
                    if new > 0 {
                        self.kill(now, new, Detection::Cgroup, by, Vec::new(), path.clone());
                    }
                }
            }
        }
    }

    fn kill(
        &mut self,
        now: f64,
        kills: u64,
        detection: Detection,
        seen_by: SeenBy,
        pids: Vec<i32>,
        cgroup: Option<String>,
    ) {
        self.last_kill_at = Some(now);
        if detection == Detection::Cgroup {
            // The host counter rose with this kill: a later exit whose cgroup is already gone
            // must not infer it a second time.
            if let Some(v) = watch::read_vmstat_oom_kill(&self.roots.proc_file("vmstat")) {
                self.vmstat_used = self.vmstat_used.max(v);
            }
        }
        let report = OomReport {
            at: now,
            target: self.target.clone(),
            detection,
            seen_by,
            kills,
            pids,
            cgroup,
            samples: Vec::new(),
            logs: Default::default(),
        };
        let report = self.premortem.freeze(report, &self.logs);
        let last = report.samples.last().cloned().unwrap_or_default();
        tracing::warn!(
            target = %report.target,
            detection = detection.as_str(),
            seen_by = seen_by.as_str(),
            kills,
            kills_total = self.ledger.total(),
            pids = ?report.pids,
            cgroup = report.cgroup.as_deref().unwrap_or(""),
            last_utilization = last.utilization_ratio,
            last_working_set_bytes = last.cgroup_working_set_bytes,
            limit_bytes = last.cgroup_limit_bytes,
            seconds_to_limit = last.seconds_to_limit,
            "OOM kill"
        );
    }

    fn add_trend(&self, sample: &mut PremortemSample) {
        let Some(rx) = &self.trends else { return };
        let state = rx.borrow();
        if let Some(t) = state.trends.iter().find(|t| t.resource == "memory") {
            sample.trend_bytes_per_second = t.trend.slope_per_second;
            sample.seconds_to_limit = t.trend.seconds_to_limit;
        }
    }

    fn log_state(&mut self, up: bool, processes: &[ProcessIdentity]) {
        match (self.up, up) {
            (Some(true), false) => tracing::warn!(target = %self.target, "target gone"),
            (Some(false) | None, true) => {
                let pids: Vec<i32> = processes.iter().map(|p| p.pid).collect();
                tracing::info!(target = %self.target, ?pids, "target found");
            }
            _ => {}
        }
        self.up = Some(up);
    }

    /// Points the watcher at the group's processes and the leader's cgroup.
    fn aim(&mut self, processes: &[ProcessIdentity], cgroup: Option<(CgroupKey, &Location)>, near_limit: bool) {
        let Some(watcher) = &self.watcher else { return };
        let set = WatchSet {
            processes: if self.pidfds {
                processes.iter().map(|p| (p.pid, p.start_ticks)).collect()
            } else {
                Vec::new()
            },
            cgroup: cgroup.map(|(key, loc)| WatchedCgroup { key, version: loc.version, dir: loc.dir.clone() }),
            vmstat: Some(self.roots.proc_file("vmstat")),
            near_limit,
        };
        watcher.set(set);
    }

    /// Releases spare room; every sample, report and count stays.
    pub(crate) fn trim(&mut self) -> Vec<crate::measure::Trimmed> {
        self.premortem.trim()
    }

    /// The pre-mortem ring's, the reports' and the ledger's sizes.
    pub(crate) fn structures(&self) -> Vec<Structure> {
        let mut out: Vec<Structure> = self.premortem.structures().into();
        out.push(Structure::counted("oom_cgroups", self.ledger.len(), Some(ledger::MAX_CGROUPS)));
        out
    }
}

/// Whether `roots` reads leakwatch's own `/proc` (pids there are pids of its namespace).
fn own_procfs(roots: &Roots) -> bool {
    let own = Roots::default();
    match (std::fs::canonicalize(roots.procfs()), std::fs::canonicalize(own.procfs())) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The identity of a located cgroup directory.
fn key_of(location: &Location) -> Option<CgroupKey> {
    let meta = std::fs::metadata(&location.dir).ok()?;
    Some(CgroupKey { dev: meta.dev(), ino: meta.ino() })
}
