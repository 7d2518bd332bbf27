//! Tiered sampling: which expensive figures a pass reads afresh and which it carries over.
//!
//! Cheap figures (stat, status, limits, the descriptor count, cgroup files, meminfo, PSI) are
//! read every pass. The expensive ones — a process's descriptor walk, its PSS, the socket tables,
//! the process scan for descendants — are read on every `expensive_every`-th pass (a full pass),
//! and in between only when a cheap figure says they changed: a walk when the descriptor count
//! differs from the one at the last walk, the socket tables when the walked socket inodes differ
//! from the last dump's, PSS when RSS moved by more than `pss_rss_change` since the last read.
//! Each carried figure keeps the time it was read, exported as its age.

use std::collections::HashMap;
use std::time::SystemTime;

use super::fds::{self, FdScan};
use super::process::{PssGate, PssRead, SampledProcess};
use super::read::ok_or_record;
use crate::measure::Structure;
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorSource, PssCost};

/// Default: the expensive figures (descriptor walk, socket tables, PSS, the process scan) are read
/// on every this many passes, and in between only when a cheap figure says they changed.
pub const DEFAULT_EXPENSIVE_EVERY: u32 = 12;
/// Default: PSS is re-read between full passes when a process's RSS moved by more than this
/// fraction since the last read.
pub const DEFAULT_PSS_RSS_CHANGE: f64 = 0.05;

/// How often the expensive figures are read, from `sampling:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierSettings {
    /// Passes between two full passes (1: every pass is full).
    pub expensive_every: u32,
    /// PSS is re-read between full passes when RSS moved by more than this fraction.
    pub pss_rss_change: f64,
}

impl Default for TierSettings {
    fn default() -> Self {
        Self { expensive_every: DEFAULT_EXPENSIVE_EVERY, pss_rss_change: DEFAULT_PSS_RSS_CHANGE }
    }
}

/// What was read of one process in an earlier pass.
#[derive(Debug, Clone)]
struct Held {
    /// The cheap descriptor count seen when the walk ran.
    count_at_walk: Option<u64>,
    walk: Option<(FdScan, SystemTime)>,
    /// RSS at the read, the PSS read (`None`: not readable), when.
    pss: Option<(Option<u64>, Option<u64>, SystemTime)>,
}

/// The tiers' state between passes: per process (pid, start ticks) its last walk and PSS, the
/// pass counter, and the socket inodes of the last socket dump.
#[derive(Debug)]
pub struct Tiers {
    settings: TierSettings,
    passes_since_full: Option<u32>,
    held: HashMap<(i32, u64), Held>,
    dumped_inodes: Option<Vec<u64>>,
    /// The most processes `held` keeps (the sampler's `max_processes`).
    max_held: usize,
}

/// This pass's plan: whether it is a full pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Every expensive figure is read.
    pub full: bool,
    /// When the pass started.
    pub at: SystemTime,
}

impl Tiers {
    /// Tiers with nothing held: the first pass is full.
    pub fn new(settings: TierSettings, max_held: usize) -> Self {
        Self { settings, passes_since_full: None, held: HashMap::new(), dumped_inodes: None, max_held }
    }

    /// New settings (a reload); what is held stays.
    pub fn set_settings(&mut self, settings: TierSettings, max_held: usize) {
        self.settings = settings;
        self.max_held = max_held;
    }

    /// Forgets everything held (the target changed): the next pass is full.
    pub fn forget(&mut self) {
        self.held.clear();
        self.dumped_inodes = None;
        self.passes_since_full = None;
    }

    /// The per-process map, for `/status` and the structure metrics.
    pub fn structure(&self) -> Structure {
        Structure::map("tier_held", &self.held, Some(self.max_held))
    }

    /// Starts a pass: full on the first one and every `expensive_every`-th after it.
    pub fn begin(&mut self, at: SystemTime) -> Pass {
        let full = self.passes_since_full.is_none_or(|n| n + 1 >= self.settings.expensive_every);
        self.passes_since_full = Some(if full { 0 } else { self.passes_since_full.unwrap_or(0) + 1 });
        Pass { full, at }
    }

    /// Fills in each process's descriptor walk and PSS, reading them afresh where the pass is
    /// full or a cheap figure moved, and carrying them over otherwise. Processes no longer in
    /// the group are forgotten. Returns the age stamps of the walks and PSS reads (the oldest
    /// over the group).
    pub fn processes(
        &mut self,
        pass: Pass,
        roots: &Roots,
        group: &mut [SampledProcess],
        gate: &mut PssGate,
        cost: &mut PssCost,
        errors: &mut ErrorCounts,
    ) -> Stamps {
        self.held.retain(|key, _| group.iter().any(|p| (p.id.pid, p.id.start_ticks) == *key));
        let mut pss_allowed = None;
        let mut fresh = Stamps::default();
        for p in group.iter_mut() {
            let key = (p.id.pid, p.id.start_ticks);
            if !self.held.contains_key(&key) && self.held.len() >= self.max_held {
                continue;
            }
            let held = self.held.entry(key).or_insert(Held { count_at_walk: None, walk: None, pss: None });
            let dir = roots.pid(p.id.pid);
            let count = p.memory.open_fds;
            let walk = pass.full || held.walk.is_none() || held.count_at_walk != count;
            if walk && count.is_some() {
                held.walk = ok_or_record(errors, ErrorSource::Fd, fds::scan(&dir.join("fd"))).map(|s| (s, pass.at));
                held.count_at_walk = count;
            } else if count.is_none() {
                held.walk = None;
            }
            p.fds = held.walk.as_ref().map(|(s, _)| s.clone());
            fresh.fds = oldest(fresh.fds, held.walk.as_ref().map(|(_, at)| *at));

            let rss = p.memory.rss;
            let moved = |at_read: Option<u64>| match (at_read, rss) {
                (Some(before), Some(now)) => {
                    now.abs_diff(before) as f64 > self.settings.pss_rss_change * before.max(1) as f64
                }
                (before, now) => before != now,
            };
            let read = pass.full || held.pss.is_none_or(|(at_read, _, _)| moved(at_read));
            if read {
                match gate.read(&mut pss_allowed, &dir, rss, cost, errors) {
                    PssRead::Read(pss) => held.pss = Some((rss, pss, pass.at)),
                    // Refused (RSS ceiling, back-off): no figure, and asked again next pass.
                    PssRead::Refused => held.pss = None,
                }
            }
            p.memory.pss = held.pss.and_then(|(_, pss, _)| pss);
            fresh.pss = oldest(fresh.pss, held.pss.map(|(_, _, at)| at));
        }
        fresh
    }

    /// Whether the socket tables are read this pass: a full pass, or the group's socket inodes
    /// (sorted, deduplicated) differ from the last dump's. Remembers `inodes` when it says yes.
    pub fn dump_sockets(&mut self, pass: Pass, inodes: &[u64]) -> bool {
        let changed = self.dumped_inodes.as_deref() != Some(inodes);
        if pass.full || changed {
            self.dumped_inodes = Some(inodes.to_vec());
        }
        pass.full || changed
    }
}

/// When the oldest descriptor walk and PSS read of the group were taken.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamps {
    /// The oldest walk.
    pub fds: Option<SystemTime>,
    /// The oldest PSS read.
    pub pss: Option<SystemTime>,
}

fn oldest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
