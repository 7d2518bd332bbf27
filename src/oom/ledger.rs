//! leakwatch's own count of the target's OOM kills: every reading of a cgroup's kernel counter,
//! whoever made it (the exit watcher, a v2 notification, the regular pass), goes through
//! [`Ledger::observe`], so a kill is counted once however many paths see it.
//!
//! - A cgroup is known by the identity of its directory (device and inode), so a cgroup removed
//!   and created again at the same path is a new one.
//! - The first cgroup seen after a (re)start is a baseline: kills before leakwatch watched are not
//!   news. A cgroup first seen later (a restarted container) counts from 0: the runtime created it
//!   for the new process.
//! - A kill inferred from `/proc/vmstat` (the counter could not be read because the cgroup was
//!   already gone) is remembered against that cgroup: should its counter be read after all, the
//!   inferred kill is not counted twice.

use std::collections::VecDeque;

/// Most cgroups whose last reading is kept (older ones are forgotten first).
pub(crate) const MAX_CGROUPS: usize = 16;

/// The identity of a cgroup directory: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CgroupKey {
    /// `st_dev`.
    pub(crate) dev: u64,
    /// `st_ino`.
    pub(crate) ino: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    key: CgroupKey,
    last: u64,
    /// Inferred kills not yet matched by a counter reading.
    inferred: u64,
}

/// The counts and the last reading per cgroup (bounded).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    cgroups: VecDeque<Seen>,
    /// Whether any cgroup was seen since the last reset: the first one is a baseline.
    started: bool,
    counted: u64,
    inferred: u64,
}

impl Ledger {
    /// Records a reading of `key`'s kernel counter; returns the kills it adds to the count.
    pub(crate) fn observe(&mut self, key: CgroupKey, value: u64) -> u64 {
        let Some(seen) = self.cgroups.iter_mut().find(|s| s.key == key) else {
            let baseline = if self.started { 0 } else { value };
            self.started = true;
            self.remember(Seen { key, last: baseline, inferred: 0 });
            return self.observe(key, value);
        };
        // The same directory's counter never goes down; a lower reading is a misread, not a reset.
        let delta = value.saturating_sub(seen.last);
        seen.last = seen.last.max(value);
        let matched = delta.min(seen.inferred);
        seen.inferred -= matched;
        let new = delta - matched;
        self.counted += new;
        new
    }

    /// Counts one kill inferred for `key` (its counter was unreadable when the target died).
    pub(crate) fn infer(&mut self, key: Option<CgroupKey>) {
        self.inferred += 1;
        if let Some(seen) = key.and_then(|k| self.cgroups.iter_mut().find(|s| s.key == k)) {
            seen.inferred += 1;
        }
    }

    fn remember(&mut self, seen: Seen) {
        if self.cgroups.len() >= MAX_CGROUPS {
            self.cgroups.pop_front();
        }
        self.cgroups.push_back(seen);
    }

    /// Kills inferred from the host counter.
    pub(crate) fn inferred(&self) -> u64 {
        self.inferred
    }

    /// Both.
    pub(crate) fn total(&self) -> u64 {
        self.counted + self.inferred
    }

    /// Cgroups remembered.
    pub(crate) fn len(&self) -> usize {
        self.cgroups.len()
    }

    /// A new target: counts and readings start afresh.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: CgroupKey = CgroupKey { dev: 1, ino: 10 };
    const B: CgroupKey = CgroupKey { dev: 1, ino: 11 };

    #[test]
    fn the_first_cgroup_is_a_baseline_and_later_ones_count_from_zero() {
        let mut l = Ledger::default();
        assert_eq!(l.observe(A, 3), 0, "kills before leakwatch watched are not news");
        assert_eq!(l.observe(A, 4), 1);
        assert_eq!(l.observe(B, 1), 1, "a new cgroup was created at 0");
        assert_eq!(l.total(), 2);
    }

    #[test]
    fn every_path_reading_the_same_counter_counts_a_kill_once() {
        let mut l = Ledger::default();
        l.observe(A, 0);
        // The exit watcher, then the v2 notification, then the regular pass.
        assert_eq!(l.observe(A, 1), 1);
        assert_eq!(l.observe(A, 1), 0);
        assert_eq!(l.observe(A, 1), 0);
        // A restart in the same cgroup, then a misread lower value.
        assert_eq!(l.observe(A, 0), 0);
        assert_eq!(l.observe(A, 1), 0);
        assert_eq!(l.total(), 1);
    }

    #[test]
    fn an_inferred_kill_is_not_counted_again_when_the_counter_shows_it() {
        let mut l = Ledger::default();
        l.observe(A, 0);
        l.infer(Some(A));
        assert_eq!((l.total(), l.inferred()), (1, 1));
        assert_eq!(l.observe(A, 2), 1, "one of the two was already inferred");
        assert_eq!(l.total(), 2);
        l.infer(None);
        assert_eq!(l.total(), 3);
    }

    #[test]
    fn readings_are_bounded() {
        let mut l = Ledger::default();
        for ino in 0..100 {
            l.observe(CgroupKey { dev: 0, ino }, 1);
        }
        assert_eq!(l.len(), MAX_CGROUPS);
        assert_eq!(l.total(), 99);
    }
}
