//! The lines of a ring: texts back to back in one byte ring, one compact entry per line, and a
//! single memory budget for both.
//!
//! **The byte cap covers everything the ring allocates**: text capacity + entry capacity ×
//! [`LINE_OVERHEAD_BYTES`] ≤ `max_bytes`, whatever `max_lines` says. The entry ring does not grow
//! by blind doubling: it grows towards the number of lines of the current mean length that the
//! cap can hold (`max_bytes / (mean + LINE_OVERHEAD_BYTES)`), never past `max_lines`, and the
//! text ring gets what the entries leave. So a flood of short lines holds more lines and less
//! text, a flood of long lines the reverse, and neither ever allocates more than the cap.

use std::collections::VecDeque;

use super::{Cursor, LineFilter, Page, ReadLimits, RingLimits, CUT_MARKER};
use crate::measure::{reserve_capped, shrink_deque, trim_with, Structure, Trimmed};

/// Fixed bookkeeping per stored line, on top of its text (counted into `max_bytes`).
pub const LINE_OVERHEAD_BYTES: usize = std::mem::size_of::<Entry>();
/// The high bit of [`Entry::len`]: the line was cut.
const CUT_BIT: u32 = 1 << 31;
/// The fewest entry slots the ring grows to at once.
const MIN_ENTRY_SLOTS: usize = 16;
/// The entry ring grows only by at least 1/this of its capacity (else the oldest line is evicted
/// instead): a full ring then holds at least 97 % of the lines of its mean length that fit, so its
/// counted bytes reach 97 % of `max_bytes` (the `LeakwatchLogBufferFull` alert is at 95 %; at 1/4
/// a ring stalled at 65 536 of 72 944 slots read 0.90 full at every power-of-two cap).
const MIN_GROWTH_DIVISOR: usize = 32;

/// One line: 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Microseconds since the Unix epoch.
    ts_us: u64,
    /// The low 32 bits of the text's absolute offset in the stream of all bytes ever stored
    /// (the ring holds less than 4 GiB, so they place it exactly relative to `text_base`).
    start: u32,
    /// Text length, [`CUT_BIT`] set when the line was cut.
    len: u32,
}

impl Entry {
    fn len(&self) -> usize {
        (self.len & !CUT_BIT) as usize
    }

    fn cut(&self) -> bool {
        self.len & CUT_BIT != 0
    }
}

