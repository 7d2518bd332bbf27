//! Cleanup: leakwatch trims its own structures (spare capacity of buffers and maps, dead entries)
//! on an interval, when its own RSS passes a threshold, and on `POST /admin/cleanup`, and
//! reports what each structure freed.
//!
//! ```text
//!  interval tick ─┐
//!  snapshot (own RSS > threshold, cooldown) ─┼─► run(): one cleanup at a time
//!  Cleanup::run_now (admin) ─┘                  ├─ direct: log rings, the /metrics cache (behind their short locks)
//!                                               ├─ owners: the sampler and the alert engine get a TrimRequest
//!                                               │          and trim between passes, in their own task
//!                                               └─► Report (per structure: before/after, freed bytes) ─► CleanupStats
//! ```
//!
//! Trimming never drops a live entry: it releases spare capacity and entries that are already
//! dead (past their retention, or of a rule that no longer exists).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::measure::{Trim, TrimRequest, Trimmed};
use crate::snapshot::Snapshot;

/// Default time between interval cleanups.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Default own RSS above which a sampling pass triggers a cleanup.
pub(crate) const DEFAULT_MEMORY_THRESHOLD: u64 = 256 << 20;
/// Default least time between two memory-triggered cleanups.
pub(crate) const DEFAULT_MEMORY_COOLDOWN: Duration = Duration::from_secs(60);
/// How long an owner (the sampler, the alert engine) may take to answer a trim request; the
/// sampler answers between passes, so this covers one slow pass.
pub(crate) const OWNER_TIMEOUT: Duration = Duration::from_secs(10);

/// What started a cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `cleanup.interval` elapsed.
    Interval,
    /// leakwatch's own RSS was above `cleanup.memory_threshold`.
    Memory,
    /// `POST /admin/cleanup`.
    Admin,
}

impl Trigger {
    /// Every trigger, in label order.
    pub(crate) const ALL: [Trigger; 3] = [Trigger::Interval, Trigger::Memory, Trigger::Admin];

    /// Label and JSON value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Memory => "memory",
            Self::Admin => "admin",
        }
    }
}

/// The `cleanup:` settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CleanupSettings {
    /// Time between interval cleanups.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub(crate) interval: Duration,
    /// Own RSS above which a sampling pass triggers a cleanup, bytes.
    pub(crate) memory_threshold: u64,
    /// Least time between two memory-triggered cleanups.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub(crate) memory_cooldown: Duration,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            memory_threshold: DEFAULT_MEMORY_THRESHOLD,
            memory_cooldown: DEFAULT_MEMORY_COOLDOWN,
        }
    }
}

/// What one cleanup did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What started it.
    pub trigger: Trigger,
    /// When it started, Unix seconds.
    pub at: f64,
    /// How long it took.
    pub duration_seconds: f64,
    /// The sum of the structures' `freed_bytes`.
    pub freed_bytes: u64,
    /// leakwatch's own RSS before and after, for information (the allocator decides when freed
    /// memory goes back to the kernel): the latest snapshot's, and that of the pass the cleanup
    /// asks the sampler for once it is done.
    pub rss_before_bytes: Option<u64>,
    /// See `rss_before_bytes`.
    pub rss_after_bytes: Option<u64>,
    /// Every structure that changed.
    pub structures: Vec<Trimmed>,
    /// Owners that did not answer within `OWNER_TIMEOUT` (their structures were not trimmed).
    pub unanswered: Vec<&'static str>,
}

/// Cleanups performed, by trigger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByTrigger {
    /// `interval`.
    pub interval: u64,
    /// `memory`.
    pub memory: u64,
    /// `admin`.
    pub admin: u64,
}

impl ByTrigger {
    /// The count for one trigger.
    pub(crate) fn get(&self, t: Trigger) -> u64 {
        match t {
            Trigger::Interval => self.interval,
            Trigger::Memory => self.memory,
            Trigger::Admin => self.admin,
        }
    }

    fn bump(&mut self, t: Trigger) {
        match t {
            Trigger::Interval => self.interval += 1,
            Trigger::Memory => self.memory += 1,
            Trigger::Admin => self.admin += 1,
        }
    }

    /// Every cleanup.
    pub(crate) fn total(&self) -> u64 {
        self.interval + self.memory + self.admin
    }
}

