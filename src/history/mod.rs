//! The bounded in-process history behind the console's charts: the key figures of each snapshot
//! (RSS, cgroup usage and limit, utilization, predicted time to the limit, fds, threads,
//! children, connections by state, log lines/s), for `console.history_retention` and at most
//! `console.history_max_points` points.
//!
//! ```text
//!  watch<Arc<Snapshot>> ─┐
//!  watch<Arc<AlertState>> ┴► run(): one Point per snapshot ─► History (VecDeque, retention AND count)
//!                                                               ├─► GET /api/history (since / after_seq pages)
//!                                                               ├─► /status and leakwatch_structure_* (`history_points`)
//!                                                               └─► cleanup (drops points past the retention, spare room)
//! ```
//!
//! The task is the only writer; readers copy a page under the short lock.

pub(crate) mod point;
pub(crate) mod query;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub(crate) use point::Point;
pub(crate) use query::HistoryQuery;

use crate::alert::AlertState;
use crate::measure::{reserve_capped, shrink_deque, trim_with};
use crate::measure::{Structure, Trim, Trimmed};
use crate::snapshot::Snapshot;

/// Default time the history covers.
pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);
/// The longest retention allowed.
pub(crate) const MAX_RETENTION: Duration = Duration::from_secs(86_400);
/// Default (and the cap's) most points kept.
pub(crate) const DEFAULT_MAX_POINTS: usize = 3600;
/// The largest `console.history_max_points` (about 12 MiB of points).
pub(crate) const MAX_MAX_POINTS: usize = 86_400;

/// Default most log lines the page keeps.
pub(crate) const DEFAULT_MAX_LOG_LINES: usize = 1000;
/// The largest `console.max_log_lines`.
pub(crate) const MAX_LOG_LINES: usize = 20_000;

/// The `console:` settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ConsoleSettings {
    /// The history's caps.
    pub(crate) history: HistorySettings,
    /// Most log lines the page keeps.
    pub(crate) max_log_lines: usize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { history: HistorySettings::default(), max_log_lines: DEFAULT_MAX_LOG_LINES }
    }
}

/// The history's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HistorySettings {
    /// Points older than this (relative to now) are dropped.
    #[serde(serialize_with = "crate::seconds::ser_duration")]
    pub(crate) retention: Duration,
    /// At most this many points are kept (the oldest go first).
    pub max_points: usize,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self { retention: DEFAULT_RETENTION, max_points: DEFAULT_MAX_POINTS }
    }
}

/// The ring of points, oldest first.
#[derive(Debug)]
pub struct History {
    points: VecDeque<Point>,
    settings: HistorySettings,
    /// (time, lines stored by every source) at the previous point, for the lines/s figure.
    last_lines: Option<(f64, u64)>,
}

/// One page of `GET /api/history`.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    /// The caps.
    pub(crate) retention_seconds: f64,
    /// See [`HistorySettings::max_points`].
    pub(crate) max_points: usize,
    /// Points held now.
    pub(crate) held: usize,
    /// The oldest held point's seq (0 when empty).
    pub(crate) oldest_seq: u64,
    /// The newest held point's seq (0 when empty).
    pub(crate) newest_seq: u64,
    /// The points, oldest first.
    pub(crate) points: Vec<Point>,
    /// The cursor for the next page: the last point's seq (or the request's, when none matched).
    pub(crate) next_after_seq: u64,
    /// Whether more points match after this page.
    pub more: bool,
}

fn now() -> f64 {
    crate::seconds::now()
}

impl History {
    /// An empty history with these caps.
    pub fn new(settings: HistorySettings) -> Self {
        Self { points: VecDeque::new(), settings, last_lines: None }
    }

