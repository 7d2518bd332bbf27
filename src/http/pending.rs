//! Connections that are not serving a request: still sending a request head, or idle between
//! keep-alive requests. A slow client (slowloris) holds its connections in this state; when too
//! many are in it, or the connection cap is reached, the oldest is closed to make room, so slow or
//! idle clients can never lock out a scrape. Connections serving a request (a live stream
//! included) are never evicted.
//!
//! Each connection's [`Phase`] also gives its deadline: a request head must arrive within
//! [`HEADER_READ_TIMEOUT`] of the connection's start or of its first byte after an idle spell, and
//! a connection may stay idle between requests for [`IDLE_TIMEOUT`]. [`Watched`] wraps the stream
//! to see that first byte.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{HEADER_READ_TIMEOUT, IDLE_TIMEOUT};

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

    /// Registers a new connection (evictable, and reading its first head, until a request arrives).
    pub fn admit(self: &Arc<Self>) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = CancellationToken::new();
        self.lock().push_back((id, close.clone()));
        Ticket {
            pending: self.clone(),
            id,
            close,
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
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

/// What a connection is doing, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Receiving a request head (from the connection's start, or its first byte after idling).
    Head(Instant),
    /// Between keep-alive requests, nothing received yet.
    Idle(Instant),
    /// Serving a request (a live stream included): no deadline.
    Busy,
}

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The request head did not arrive within [`HEADER_READ_TIMEOUT`].
    Header,
    /// Idle longer than [`IDLE_TIMEOUT`].
    Idle,
}

/// One connection's place in [`Pending`] and its phase; leaves the queue when dropped.
#[derive(Debug)]
pub struct Ticket {
    pending: Arc<Pending>,
    id: u64,
    /// Cancelled when the connection is evicted.
    pub close: CancellationToken,
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Ticket {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
        self.changed.notify_one();
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request arrived: the connection is serving and not evictable.
    pub fn busy(&self) {
        self.pending.lock().retain(|(id, _)| *id != self.id);
        self.set(Phase::Busy);
    }

    /// The connection waits for its next request: evictable again, as the newest.
    pub fn idle(&self) {
        {
            let mut queue = self.pending.lock();
            if !queue.iter().any(|(id, _)| *id == self.id) {
                queue.push_back((self.id, self.close.clone()));
            }
        }
        self.set(Phase::Idle(Instant::now()));
    }

    /// Bytes arrived: an idle connection starts receiving a head (and its header timeout).
    pub fn received(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*phase, Phase::Idle(_)) {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out, and why; `None` while serving.
    pub fn deadline(&self) -> Option<(Instant, Expiry)> {
        match self.phase() {
            Phase::Head(since) => Some((since + HEADER_READ_TIMEOUT, Expiry::Header)),
            Phase::Idle(since) => Some((since + IDLE_TIMEOUT, Expiry::Idle)),
            Phase::Busy => None,
        }
    }

    /// Waits until the phase changes (a change made before the call is not missed).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.lock().retain(|(id, _)| *id != self.id);
    }
}

/// Waits until `ticket`'s deadline passes, following its phase changes; returns which one.
pub async fn expired(ticket: &Ticket) -> Expiry {
    loop {
        let changed = ticket.changed();
        let Some((at, why)) = ticket.deadline() else {
            changed.await;
            continue;
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(at) => {
                // The phase may have changed without a wake-up yet: check against the current one.
                if ticket.deadline().is_some_and(|(now_at, _)| now_at <= Instant::now()) {
                    return why;
                }
            }
        }
    }
}

/// A connection's stream that tells its [`Ticket`] when bytes arrive.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    ticket: Arc<Ticket>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, ticket: Arc<Ticket>) -> Self {
        Self { inner, ticket }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ticket.received();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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

    #[test]
    fn phases_give_the_header_and_idle_deadlines() {
        let pending = Arc::new(Pending::default());
        let t = pending.admit();
        assert!(matches!(t.deadline(), Some((_, Expiry::Header))), "a new connection owes a head");
        t.busy();
        assert_eq!(t.deadline(), None, "serving: no deadline");
        t.received();
        assert_eq!(t.phase(), Phase::Busy, "request bodies do not restart anything");
        t.idle();
        let (idle_at, why) = t.deadline().expect("idle deadline");
        assert_eq!(why, Expiry::Idle);
        t.received();
        let (head_at, why) = t.deadline().expect("head deadline");
        assert!(why == Expiry::Header && head_at < idle_at, "the first byte after idling starts the header timeout");
    }
}