/// Cleanup figures since start.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CleanupStats {
    /// The settings in use.
    pub settings: CleanupSettings,
    /// Cleanups performed, by trigger.
    pub performed: ByTrigger,
    /// Bytes freed by every cleanup since start.
    pub freed_bytes_total: u64,
    /// The last cleanup.
    pub last: Option<Report>,
}

/// The handle HTTP holds: figures, and a way to run a cleanup now.
#[derive(Debug, Clone)]
pub(crate) struct Cleanup {
    requests: mpsc::Sender<(Trigger, oneshot::Sender<Report>)>,
    stats: Arc<Mutex<CleanupStats>>,
    settings: Arc<watch::Sender<CleanupSettings>>,
}

impl Cleanup {
    /// Runs a cleanup now and returns its report; `None` when the cleanup task has stopped.
    pub(crate) async fn run_now(&self, trigger: Trigger) -> Option<Report> {
        let (tx, rx) = oneshot::channel();
        self.requests.send((trigger, tx)).await.ok()?;
        rx.await.ok()
    }

    /// The figures now.
    pub(crate) fn stats(&self) -> CleanupStats {
        lock(&self.stats).clone()
    }

    /// Cleanups performed so far (what a cached `/metrics` body is keyed by; no copy of the
    /// last report).
    pub(crate) fn performed_total(&self) -> u64 {
        lock(&self.stats).performed.total()
    }

    /// New settings (a reload): the interval restarts from now, the threshold applies to the
    /// next snapshot.
    pub(crate) fn set_settings(&self, settings: CleanupSettings) {
        if self.settings.send_if_modified(|s| std::mem::replace(s, settings) != settings) {
            lock(&self.stats).settings = settings;
        }
    }
}

fn lock(stats: &Mutex<CleanupStats>) -> MutexGuard<'_, CleanupStats> {
    stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The cleanup task's parts: what it trims directly and which owners it asks.
pub(crate) struct Cleaner {
    settings: watch::Receiver<CleanupSettings>,
    direct: Vec<Arc<dyn Trim>>,
    owners: Vec<(&'static str, mpsc::Sender<TrimRequest>)>,
    stats: Arc<Mutex<CleanupStats>>,
    requests: mpsc::Receiver<(Trigger, oneshot::Sender<Report>)>,
    wake_sampler: Option<Arc<Notify>>,
}

impl Cleaner {
    /// A cleaner with nothing to trim yet, and the handle for HTTP.
    pub(crate) fn new(settings: CleanupSettings) -> (Self, Cleanup) {
        let (tx, rx) = mpsc::channel(4);
        let (settings_tx, settings_rx) = watch::channel(settings);
        let stats = Arc::new(Mutex::new(CleanupStats { settings, ..CleanupStats::default() }));
        let handle = Cleanup { requests: tx, stats: stats.clone(), settings: Arc::new(settings_tx) };
        let cleaner = Self {
            settings: settings_rx,
            direct: Vec::new(),
            owners: Vec::new(),
            stats,
            requests: rx,
            wake_sampler: None,
        };
        (cleaner, handle)
    }

    /// Adds a structure trimmed from the cleanup task.
    pub(crate) fn trim_directly(mut self, part: Arc<dyn Trim>) -> Self {
        self.direct.push(part);
        self
    }

    /// Adds an owner asked through its inbox (see [`trim_channel`]).
    pub(crate) fn ask(mut self, owner: &'static str, inbox: mpsc::Sender<TrimRequest>) -> Self {
        self.owners.push((owner, inbox));
        self
    }

    /// Wakes the sampler for a pass once a cleanup is done: its snapshot gives the own RSS after.
    pub(crate) fn wake_sampler(mut self, wake: Arc<Notify>) -> Self {
        self.wake_sampler = Some(wake);
        self
    }

