//! Bounded rings: the sample history a trend is estimated over (retention AND max count) and the
//! alert transition history (max count AND retention). Both evict their oldest entries first and
//! report their size and cap for the metrics.

use std::collections::VecDeque;
use std::time::Duration;

use super::leak::{summarize, Block};
use crate::measure::{reserve_capped, shrink_deque};

/// Caps of a sample history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowLimits {
    /// Samples older than this (relative to the newest) are dropped.
    pub(crate) retention: Duration,
    /// At most this many samples are kept; samples closer together than
    /// `retention / max_samples` are skipped, so the cap spans the whole retention.
    pub(crate) max_samples: usize,
    /// The share of `retention` the history must cover before a trend is judged (0..=1).
    pub(crate) min_fill: f64,
}

impl WindowLimits {
    /// The smallest spacing between two stored samples, seconds.
    pub(crate) fn min_spacing(&self) -> f64 {
        self.retention.as_secs_f64() / self.max_samples.max(1) as f64
    }
}

/// A time series of `(unix seconds, value)` points, bounded by age and count.
#[derive(Debug, Clone)]
pub struct SampleRing {
    points: VecDeque<(f64, f64)>,
    limits: WindowLimits,
}

impl SampleRing {
    /// An empty ring with the given caps.
    pub fn new(limits: WindowLimits) -> Self {
        Self { points: VecDeque::with_capacity(limits.max_samples.min(4096)), limits }
    }

    /// Adds a point unless it is closer than the minimum spacing to the newest one (or older
    /// than it: time went backwards, and the ring starts over), then trims by count and age.
    /// Returns whether the point was stored.
    pub fn push(&mut self, t: f64, value: f64) -> bool {
        if !t.is_finite() || !value.is_finite() {
            return false;
        }
        if let Some(&(last, _)) = self.points.back() {
            if t < last {
                self.points.clear();
            } else if t - last < self.limits.min_spacing() {
                return false;
            }
        }
        reserve_capped(&mut self.points, 1, self.limits.max_samples + 1);
        self.points.push_back((t, value));
        self.trim(t);
        true
    }

    /// Drops points beyond the count cap and points older than the retention before `now`.
    pub(crate) fn trim(&mut self, now: f64) {
        while self.points.len() > self.limits.max_samples {
            self.points.pop_front();
        }
        let oldest = now - self.limits.retention.as_secs_f64();
        while self.points.front().is_some_and(|&(t, _)| t < oldest) {
            self.points.pop_front();
        }
    }

    /// New caps (a reload); points beyond them are dropped at the next trim.
    pub(crate) fn set_limits(&mut self, limits: WindowLimits) {
        self.limits = limits;
    }

    /// Forgets every point (the series changed meaning: a new process, another basis).
    pub(crate) fn clear(&mut self) {
        self.points.clear();
    }

    /// The points, oldest first.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.points.iter().copied().collect()
    }

    /// Points held.
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// The caps.
    pub(crate) fn limits(&self) -> &WindowLimits {
        &self.limits
    }

    /// Points the ring has room for without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.points.capacity()
    }

    /// Releases spare room (when most of it is spare); every point stays.
    pub(crate) fn shrink(&mut self) {
        shrink_deque(&mut self.points);
    }
}

/// Summaries of a sample history's blocks kept beyond its retention: the leak detector's longer
/// scale. Blocks of `len` seconds, aligned to the first sample seen, are summarised as soon as
/// the ring holds the whole block; at most `max` are kept, oldest dropped first.
#[derive(Debug, Clone)]
pub(crate) struct BlockLog {
    blocks: VecDeque<Block>,
    max: usize,
    /// The next block's start and length.
    next: Option<(f64, f64)>,
    scratch: Vec<f64>,
}

impl BlockLog {
    /// An empty log of at most `max` blocks.
    pub(crate) fn new(max: usize) -> Self {
        Self { blocks: VecDeque::new(), max, next: None, scratch: Vec::new() }
    }

    /// Summarises every block of `len` seconds that `points` (oldest first) complete; a new
    /// length, or time going back, starts over.
    pub(crate) fn update(&mut self, points: &[(f64, f64)], len: f64) {
        let (Some(&(oldest, _)), Some(&(newest, _))) = (points.first(), points.last()) else { return };
        if len.is_nan() || len <= 0.0 {
            return;
        }
        let mut start = match self.next {
            Some((start, l)) if l == len && start <= newest + len => start,
            _ => {
                self.clear();
                oldest
            }
        };
        // A gap in the samples: skip the blocks the ring no longer holds.
        if start < oldest {
            start += ((oldest - start) / len).floor() * len;
        }
        while start + len <= newest {
            let a = points.partition_point(|p| p.0 < start);
            let b = points.partition_point(|p| p.0 < start + len);
            if let Some(block) = summarize(&points[a..b], start + len, len / 2.0, &mut self.scratch) {
                reserve_capped(&mut self.blocks, 1, self.max + 1);
                self.blocks.push_back(block);
                while self.blocks.len() > self.max {
                    self.blocks.pop_front();
                }
            }
            start += len;
        }
        self.next = Some((start, len));
    }

    /// The blocks, oldest first.
    pub(crate) fn blocks(&self) -> Vec<Block> {
        self.blocks.iter().copied().collect()
    }

    /// Forgets every block.
    pub(crate) fn clear(&mut self) {
        self.blocks.clear();
        self.next = None;
    }

    /// Blocks held.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    #[cfg(test)]
    /// Whether no block is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The count cap.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Blocks the log has room for without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.blocks.capacity()
    }

    /// Releases spare room (when most of it is spare); every block stays.
    pub(crate) fn shrink(&mut self) {
        shrink_deque(&mut self.blocks);
        self.scratch = Vec::new();
    }
}

