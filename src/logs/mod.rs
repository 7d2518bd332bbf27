//! Bounded log buffers: per named source, one reader feeding one [`ring::LogRing`] that any number
//! of page readers and live subscribers share.
//!
//! [`LogSources`] is the registry built at start and replaced as a whole by a reload (a source
//! that stays keeps its ring): the HTTP routes look sources up in it and the sampler copies every
//! source's [`LogSourceStats`] into each snapshot (so `/metrics` renders log figures from the
//! snapshot like everything else).

pub(crate) mod capture;
pub mod discover;
pub(crate) mod events;
pub(crate) mod follow;
pub(crate) mod guard;
pub(crate) mod identity;
pub mod lines;
pub mod query;
pub mod ring;
pub mod tail;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::measure::{Structure, Trim, Trimmed};
use ring::{LogRing, RingLimits, RingStats, LINE_OVERHEAD_BYTES};

/// Where a source's lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A file path or glob, followed across rotation.
    File {
        /// The configured path or glob.
        pattern: String,
    },
    /// The wrapped command's standard output (`leakwatch run`).
    Stdout,
    /// The wrapped command's standard error (`leakwatch run`).
    Stderr,
}

impl SourceKind {
    /// A short label value: `file`, `stdout` or `stderr`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            SourceKind::File { .. } => "file",
            SourceKind::Stdout => "stdout",
            SourceKind::Stderr => "stderr",
        }
    }
}

/// Counters a source's reader keeps beside its ring.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Bytes read from the source (before cutting overlong lines).
    pub(crate) bytes_read: AtomicU64,
    /// Files rotated away (renamed, deleted or replaced) and switched from.
    pub rotations: AtomicU64,
    /// Times the followed file shrank under the reader (copytruncate, truncate in place).
    pub(crate) truncations: AtomicU64,
    /// Lines known to be lost without entering the ring (e.g. in a truncation window).
    pub(crate) lost_lines: AtomicU64,
    /// Bytes known to be lost without entering the ring.
    pub(crate) lost_bytes: AtomicU64,
    /// Files that named the path (directory events say so) and were never opened: their bytes
    /// are unknown, so not in `lost_bytes` (see `Discovery::settle`).
    pub(crate) unread_files: AtomicU64,
    /// Times the kernel's queue of file events overflowed: events, and with them files, were
    /// missed uncounted.
    pub(crate) event_overflows: AtomicU64,
    /// Read errors (permission, I/O) while following the source.
    pub(crate) read_errors: AtomicU64,
    /// Opens refused by the [`guard`] (a link to a secret, a special file, outside the allowed
    /// directories), each attempt counted.
    pub(crate) refusals: AtomicU64,
    /// The reason of the refusal in force; `None` once a file is followed again.
    pub(crate) refused: Mutex<Option<String>>,
    /// Why no file is read now (missing, unreadable, refused); `None` while one is followed.
    pub(crate) problem: Mutex<Option<String>>,
}