    /// Records a snapshot (with the engine's latest evaluation for the prediction); a snapshot
    /// not newer than the newest point (or the empty one before the first sample) is ignored.
    /// Returns whether a point was stored.
    pub fn record(&mut self, snapshot: &Snapshot, alerts: &AlertState) -> bool {
        if snapshot.seq == 0 || self.points.back().is_some_and(|p| p.seq >= snapshot.seq) {
            return false;
        }
        let at = crate::seconds::unix(snapshot.taken_at);
        let lines: u64 = snapshot.logs.iter().map(|l| l.ring.lines_total).sum();
        let rate = match self.last_lines {
            Some((t, n)) if at > t && lines >= n => (lines - n) as f64 / (at - t),
            _ => 0.0,
        };
        self.last_lines = Some((at, lines));
        self.push(Point::of(snapshot, alerts, rate));
        true
    }

    /// Appends a point and trims by count and age.
    pub(crate) fn push(&mut self, point: Point) {
        reserve_capped(&mut self.points, 1, self.settings.max_points + 1);
        let at = point.at;
        self.points.push_back(point);
        self.trim(at);
    }

    /// Drops points beyond the count cap and points older than the retention before `now`.
    pub(crate) fn trim(&mut self, now: f64) {
        while self.points.len() > self.settings.max_points {
            self.points.pop_front();
        }
        let oldest = now - self.settings.retention.as_secs_f64();
        while self.points.front().is_some_and(|p| p.at < oldest) {
            self.points.pop_front();
        }
    }

    /// The points matching `q`, oldest first, at most `q.limit`.
    pub(crate) fn page(&self, q: &HistoryQuery) -> Page {
        let after = q.after_seq.unwrap_or(0);
        let since = q.since.unwrap_or(f64::NEG_INFINITY);
        // Points are ordered by seq (the cursor: a binary search); `since` skips from there, so a
        // clock stepped back never hides a newer point behind an older time.
        let after_cursor = self.points.partition_point(|p| p.seq <= after);
        let start = after_cursor + self.points.range(after_cursor..).take_while(|p| p.at < since).count();
        let points: Vec<Point> = self.points.range(start..).take(q.limit).copied().collect();
        let more = self.points.len() - start > points.len();
        Page {
            retention_seconds: self.settings.retention.as_secs_f64(),
            max_points: self.settings.max_points,
            held: self.points.len(),
            oldest_seq: self.points.front().map_or(0, |p| p.seq),
            newest_seq: self.points.back().map_or(0, |p| p.seq),
            next_after_seq: points.last().map_or(after, |p| p.seq),
            points,
            more,
        }
    }

    /// Size and cap, as `/status` and the structure metrics list it (`history_points`).
    pub(crate) fn structure(&self) -> Structure {
        Structure::deque::<Point>(
            "history_points",
            self.points.len(),
            self.points.capacity(),
            Some(self.settings.max_points),
        )
    }

    /// Points held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The history as the task, HTTP and the cleanup share it (a short lock each).
#[derive(Debug, Clone)]
pub(crate) struct SharedHistory(Arc<Mutex<History>>);

impl SharedHistory {
    /// An empty shared history.
    pub(crate) fn new(settings: HistorySettings) -> Self {
        Self(Arc::new(Mutex::new(History::new(settings))))
    }

    /// The history, locked (a poisoned lock still holds consistent points).
    pub(crate) fn lock(&self) -> MutexGuard<'_, History> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A page (copied under the lock).
    pub(crate) fn page(&self, q: &HistoryQuery) -> Page {
        self.lock().page(q)
    }

    /// Size and cap.
    pub(crate) fn structure(&self) -> Structure {
        self.lock().structure()
    }
}

impl Trim for SharedHistory {
    /// Drops points past the retention (the sampler may have stopped) and releases spare room.
    fn trim(&self) -> Vec<Trimmed> {
        let now = now();
        let mut history = self.lock();
        trim_with(&mut *history, History::structure, |h| {
            h.trim(now);
            shrink_deque(&mut h.points);
        })
        .into_iter()
        .collect()
    }
}

/// Records every new snapshot until cancelled or until the sampler's channel closes.
pub(crate) async fn run(
    history: SharedHistory,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    alerts: watch::Receiver<Arc<AlertState>>,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            changed = snapshots.changed() => if changed.is_err() { break },
        }
        let snapshot = snapshots.borrow_and_update().clone();
        let alerts = alerts.borrow().clone();
        history.lock().record(&snapshot, &alerts);
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn snapshot(seq: u64, at: f64, lines: u64) -> Snapshot {
        let mut s = Snapshot::empty("app");
        s.seq = seq;
        s.taken_at = UNIX_EPOCH + Duration::from_secs_f64(at);
        let mut stats = crate::logs::LogSource::new("app", crate::logs::SourceKind::Stdout, Default::default()).stats();
        stats.ring.lines_total = lines;
        s.logs = vec![stats];
        s
    }