/// A ring of records with a timestamp, bounded by count and age (the alert transition history).
#[derive(Debug, Clone)]
pub(crate) struct BoundedLog<T> {
    items: VecDeque<(f64, T)>,
    max: usize,
    retention: Duration,
}

impl<T: Clone> BoundedLog<T> {
    /// An empty log keeping at most `max` records, none older than `retention`.
    pub(crate) fn new(max: usize, retention: Duration) -> Self {
        Self { items: VecDeque::with_capacity(max.min(1024)), max, retention }
    }

    /// New caps (a reload); records beyond them are dropped at the next trim.
    pub(crate) fn set_limits(&mut self, max: usize, retention: Duration) {
        self.max = max;
        self.retention = retention;
    }

    /// Appends a record made at `at` and trims.
    pub(crate) fn push(&mut self, at: f64, item: T) {
        reserve_capped(&mut self.items, 1, self.max + 1);
        self.items.push_back((at, item));
        self.trim(at);
    }

    /// Drops records beyond the cap and records older than the retention before `now`;
    /// returns how many were dropped.
    pub(crate) fn trim(&mut self, now: f64) -> usize {
        let before = self.items.len();
        while self.items.len() > self.max {
            self.items.pop_front();
        }
        let oldest = now - self.retention.as_secs_f64();
        while self.items.front().is_some_and(|(t, _)| *t < oldest) {
            self.items.pop_front();
        }
        before - self.items.len()
    }

    /// The records, newest first.
    pub(crate) fn newest_first(&self) -> Vec<T> {
        self.items.iter().rev().map(|(_, item)| item.clone()).collect()
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    #[cfg(test)]
    /// Whether no record is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The count cap.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Records the log has room for without reallocating.
    pub(crate) fn capacity(&self) -> usize {
        self.items.capacity()
    }

    /// Releases spare room (when most of it is spare); every record stays.
    pub(crate) fn shrink(&mut self) {
        shrink_deque(&mut self.items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(retention_s: u64, max: usize) -> WindowLimits {
        WindowLimits { retention: Duration::from_secs(retention_s), max_samples: max, min_fill: 0.5 }
    }

    #[test]
    fn a_full_log_holds_no_room_beyond_its_cap() {
        let mut log = BoundedLog::new(100, Duration::from_secs(3600));
        let mut ring = SampleRing::new(limits(3600, 100));
        for i in 0..1000 {
            log.push(i as f64, i);
            ring.push(i as f64 * 36.0, 1.0);
        }
        assert_eq!((log.len(), ring.len()), (100, 100));
        assert!(log.capacity() <= 101 && ring.capacity() <= 101, "{} {}", log.capacity(), ring.capacity());
    }

    #[test]
    fn the_sample_cap_holds_whatever_the_rate() {
        // 100 samples per spacing for 10 retentions: the count cap and the spacing both bite.
        let mut ring = SampleRing::new(limits(600, 60));
        let mut stored = 0;
        for i in 0..60_000 {
            if ring.push(i as f64 * 0.1, i as f64) {
                stored += 1;
            }
            assert!(ring.len() <= 60, "cap exceeded at {i}: {}", ring.len());
        }
        assert!(stored > 60, "old points were evicted, not refused: {stored}");
        assert_eq!(ring.len(), 60);
        let pts = ring.points();
        assert!(pts.last().unwrap().0 - pts[0].0 <= 600.0);
    }

    #[test]
    fn samples_older_than_the_retention_are_dropped_and_time_going_back_restarts() {
        let mut ring = SampleRing::new(limits(100, 1000));
        for t in 0..100 {
            ring.push(t as f64, 1.0);
        }
        assert_eq!(ring.len(), 100);
        ring.push(150.0, 1.0);
        assert_eq!(ring.points()[0].0, 50.0, "points before now - retention are gone");
        ring.push(10.0, 1.0);
        assert_eq!(ring.points(), vec![(10.0, 1.0)]);
        assert!(!ring.push(f64::NAN, 1.0));
    }

    #[test]
    fn the_block_log_summarises_whole_blocks_keeps_its_cap_and_starts_over_when_time_goes_back() {
        let mut ring = SampleRing::new(limits(3600, 240));
        let mut log = BlockLog::new(4);
        for i in 0..=(600 / 15) {
            let t = 1000.0 + 15.0 * i as f64;
            ring.push(t, t);
            log.update(&ring.points(), 300.0);
        }
        // 600 s of samples: two whole blocks of 300 s, aligned to the first sample.
        let blocks = log.blocks();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!((blocks[0].start, blocks[0].end, blocks[1].end), (1000.0, 1300.0, 1600.0));
        assert!(blocks[0].value < blocks[0].high && blocks[0].high < blocks[1].value);
        for i in 41..=(3000 / 15) {
            let t = 1000.0 + 15.0 * i as f64;
            ring.push(t, t);
            log.update(&ring.points(), 300.0);
        }
        assert_eq!(log.len(), 4, "the cap holds");
        assert_eq!(log.blocks()[3].end, 4000.0);
        ring.push(10.0, 1.0);
        log.update(&ring.points(), 300.0);
        assert!(log.is_empty(), "time went back: {:?}", log.blocks());
    }

    #[test]
    fn the_transition_log_cap_and_retention_hold() {
        let mut log = BoundedLog::new(5, Duration::from_secs(100));
        for i in 0..50 {
            log.push(i as f64, i);
            assert!(log.len() <= 5);
        }
        assert_eq!(log.newest_first(), vec![49, 48, 47, 46, 45]);
        assert_eq!(log.trim(200.0), 5);
        assert!(log.is_empty());
    }
}
