//! Live cursors over a ring: a subscriber holds a sequence number and a wake-up, never lines.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::{Cursor, LogRing, Page, ReadLimits};

/// A live reader of a ring: a cursor and a wake-up. Dropping it frees its subscriber slot.
#[derive(Debug)]
pub struct Subscription {
    ring: Arc<LogRing>,
    after_seq: u64,
    changed: watch::Receiver<u64>,
}

impl Subscription {
    /// A cursor after `after_seq` (the caller took a subscriber slot).
    pub(super) fn new(ring: Arc<LogRing>, after_seq: u64) -> Self {
        let changed = ring.latest.subscribe();
        Self { ring, after_seq, changed }
    }

    /// The next lines after the cursor (at most `limits`), waiting until there is at least one.
    /// `Page::missed` counts lines that were evicted before this subscriber got to them; they
    /// are added to the ring's lag counter. Returns `None` when the ring is closed (its source
    /// was removed) and every line has been delivered.
    pub async fn next_page(&mut self, limits: ReadLimits) -> Option<Page> {
        loop {
            let next_seq = *self.changed.borrow_and_update();
            if next_seq > self.after_seq + 1 {
                let page = self.ring.read(Cursor::After(self.after_seq), limits, None);
                if page.missed > 0 {
                    self.ring.lagged_total.fetch_add(page.missed, Ordering::Relaxed);
                }
                self.after_seq = match page.iter().last() {
                    Some(line) => line.seq,
                    None => self.after_seq.max(page.first_seq.saturating_sub(1)),
                };
                if !page.is_empty() || page.missed > 0 {
                    return Some(page);
                }
            }
            if self.ring.closed.load(Ordering::Acquire) {
                return None;
            }
            self.changed.changed().await.ok()?;
        }
    }

    /// The sequence number of the last line delivered (or skipped).
    pub fn last_seq(&self) -> u64 {
        self.after_seq
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.ring.subscribers.fetch_sub(1, Ordering::AcqRel);
    }
}
