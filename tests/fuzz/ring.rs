//! The log ring (`logs::ring`) as a state machine checked against a plain model: every line ever
//! pushed, in a `VecDeque`. Random sequences of push, set_limits, page reads, subscribe/next page
//! and trim; after each step the ring must hold a suffix of what was pushed (texts as cut by the
//! rules, sequence numbers from 1, never reused), stay within its caps (the 16-byte entries
//! included, allocated capacity too), count what it evicted, and answer reads and subscribers
//! exactly as the model computes from that suffix.

use std::collections::VecDeque;
use std::sync::Arc;

use leakwatch::logs::ring::{
    Cursor, LogRing, Page, ReadLimits, RingLimits, Subscription, CUT_MARKER, LINE_OVERHEAD_BYTES, MIN_LINE_BYTES,
};
use proptest::prelude::*;

use crate::{check, ensure};

/// A stored line: (seq, text, cut).
type Line = (u64, Vec<u8>, bool);

#[derive(Debug, Clone)]
enum Op {
    Push { len: usize, cut: bool },
    SetLimits { max_lines: usize, max_bytes: usize, max_line_bytes: usize },
    Read { after: bool, at: u64, lines: usize, bytes: usize },
    Subscribe { at: u64 },
    NextPage { lines: usize, bytes: usize },
    Trim,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..300, prop::bool::weighted(0.1)).prop_map(|(len, cut)| Op::Push { len, cut }),
        1 => (1usize..60, 0usize..5000, 0usize..400)
            .prop_map(|(max_lines, max_bytes, max_line_bytes)| Op::SetLimits { max_lines, max_bytes, max_line_bytes }),
        2 => (any::<bool>(), 0u64..400, 1usize..30, 0usize..3000)
            .prop_map(|(after, at, lines, bytes)| Op::Read { after, at, lines, bytes }),
        1 => (0u64..400).prop_map(|at| Op::Subscribe { at }),
        2 => (1usize..30, 0usize..3000).prop_map(|(lines, bytes)| Op::NextPage { lines, bytes }),
        1 => Just(Op::Trim),
    ]
}

/// The limits as the ring normalizes them.
fn normalized(l: RingLimits) -> RingLimits {
    let max_bytes = l.max_bytes.max(MIN_LINE_BYTES + LINE_OVERHEAD_BYTES);
    RingLimits {
        max_lines: l.max_lines.max(1),
        max_bytes,
        max_line_bytes: l.max_line_bytes.clamp(MIN_LINE_BYTES, max_bytes - LINE_OVERHEAD_BYTES),
        max_subscribers: l.max_subscribers,
    }
}

/// Line `seq` of length `len` (ASCII, so cutting is a plain prefix).
fn text(seq: u64, len: usize) -> Vec<u8> {
    let mut t = format!("{seq}:").into_bytes();
    t.resize(len, b'a' + (seq % 26) as u8);
    t.truncate(len);
    t
}

struct Model {
    /// Every line pushed: (seq, stored text, cut).
    pushed: VecDeque<Line>,
    limits: RingLimits,
}

impl Model {
    /// The lines the ring holds: the newest `held` pushed.
    fn held(&self, held: usize) -> Vec<&Line> {
        self.pushed.iter().skip(self.pushed.len() - held).collect()
    }
}

fn lines_of(page: &Page) -> Vec<Line> {
    page.iter().map(|l| (l.seq, l.text.to_vec(), l.cut)).collect()
}

/// (lines, missed, truncated, more) the model expects for a read of `held`.
fn model_read(held: &[&Line], first_seq: u64, cursor: Cursor, limits: ReadLimits) -> (Vec<Line>, u64, bool, bool) {
    let (candidates, missed): (Vec<&Line>, u64) = match cursor {
        Cursor::After(n) => {
            (held.iter().copied().filter(|l| l.0 > n).collect(), first_seq.saturating_sub(n.saturating_add(1)))
        }
        Cursor::Before(n) => (held.iter().rev().copied().filter(|l| l.0 < n).collect(), 0),
    };
    let (mut out, mut bytes, mut truncated, mut more) = (Vec::new(), 0, false, false);
    for l in candidates {
        if out.len() == limits.lines {
            more = true;
            break;
        }
        if bytes + l.1.len() > limits.bytes {
            truncated = true;
            more = true;
            break;
        }
        bytes += l.1.len();
        out.push(l.clone());
    }
    if matches!(cursor, Cursor::Before(_)) {
        out.reverse();
    }
    (out, missed, truncated, more)
}

