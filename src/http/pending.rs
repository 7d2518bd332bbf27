//! Connections that are not serving a request: still sending their first request head, or idle
//! between keep-alive requests. A slow client (slowloris) holds its connections in this state;
//! when too many are in it, or the connection cap is reached, the oldest is closed to make room,
//! so slow or idle clients can never lock out a scrape. Connections serving a request (a live
//! stream included) are never evicted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// The evictable connections, oldest first.
#[derive(Debug, Default)]
pub struct Pending {
    queue: Mutex<VecDeque<(u64, CancellationToken)>>,
    next_id: AtomicU64,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(u64, CancellationToken)>> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection (evictable until its first request arrives).
    pub fn admit(self: &Arc<Self>) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = CancellationToken::new();
        self.lock().push_back((id, close.clone()));
        Ticket { pending: self.clone(), id, close }
    }

    /// Closes the oldest evictable connection; false when there is none.
    pub fn evict_oldest(&self) -> bool {
        match self.lock().pop_front() {
            Some((_, close)) => {
                close.cancel();
                true
            }
            None => false,
        }
    }

    /// Evictable connections now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One connection's place in [`Pending`]; leaves it when dropped.
#[derive(Debug)]
pub struct Ticket {
    pending: Arc<Pending>,
    id: u64,
    /// Cancelled when the connection is evicted.
    pub close: CancellationToken,
}

impl Ticket {
    /// A request arrived: the connection is serving and not evictable.
    pub fn busy(&self) {
        self.pending.lock().retain(|(id, _)| *id != self.id);
    }

    /// The connection waits for its next request: evictable again, as the newest.
    pub fn idle(&self) {
        let mut queue = self.pending.lock();
        if !queue.iter().any(|(id, _)| *id == self.id) {
            queue.push_back((self.id, self.close.clone()));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.busy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_evictable_connection_goes_first_and_busy_ones_are_kept() {
        let pending = Arc::new(Pending::default());
        let a = pending.admit();
        let b = pending.admit();
        let c = pending.admit();
        b.busy();
        assert_eq!(pending.len(), 2);
        assert!(pending.evict_oldest());
        assert!(a.close.is_cancelled() && !b.close.is_cancelled() && !c.close.is_cancelled());
        a.idle(); // an evicted connection that is still closing comes back as the newest
        assert!(pending.evict_oldest());
        assert!(c.close.is_cancelled(), "c was older than a's return");
        drop(a);
        assert_eq!(pending.len(), 0);
        b.idle();
        b.idle();
        assert_eq!(pending.len(), 1, "idle twice is one entry");
        drop(b);
        assert!(!pending.evict_oldest(), "a dropped ticket leaves the queue");
    }
}