    /// One cleanup: every owner and direct part, then the figures. leakwatch's own RSS comes
    /// from the snapshots (the sampler reads it with the rest of the pass).
    pub(crate) async fn clean(&self, trigger: Trigger, snapshots: &watch::Receiver<Arc<Snapshot>>) -> Report {
        let started = Instant::now();
        let at = crate::seconds::now();
        let rss_before_bytes = own_rss(&snapshots.borrow());
        let mut pending = Vec::new();
        let mut unanswered = Vec::new();
        for (name, inbox) in &self.owners {
            let (tx, rx) = oneshot::channel();
            match inbox.try_send(tx) {
                Ok(()) => pending.push((*name, rx)),
                Err(_) => unanswered.push(*name),
            }
        }
        // A shrink copies what a buffer holds: off the runtime thread, like the sampler's reads.
        let direct = self.direct.clone();
        let mut structures: Vec<Trimmed> =
            tokio::task::spawn_blocking(move || direct.iter().flat_map(|d| d.trim()).collect()).await.unwrap_or_else(
                |e| {
                    tracing::error!("trimming failed: {e}");
                    Vec::new()
                },
            );
        for (name, rx) in pending {
            match tokio::time::timeout(OWNER_TIMEOUT, rx).await {
                Ok(Ok(trimmed)) => structures.extend(trimmed),
                _ => unanswered.push(name),
            }
        }
        let freed_bytes = structures.iter().map(|t| t.freed_bytes).sum();
        let duration_seconds = started.elapsed().as_secs_f64();
        let report = Report {
            trigger,
            at,
            duration_seconds,
            freed_bytes,
            rss_before_bytes,
            rss_after_bytes: self.rss_after(snapshots).await,
            structures,
            unanswered,
        };
        let mut stats = lock(&self.stats);
        stats.performed.bump(trigger);
        stats.freed_bytes_total += freed_bytes;
        stats.last = Some(report.clone());
        drop(stats);
        tracing::info!(
            trigger = trigger.as_str(),
            freed_bytes,
            structures = report.structures.len(),
            rss_before = ?report.rss_before_bytes,
            rss_after = ?report.rss_after_bytes,
            "cleanup done"
        );
        report
    }

    /// The own RSS of the first pass after the cleanup (asked for at once, within
    /// [`OWNER_TIMEOUT`]); without a sampler to wake, the latest snapshot's.
    async fn rss_after(&self, snapshots: &watch::Receiver<Arc<Snapshot>>) -> Option<u64> {
        let mut rx = snapshots.clone();
        let seen = rx.borrow_and_update().seq;
        let Some(wake) = &self.wake_sampler else { return own_rss(&rx.borrow()) };
        wake.notify_one();
        let after = match tokio::time::timeout(OWNER_TIMEOUT, rx.wait_for(|s| s.seq > seen)).await {
            Ok(Ok(s)) => own_rss(&s),
            _ => None,
        };
        after
    }
}

/// Runs cleanups until cancelled: every `cleanup.interval`, after a snapshot whose own RSS is
/// above `cleanup.memory_threshold` (at most once per `cleanup.memory_cooldown`), and on request.
/// New settings ([`Cleanup::set_settings`]) apply at once.
pub(crate) async fn run(mut cleaner: Cleaner, mut snapshots: watch::Receiver<Arc<Snapshot>>, token: CancellationToken) {
    let mut settings = *cleaner.settings.borrow_and_update();
    let mut tick = ticker(settings.interval);
    let mut last_memory: Option<Instant> = None;
    let mut snapshots_open = true;
    let mut settings_open = true;
    loop {
        let trigger = tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => Trigger::Interval,
            changed = cleaner.settings.changed(), if settings_open => {
                if changed.is_err() {
                    settings_open = false;
                } else {
                    settings = *cleaner.settings.borrow_and_update();
                    tick = ticker(settings.interval);
                }
                continue;
            }
            request = cleaner.requests.recv() => match request {
                Some((trigger, reply)) => {
                    let report = cleaner.clean(trigger, &snapshots).await;
                    let _ = reply.send(report);
                    continue;
                }
                None => break,
            },
            changed = snapshots.changed(), if snapshots_open => {
                if changed.is_err() {
                    snapshots_open = false;
                    continue;
                }
                let rss = own_rss(&snapshots.borrow_and_update());
                if !memory_due(rss, settings, last_memory, Instant::now()) {
                    continue;
                }
                last_memory = Some(Instant::now());
                Trigger::Memory
            }
        };
        cleaner.clean(trigger, &snapshots).await;
    }
}