#[test]
fn ring_matches_its_model() {
    let start = (1usize..40, 0usize..3000, 0usize..300);
    check(
        "ring::model",
        (start, prop::collection::vec(op(), 1..150)),
        |((max_lines, max_bytes, max_line_bytes), ops)| {
            let limits = RingLimits { max_lines, max_bytes, max_line_bytes, max_subscribers: 1 };
            let ring = Arc::new(LogRing::new(limits));
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let mut m = Model { pushed: VecDeque::new(), limits: normalized(limits) };
            // The live subscription and its cursor in the model.
            let mut live: Option<(Subscription, u64)> = None;
            for op in ops {
                match op {
                    Op::Push { len, cut } => {
                        let seq = m.pushed.len() as u64 + 1;
                        let raw = text(seq, len);
                        let got = ring.push(&raw, cut);
                        ensure!(got == seq, "push got seq {got}, model {seq}");
                        let l = m.limits;
                        let stored = if cut || raw.len() > l.max_line_bytes {
                            let mut t = raw[..raw.len().min(l.max_line_bytes - CUT_MARKER.len())].to_vec();
                            t.extend_from_slice(CUT_MARKER.as_bytes());
                            (seq, t, true)
                        } else {
                            (seq, raw, false)
                        };
                        m.pushed.push_back(stored);
                        ensure!(ring.stats().lines >= 1, "the newest line is always held");
                    }
                    Op::SetLimits { max_lines, max_bytes, max_line_bytes } => {
                        let new = RingLimits { max_lines, max_bytes, max_line_bytes, max_subscribers: 1 };
                        ring.set_limits(new);
                        m.limits = normalized(new);
                        ensure!(ring.limits() == m.limits, "limits {:?} != model {:?}", ring.limits(), m.limits);
                    }
                    Op::Read { after, at, lines, bytes } => {
                        let cursor = if after { Cursor::After(at) } else { Cursor::Before(at) };
                        let limits = ReadLimits { lines, bytes };
                        let page = ring.read(cursor, limits, None);
                        let s = ring.stats();
                        let held = m.held(s.lines);
                        let (want, missed, truncated, more) = model_read(&held, s.first_seq, cursor, limits);
                        ensure!(lines_of(&page) == want, "{cursor:?} {limits:?}: {:?} != {want:?}", lines_of(&page));
                        ensure!(
                            (page.missed, page.truncated, page.more) == (missed, truncated, more),
                            "{cursor:?}: (missed, truncated, more) = {:?}, model {:?}",
                            (page.missed, page.truncated, page.more),
                            (missed, truncated, more)
                        );
                    }
                    Op::Subscribe { at } => {
                        drop(live.take()); // frees the only slot
                        let sub = ring.subscribe(at).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        live = Some((sub, at));
                    }
                    Op::NextPage { lines, bytes } => {
                        let Some((sub, cursor)) = &mut live else { continue };
                        let s = ring.stats();
                        if s.next_seq <= *cursor + 1 {
                            continue; // nothing new: next_page would wait
                        }
                        let limits = ReadLimits { lines, bytes };
                        let held = m.held(s.lines);
                        let (want, missed, _, _) = model_read(&held, s.first_seq, Cursor::After(*cursor), limits);
                        if want.is_empty() && missed == 0 {
                            continue; // a page too small for the next line: next_page would wait
                        }
                        let lagged = s.lagged_total;
                        let page = rt.block_on(sub.next_page(limits));
                        let page = page.ok_or_else(|| TestCaseError::fail("the ring is not closed"))?;
                        ensure!(lines_of(&page) == want, "next page {:?} != {want:?}", lines_of(&page));
                        ensure!(page.missed == missed, "missed {} != {missed}", page.missed);
                        ensure!(ring.stats().lagged_total == lagged + missed, "lag counted");
                        *cursor = want.last().map_or(s.first_seq - 1, |l| l.0);
                        ensure!(sub.last_seq() == *cursor, "cursor {} != model {}", sub.last_seq(), *cursor);
                    }
                    Op::Trim => {
                        let before =
                            ring.read(Cursor::After(0), ReadLimits { lines: usize::MAX, bytes: usize::MAX }, None);
                        ring.trim();
                        let after =
                            ring.read(Cursor::After(0), ReadLimits { lines: usize::MAX, bytes: usize::MAX }, None);
                        ensure!(before == after, "trim changed the lines");
                    }
                }
                // Invariants after every step.
                let s = ring.stats();
                let l = m.limits;
                let pushed = m.pushed.len() as u64;
                ensure!(s.next_seq == pushed + 1 && s.lines_total == pushed, "{s:?}");
                ensure!(s.first_seq + s.lines as u64 == s.next_seq, "{s:?}");
                ensure!(s.evicted_total == pushed - s.lines as u64, "every line not held was evicted: {s:?}");
                ensure!(s.lines <= l.max_lines, "{} lines over the cap {}", s.lines, l.max_lines);
                let held = m.held(s.lines);
                let text: usize = held.iter().map(|h| h.1.len()).sum();
                ensure!(s.bytes == text, "text bytes {} != model {text}", s.bytes);
                ensure!(s.bytes + s.lines * LINE_OVERHEAD_BYTES <= l.max_bytes, "held over the cap: {s:?} {l:?}");
                let allocated = s.text_capacity + s.line_capacity * LINE_OVERHEAD_BYTES;
                ensure!(allocated <= l.max_bytes, "allocated {allocated} over the cap {}: {s:?}", l.max_bytes);
                let bytes_total: usize = m.pushed.iter().map(|h| h.1.len()).sum();
                ensure!(s.bytes_total == bytes_total as u64, "bytes_total {} != {bytes_total}", s.bytes_total);
                let all = ring.read(Cursor::After(0), ReadLimits { lines: usize::MAX, bytes: usize::MAX }, None);
                let want: Vec<_> = held.into_iter().cloned().collect();
                ensure!(lines_of(&all) == want, "held lines differ from the model's suffix");
            }
            Ok(())
        },
    );
}