impl SourceCounters {
    /// Records a refusal and its reason.
    pub(crate) fn refuse(&self, reason: &str) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.as_deref() != Some(reason) {
            *refused = Some(reason.to_owned());
        }
    }

    /// A file is followed: no refusal in force.
    pub(crate) fn admitted(&self) {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl SourceCounters {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One named source: its kind, its ring and its reader's counters.
#[derive(Debug)]
pub struct LogSource {
    /// The source name (the `source` label, and the path segment in `/logs/{source}`).
    pub(crate) name: String,
    /// Where the lines come from.
    pub(crate) kind: SourceKind,
    /// The lines.
    pub ring: Arc<LogRing>,
    /// The reader's counters (shared with the same source under another path after a reload).
    pub counters: Arc<SourceCounters>,
    /// Which files the reader may open ([`guard`]).
    pub(crate) paths: guard::SharedPolicy,
}

impl LogSource {
    /// A source with an empty ring.
    pub fn new(name: impl Into<String>, kind: SourceKind, limits: RingLimits) -> Self {
        Self {
            name: name.into(),
            kind,
            ring: Arc::new(LogRing::new(limits)),
            counters: Arc::default(),
            paths: guard::SharedPolicy::default(),
        }
    }

    /// The same source under the shared file policy `paths`.
    pub(crate) fn with_paths(self, paths: guard::SharedPolicy) -> Self {
        Self { paths, ..self }
    }

    /// The same source (its ring, lines, subscribers and counters) read from somewhere else: a
    /// reload changed its path.
    pub(crate) fn moved_to(&self, kind: SourceKind) -> Self {
        Self {
            name: self.name.clone(),
            kind,
            ring: self.ring.clone(),
            counters: self.counters.clone(),
            paths: self.paths.clone(),
        }
    }

    /// A copy of the source's figures now.
    pub fn stats(&self) -> LogSourceStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LogSourceStats {
            name: self.name.clone(),
            kind: self.kind.label(),
            pattern: match &self.kind {
                SourceKind::File { pattern } => Some(pattern.clone()),
                SourceKind::Stdout | SourceKind::Stderr => None,
            },
            limits: self.ring.limits(),
            ring: self.ring.stats(),
            bytes_read: load(&self.counters.bytes_read),
            rotations: load(&self.counters.rotations),
            truncations: load(&self.counters.truncations),
            lost_lines: load(&self.counters.lost_lines),
            lost_bytes: load(&self.counters.lost_bytes),
            unknown_losses: UnknownLosses {
                rotation: load(&self.counters.unread_files),
                // Every truncation: bytes written after the last size seen and before the
                // truncation can never be excluded (a write's IN_MODIFY and the truncation's are
                // one event when merged in the queue, and the truncation resets the file's times).
                truncation: load(&self.counters.truncations),
                overflow: load(&self.counters.event_overflows),
            },
            read_errors: load(&self.counters.read_errors),
            refusals: load(&self.counters.refusals),
            refused: self.counters.refused.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            problem: self.counters.problem.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// A source's figures at one moment (plain data, for snapshots and `GET /logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSourceStats {
    /// The source name.
    pub(crate) name: String,
    /// `file`, `stdout` or `stderr`.
    pub(crate) kind: &'static str,
    /// The configured path or glob of a file source.
    pub(crate) pattern: Option<String>,
    /// The ring's caps.
    pub(crate) limits: RingLimits,
    /// The ring's figures.
    pub ring: RingStats,
    /// See `SourceCounters::bytes_read`.
    pub bytes_read: u64,
    /// See [`SourceCounters::rotations`].
    pub rotations: u64,
    /// See `SourceCounters::truncations`.
    pub truncations: u64,
    /// See `SourceCounters::lost_lines`.
    pub lost_lines: u64,
    /// See `SourceCounters::lost_bytes`.
    pub lost_bytes: u64,
    /// Losses of unknown size: while any moves, `lost_lines` and `lost_bytes` are lower bounds.
    pub unknown_losses: UnknownLosses,
    /// See [`SourceCounters::read_errors`].
    pub(crate) read_errors: u64,
    /// See [`SourceCounters::refusals`].
    pub(crate) refusals: u64,
    /// See [`SourceCounters::refused`].
    pub(crate) refused: Option<String>,
    /// See [`SourceCounters::problem`].
    pub(crate) problem: Option<String>,
}

/// Losses leakwatch knows of but cannot measure, by reason (the `reason` label of
/// `leakwatch_log_unknown_losses_total`). Where all three stay at 0, the lines and bytes counted
/// lost are the loss, exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UnknownLosses {
    /// Files that named the path and were never opened (renamed over, shifted off a numbered
    /// chain, deleted, a symlink switched away from them, all before anyone looked).
    pub rotation: u64,
    /// Truncations (each one: what was written after the last size seen is unknowable).
    pub truncation: u64,
    /// Overflows of the kernel's file event queue (files may have come and gone unseen).
    pub overflow: u64,
}

impl UnknownLosses {
    /// Each reason's label and count.
    pub(crate) fn by_reason(&self) -> [(&'static str, u64); 3] {
        [("rotation", self.rotation), ("truncation", self.truncation), ("overflow", self.overflow)]
    }
}

impl LogSourceStats {
    /// The ring's parts as structures: line entries, text bytes, subscribers.
    pub fn structures(&self) -> [Structure; 3] {
        let (r, l) = (&self.ring, &self.limits);
        [
            Structure {
                bytes: Some((r.line_capacity * LINE_OVERHEAD_BYTES) as u64),
                ..Structure::deque::<()>("log_lines", r.lines, r.line_capacity, Some(l.max_lines))
            },
            Structure::deque::<u8>("log_text", r.bytes, r.text_capacity, Some(l.max_bytes)),
            Structure::counted("log_subscribers", r.subscribers, Some(l.max_subscribers)),
        ]
        .map(|s| s.of_source(&self.name))
    }
}

/// Every configured source, in configuration order. A reload replaces the list as a whole
/// (`LogSources::replace`); readers take the current list and never hold the lock.
#[derive(Debug, Default)]
pub struct LogSources {
    sources: RwLock<Arc<[Arc<LogSource>]>>,
}

impl LogSources {
    /// A registry of the given sources (names are unique: config validation checks).
    pub(crate) fn new(sources: Vec<Arc<LogSource>>) -> Self {
        Self { sources: RwLock::new(sources.into()) }
    }

    /// The source called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<LogSource>> {
        self.list().iter().find(|s| s.name == name).cloned()
    }

    /// All sources now, in configuration order.
    pub(crate) fn list(&self) -> Arc<[Arc<LogSource>]> {
        self.sources.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Every source's figures now.
    pub(crate) fn stats(&self) -> Vec<LogSourceStats> {
        self.list().iter().map(|s| s.stats()).collect()
    }

    /// Replaces the list (a reload); requests that already hold a source keep it.
    pub(crate) fn replace(&self, sources: Vec<Arc<LogSource>>) {
        *self.sources.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = sources.into();
    }
}

impl Trim for LogSources {
    /// Trims every ring (each under its own lock, one at a time).
    fn trim(&self) -> Vec<Trimmed> {
        self.list()
            .iter()
            .flat_map(|s| s.ring.trim().into_iter().map(|t| Trimmed { source: Some(s.name.clone()), ..t }))
            .collect()
    }
}