/// A ring's lines and figures (under the ring's lock).
#[derive(Debug, Default)]
pub(super) struct Storage {
    /// The caps (changed in place by [`Storage::set_limits`]).
    pub(super) limits: RingLimits,
    text: VecDeque<u8>,
    /// Absolute offset of `text[0]`.
    text_base: u64,
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`; equals `next_seq` when empty.
    pub(super) first_seq: u64,
    pub(super) next_seq: u64,
    pub(super) lines_total: u64,
    pub(super) bytes_total: u64,
    pub(super) evicted_total: u64,
    pub(super) cut_total: u64,
}

impl Storage {
    /// An empty store with normalized `limits`.
    pub(super) fn new(limits: RingLimits) -> Self {
        Self { limits, first_seq: 1, next_seq: 1, ..Self::default() }
    }

    /// (lines held, text bytes held, entry capacity, text capacity).
    pub(super) fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.entries.len(), self.text.len(), self.entries.capacity(), self.text.capacity())
    }

    /// Text bytes the entries leave of the byte cap.
    fn text_budget(&self) -> usize {
        self.limits.max_bytes.saturating_sub(self.entries.capacity() * LINE_OVERHEAD_BYTES)
    }

    /// Stores one line (`keep` + the marker when `cut`); returns its sequence number.
    pub(super) fn push(&mut self, keep: &[u8], cut: bool, ts_us: u64) -> u64 {
        let len = keep.len() + if cut { CUT_MARKER.len() } else { 0 };
        while self.entries.len() >= self.limits.max_lines {
            self.evict_oldest();
        }
        if self.entries.len() == self.entries.capacity() {
            self.grow_entries(len);
        }
        // Room for the text: entry slots mostly spare (after a burst of short lines) give way
        // first, then the oldest lines. Halving at least, so this is rare.
        if self.text.len() + len > self.text_budget() && self.entries.capacity() > 2 * (self.entries.len() + 1) {
            let slots = self.limits.max_bytes.saturating_sub(self.text.len() + len) / LINE_OVERHEAD_BYTES;
            self.entries.shrink_to(slots.min(self.entries.capacity() / 2).max(self.entries.len() + 1));
        }
        while (self.text.len() + len > self.text_budget() || self.entries.len() == self.entries.capacity())
            && !self.entries.is_empty()
        {
            self.evict_oldest();
        }
        if self.text.len() + len > self.text_budget() {
            // Nothing left to evict: the entry slots give way (one line always fits).
            let slots = self.limits.max_bytes.saturating_sub(self.text.len() + len) / LINE_OVERHEAD_BYTES;
            self.entries.shrink_to(slots.max(self.entries.len() + 1));
        }
        let budget = self.text_budget();
        reserve_capped(&mut self.text, len, budget);
        let start = (self.text_base + self.text.len() as u64) as u32;
        self.text.extend(keep);
        if cut {
            self.text.extend(CUT_MARKER.as_bytes());
            self.cut_total += 1;
        }
        self.entries.push_back(Entry { ts_us, start, len: len as u32 | if cut { CUT_BIT } else { 0 } });
        let seq = self.next_seq;
        self.next_seq += 1;
        self.lines_total += 1;
        self.bytes_total += len as u64;
        seq
    }

    /// Makes room for more entries when lines of the mean length (this one included) would fit
    /// more of them in the cap; the text ring gives up what the entries take.
    fn grow_entries(&mut self, len: usize) {
        let o = LINE_OVERHEAD_BYTES;
        let mean = (self.text.len() + len) / (self.entries.len() + 1);
        let fits = self.limits.max_bytes / (mean + o);
        let cap = self.entries.capacity();
        let target = fits.min(cap.saturating_mul(2).max(MIN_ENTRY_SLOTS)).min(self.limits.max_lines);
        // Growing by less than 1/32 is not worth a reallocation (of up to 2.3 million entries at
        // a 256 MiB cap): evict instead.
        if target <= cap
            || (cap >= MIN_ENTRY_SLOTS && target < cap + cap / MIN_GROWTH_DIVISOR && target < self.limits.max_lines)
        {
            return;
        }
        // The new slots come out of the text budget: evict until the text fits what is left.
        let budget = self.limits.max_bytes.saturating_sub(target * o);
        while self.text.len() + len > budget && !self.entries.is_empty() {
            self.evict_oldest();
        }
        if self.text.capacity() > budget {
            self.text.shrink_to(budget.max(self.text.len()));
        }
        self.entries.reserve_exact(target - self.entries.len());
    }

    /// New caps: evicts the oldest lines until what is held fits, and releases capacity beyond them.
    pub(super) fn set_limits(&mut self, limits: RingLimits) {
        self.limits = limits;
        let o = LINE_OVERHEAD_BYTES;
        while self.entries.len() > limits.max_lines || self.text.len() + self.entries.len() * o > limits.max_bytes {
            self.evict_oldest();
        }
        let lines = self.entries.len();
        self.entries.shrink_to(limits.max_lines.min(limits.max_bytes / o).max(lines));
        if self.entries.capacity() * o + self.text.len() > limits.max_bytes {
            self.entries.shrink_to(lines);
        }
        let budget = self.text_budget();
        self.text.shrink_to(budget.max(self.text.len()));
    }

    /// Releases spare capacity, keeping every line.
    pub(super) fn trim(&mut self) -> Vec<Trimmed> {
        let limits = self.limits;
        let lines = trim_with(
            &mut self.entries,
            |e| Structure::deque::<Entry>("log_lines", e.len(), e.capacity(), Some(limits.max_lines)),
            shrink_deque,
        );
        let text = trim_with(
            &mut self.text,
            |t| Structure::deque::<u8>("log_text", t.len(), t.capacity(), Some(limits.max_bytes)),
            shrink_deque,
        );
        lines.into_iter().chain(text).collect()
    }

    /// Copies lines out, starting at `cursor`, keeping only lines `filter` accepts.
    pub(super) fn read(&self, cursor: Cursor, limits: ReadLimits, filter: Option<&LineFilter<'_>>) -> Page {
        let mut page = Page { first_seq: self.first_seq, next_seq: self.next_seq, ..Page::default() };
        let held = self.first_seq..self.next_seq;
        let (indexes, forward): (Box<dyn Iterator<Item = usize>>, bool) = match cursor {
            Cursor::After(n) => {
                let from = n.saturating_add(1);
                page.missed = held.start.saturating_sub(from);
                let start = from.clamp(held.start, held.end) - held.start;
                (Box::new(start as usize..self.entries.len()), true)
            }
            Cursor::Before(n) => {
                let end = n.clamp(held.start, held.end) - held.start;
                (Box::new((0..end as usize).rev()), false)
            }
        };
        let mut scratch = Vec::new();
        let mut picked: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        for i in indexes {
            let text = self.text_of(&self.entries[i], &mut scratch);
            if filter.is_some_and(|accept| !accept(text)) {
                continue;
            }
            if picked.len() == limits.lines {
                page.more = true;
                break;
            }
            if bytes + text.len() > limits.bytes {
                page.truncated = true;
                page.more = true;
                break;
            }
            bytes += text.len();
            picked.push(i);
        }
        if !forward {
            picked.reverse();
        }
        page.text.reserve_exact(bytes);
        page.lines.reserve_exact(picked.len());
        for i in picked {
            let entry = self.entries[i];
            let start = page.text.len();
            page.text.extend_from_slice(self.text_of(&entry, &mut scratch));
            let seq = self.first_seq + i as u64;
            page.lines.push((seq, entry.ts_us, start..page.text.len(), entry.cut()));
        }
        page
    }

    /// The text of an entry: a slice of the ring, or of `scratch` when it wraps around the end.
    fn text_of<'a>(&'a self, entry: &Entry, scratch: &'a mut Vec<u8>) -> &'a [u8] {
        let start = entry.start.wrapping_sub(self.text_base as u32) as usize;
        let end = start + entry.len();
        let (a, b) = self.text.as_slices();
        if end <= a.len() {
            &a[start..end]
        } else if start >= a.len() {
            &b[start - a.len()..end - a.len()]
        } else {
            scratch.clear();
            scratch.extend_from_slice(&a[start..]);
            scratch.extend_from_slice(&b[..end - a.len()]);
            scratch
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            let drop_to = entry.start.wrapping_sub(self.text_base as u32) as usize + entry.len();
            self.text.drain(..drop_to);
            self.text_base += drop_to as u64;
            self.first_seq += 1;
            self.evicted_total += 1;
        }
    }
}