/// Ticks every `interval`, the first one `interval` from now.
fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Whether own RSS `rss` calls for a memory-triggered cleanup now.
fn memory_due(rss: Option<u64>, settings: CleanupSettings, last: Option<Instant>, now: Instant) -> bool {
    rss.is_some_and(|r| r > settings.memory_threshold)
        && last.is_none_or(|t| now.duration_since(t) >= settings.memory_cooldown)
}

/// leakwatch's own RSS as a snapshot has it.
fn own_rss(snapshot: &Snapshot) -> Option<u64> {
    snapshot.own_process.and_then(|p| p.rss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::trim_channel;

    #[test]
    fn the_memory_trigger_needs_the_threshold_and_the_cooldown() {
        let s =
            CleanupSettings { memory_threshold: 100, memory_cooldown: Duration::from_secs(60), ..Default::default() };
        let now = Instant::now();
        assert!(!memory_due(Some(100), s, None, now), "at the threshold is not above it");
        assert!(!memory_due(None, s, None, now), "no reading");
        assert!(memory_due(Some(101), s, None, now));
        assert!(!memory_due(Some(101), s, Some(now), now + Duration::from_secs(59)), "cooling down");
        assert!(memory_due(Some(101), s, Some(now), now + Duration::from_secs(60)));
    }

    struct Fixed(Vec<Trimmed>);

    impl Trim for Fixed {
        fn trim(&self) -> Vec<Trimmed> {
            self.0.clone()
        }
    }

    fn trimmed(name: &'static str, before: u64, after: u64) -> Trimmed {
        Trimmed {
            name,
            source: None,
            len_before: 1,
            len_after: 1,
            capacity_before: before,
            capacity_after: after,
            bytes_before: before,
            bytes_after: after,
            freed_bytes: before - after,
        }
    }

    #[tokio::test]
    async fn new_settings_apply_without_a_restart() {
        let hour = CleanupSettings { interval: Duration::from_secs(3600), ..Default::default() };
        let (cleaner, handle) = Cleaner::new(hour);
        let (_snapshots_tx, snapshots) = watch::channel(Arc::new(Snapshot::empty("t")));
        let token = CancellationToken::new();
        let task = tokio::spawn(run(cleaner, snapshots, token.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(handle.stats().performed.interval, 0, "an hour away");
        let fast = CleanupSettings { interval: Duration::from_millis(100), ..hour };
        handle.set_settings(fast);
        assert_eq!(handle.stats().settings, fast, "/status shows the settings in use");
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.stats().performed.interval < 2 {
            assert!(Instant::now() < deadline, "the new interval never ticked");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_cleanup_sums_every_part_and_counts_by_trigger() {
        let (sampler_tx, mut sampler_rx) = trim_channel();
        let (silent_tx, silent_rx) = trim_channel();
        drop(silent_rx);
        let (mute_tx, mut mute_rx) = trim_channel();
        let (cleaner, handle) = Cleaner::new(CleanupSettings::default());
        let cleaner = cleaner
            .trim_directly(Arc::new(Fixed(vec![trimmed("direct", 4096, 1024)])))
            .ask("sampler", sampler_tx)
            .ask("silent", silent_tx)
            .ask("mute", mute_tx);
        let owner = tokio::spawn(async move {
            let reply = sampler_rx.recv().await.unwrap();
            reply.send(vec![trimmed("owned", 10_000, 0)]).unwrap();
            // An owner that drops the request without answering.
            drop(mute_rx.recv().await.unwrap());
        });
        let (_snapshots_tx, snapshots) = watch::channel(Arc::new(Snapshot::empty("t")));
        let report = cleaner.clean(Trigger::Admin, &snapshots).await;
        owner.await.unwrap();
        assert_eq!(report.freed_bytes, 3072 + 10_000);
        assert_eq!(report.structures.iter().map(|t| t.name).collect::<Vec<_>>(), ["direct", "owned"]);
        assert_eq!(report.unanswered, ["silent", "mute"], "owners that cannot answer are named, not waited for");
        let stats = handle.stats();
        assert_eq!(stats.performed, ByTrigger { admin: 1, ..Default::default() });
        assert_eq!(stats.freed_bytes_total, 13_072);
        assert_eq!(stats.last.as_ref().map(|r| r.trigger), Some(Trigger::Admin));
    }
}