    fn filled(n: u64, settings: HistorySettings) -> History {
        let mut h = History::new(settings);
        let t0 = now() - n as f64;
        for seq in 1..=n {
            assert!(h.record(&snapshot(seq, t0 + seq as f64, seq * 10), &AlertState::default()));
        }
        h
    }

    #[test]
    fn pages_follow_the_cursor_and_the_since_time_without_gap_or_duplicate() {
        let h = filled(25, HistorySettings::default());
        let mut seen = Vec::new();
        let mut q = HistoryQuery { limit: 10, ..Default::default() };
        loop {
            let page = h.page(&q);
            seen.extend(page.points.iter().map(|p| p.seq));
            if !page.more {
                assert_eq!(page.next_after_seq, 25);
                break;
            }
            q.after_seq = Some(page.next_after_seq);
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        let since = h.points[19].at;
        let page = h.page(&HistoryQuery { since: Some(since), ..Default::default() });
        assert_eq!(page.points.iter().map(|p| p.seq).collect::<Vec<_>>(), (20..=25).collect::<Vec<_>>());
        let empty = h.page(&HistoryQuery { after_seq: Some(99), ..Default::default() });
        assert!(empty.points.is_empty() && !empty.more && empty.next_after_seq == 99);
        // Lines per second from the log counters: 10 lines a second.
        let v = serde_json::to_value(h.page(&HistoryQuery::default())).unwrap();
        assert_eq!(v["points"][3]["log_lines_per_second"], 10.0);
        assert_eq!((v["oldest_seq"].clone(), v["newest_seq"].clone()), (1.into(), 25.into()));
    }

    #[test]
    fn the_ring_keeps_its_count_cap_and_its_retention() {
        let h = filled(50, HistorySettings { retention: Duration::from_secs(3600), max_points: 20 });
        assert_eq!(h.len(), 20);
        assert_eq!(h.points.front().map(|p| p.seq), Some(31));
        assert!(h.points.capacity() <= 21 + 8, "capacity {}", h.points.capacity());
        let h = filled(50, HistorySettings { retention: Duration::from_secs(10), max_points: 1000 });
        assert!((10..=11).contains(&h.len()), "{} points within 10 s", h.len());
        let mut h = filled(5, HistorySettings::default());
        assert!(!h.record(&snapshot(5, now(), 0), &AlertState::default()), "a snapshot seen before");
        assert!(!h.record(&Snapshot::empty("app"), &AlertState::default()), "the empty snapshot");
    }

    #[test]
    fn cleanup_drops_points_past_the_retention_and_spare_room() {
        let shared = SharedHistory::new(HistorySettings { retention: Duration::from_secs(60), max_points: 5000 });
        let t0 = now() - 4000.0;
        {
            // A sampler that stopped an hour ago: nothing pushes these points out but the cleanup.
            let mut h = shared.lock();
            for seq in 1..=3000 {
                h.record(&snapshot(seq, t0 + seq as f64 * 0.01, 0), &AlertState::default());
            }
        }
        let before = shared.structure();
        let trimmed = shared.trim();
        let after = shared.structure();
        assert_eq!((before.len, after.len), (3000, 0), "every point is past the retention");
        assert!(after.bytes < before.bytes, "{before:?} → {after:?}");
        assert_eq!(trimmed.len(), 1);
        assert_eq!(trimmed[0].name, "history_points");
        assert!(trimmed[0].freed_bytes > 0);
        assert!(shared.trim().is_empty(), "a second cleanup changes nothing");
    }
}
