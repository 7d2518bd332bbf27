//! Connections that are not serving a request: still sending a request head, or idle between
//! keep-alive requests. A slow client (slowloris) holds its connections in this state; when too
//! many are in it, or the connection cap is reached, the oldest is closed to make room, so slow or
//! idle clients can never lock out a scrape. Connections serving a request (a live stream
//! included) are never evicted, nor are connections whose whole request head has arrived (seen
//! by [`Watched`]: its blank line) or that are younger than [`EVICT_MIN_AGE`] without a byte
//! seen yet (in a burst of new connections, a request may wait in the socket until its
//! connection's task first runs): a request that was sent is answered.
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
use std::time::Duration;
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{HEADER_READ_TIMEOUT, IDLE_TIMEOUT};

/// How long a connection that has sent nothing (that leakwatch has seen) is kept from eviction.
pub(crate) const EVICT_MIN_AGE: Duration = Duration::from_secs(1);

/// A connection in the queue: its id, its close token and its phase.
type Entry = (u64, CancellationToken, Arc<Mutex<State>>);

/// The connections without a request in flight, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    queue: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new connection (evictable, and reading its first head, until a request arrives).
    pub(crate) fn admit(self: &Arc<Self>) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = CancellationToken::new();
        let state = Arc::new(Mutex::new(State::new(Phase::Head(Instant::now()))));
        self.lock().push_back((id, close.clone(), state.clone()));
        Ticket { pending: self.clone(), id, close, state, changed: Notify::new() }
    }

    /// Closes the oldest evictable connection (see the module doc); false when there is none.
    pub(crate) fn evict_oldest(&self) -> bool {
        let now = Instant::now();
        let mut queue = self.lock();
        let found = queue.iter().position(|(_, _, state)| lock(state).evictable(now));
        match found.and_then(|i| queue.remove(i)) {
            Some((_, close, _)) => {
                close.cancel();
                true
            }
            None => false,
        }
    }

    /// Closes every connection without a request in flight (shutdown: nothing to finish).
    pub(crate) fn close_all(&self) {
        for (_, close, _) in self.lock().drain(..) {
            close.cancel();
        }
    }

    /// Evictable connections now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What a connection is doing, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Receiving a request head (from the connection's start, or its first byte after idling).
    Head(Instant),
    /// Between keep-alive requests, nothing received yet.
    Idle(Instant),
    /// Serving a request (a live stream included): no deadline.
    Busy,
}

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The request head did not arrive within [`HEADER_READ_TIMEOUT`].
    Header,
    /// Idle longer than [`IDLE_TIMEOUT`].
    Idle,
}

/// A connection's phase and what has been seen of its request head.
#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bytes seen in this phase.
    seen: bool,
    /// The last bytes seen, to find the blank line that ends a head across reads.
    tail: [u8; 3],
}

impl State {
    fn new(phase: Phase) -> Self {
        Self { phase, seen: false, tail: [0; 3] }
    }

    /// Whether closing it loses nothing that was sent: a head in part (a slow client), an idle
    /// connection, or a silent one older than [`EVICT_MIN_AGE`].
    fn evictable(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Head(since) | Phase::Idle(since) => self.seen || since + EVICT_MIN_AGE <= now,
            Phase::Busy => false,
        }
    }

    /// Scans `bytes` for the end of a request head (`\r\n\r\n`, or `\n\n` as hyper accepts).
    fn head_ends_in(&mut self, bytes: &[u8]) -> bool {
        let mut found = false;
        for &b in bytes {
            let [a, c, d] = self.tail;
            found |= b == b'\n' && ((a, c, d) == (b'\r', b'\n', b'\r') || d == b'\n');
            self.tail = [c, d, b];
        }
        found
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection's place in [`Pending`] and its phase; leaves the queue when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    pending: Arc<Pending>,
    id: u64,
    /// Cancelled when the connection is evicted.
    pub(crate) close: CancellationToken,
    state: Arc<Mutex<State>>,
    changed: Notify,
}

impl Ticket {
    fn set(&self, phase: Phase) {
        *lock(&self.state) = State::new(phase);
        self.changed.notify_one();
    }

    /// The phase now.
    pub(crate) fn phase(&self) -> Phase {
        lock(&self.state).phase
    }

    fn leave_queue(&self) {
        self.pending.lock().retain(|(id, _, _)| *id != self.id);
    }

    /// A request arrived: the connection is serving and not evictable.
    pub(crate) fn busy(&self) {
        self.leave_queue();
        self.set(Phase::Busy);
    }

    /// The connection waits for its next request: evictable again, as the newest.
    pub(crate) fn idle(&self) {
        {
            let mut queue = self.pending.lock();
            if !queue.iter().any(|(id, _, _)| *id == self.id) {
                queue.push_back((self.id, self.close.clone(), self.state.clone()));
            }
        }
        self.set(Phase::Idle(Instant::now()));
    }

    /// `bytes` arrived: an idle connection starts receiving a head (and its header timeout); a
    /// connection whose head is complete leaves the queue (its request is in flight).
    pub(crate) fn received(&self, bytes: &[u8]) {
        let mut state = lock(&self.state);
        let restarted = matches!(state.phase, Phase::Idle(_));
        if restarted {
            state.phase = Phase::Head(Instant::now());
        }
        state.seen = true;
        let complete = matches!(state.phase, Phase::Head(_)) && state.head_ends_in(bytes);
        drop(state);
        if complete {
            self.leave_queue();
        }
        if restarted {
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out, and why; `None` while serving.
    pub(crate) fn deadline(&self) -> Option<(Instant, Expiry)> {
        match self.phase() {
            Phase::Head(since) => Some((since + HEADER_READ_TIMEOUT, Expiry::Header)),
            Phase::Idle(since) => Some((since + IDLE_TIMEOUT, Expiry::Idle)),
            Phase::Busy => None,
        }
    }

    /// Waits until the phase changes (a change made before the call is not missed).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.leave_queue();
    }
}

/// Waits until `ticket`'s deadline passes, following its phase changes; returns which one.
pub(crate) async fn expired(ticket: &Ticket) -> Expiry {
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
pub(crate) struct Watched<S> {
    inner: S,
    ticket: Arc<Ticket>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S, ticket: Arc<Ticket>) -> Self {
        Self { inner, ticket }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.ticket.received(&buf.filled()[before..]);
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

    /// A head in part: evictable at once.
    const PARTIAL: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n";

    #[test]
    fn the_oldest_evictable_connection_goes_first_and_busy_ones_are_kept() {
        let pending = Arc::new(Pending::default());
        let a = pending.admit();
        let b = pending.admit();
        let c = pending.admit();
        a.received(PARTIAL);
        c.received(PARTIAL);
        b.busy();
        assert_eq!(pending.len(), 2);
        assert!(pending.evict_oldest());
        assert!(a.close.is_cancelled() && !b.close.is_cancelled() && !c.close.is_cancelled());
        a.idle(); // an evicted connection that is still closing comes back as the newest
        a.received(PARTIAL);
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

    #[tokio::test(start_paused = true)]
    async fn a_sent_request_is_never_evicted_and_a_silent_connection_only_after_the_minimum_age() {
        let pending = Arc::new(Pending::default());
        let silent = pending.admit();
        let whole = pending.admit();
        whole.received(b"GET /metrics HTTP/1.1\r\nHost: t\r");
        assert_eq!(pending.len(), 2, "not complete yet");
        whole.received(b"\n\r\n");
        assert_eq!(pending.len(), 1, "a complete head (across reads) leaves the queue");
        let bare = pending.admit();
        bare.received(b"GET / HTTP/1.0\n\n");
        assert_eq!(pending.len(), 1, "LF-only heads count too");
        assert!(!pending.evict_oldest(), "a silent new connection may hold a request not read yet");
        tokio::time::advance(EVICT_MIN_AGE).await;
        assert!(pending.evict_oldest());
        assert!(silent.close.is_cancelled() && !whole.close.is_cancelled() && !bare.close.is_cancelled());
        whole.idle();
        assert!(!pending.evict_oldest(), "just idle: a next request may be on its way");
        whole.received(b"G");
        assert!(pending.evict_oldest(), "a next head in part");
        let last = pending.admit();
        pending.close_all();
        assert!(last.close.is_cancelled() && pending.len() == 0, "shutdown closes them all at once");
    }

    #[test]
    fn phases_give_the_header_and_idle_deadlines() {
        let pending = Arc::new(Pending::default());
        let t = pending.admit();
        assert!(matches!(t.deadline(), Some((_, Expiry::Header))), "a new connection owes a head");
        t.busy();
        assert_eq!(t.deadline(), None, "serving: no deadline");
        t.received(b"body");
        assert_eq!(t.phase(), Phase::Busy, "request bodies do not restart anything");
        t.idle();
        let (idle_at, why) = t.deadline().expect("idle deadline");
        assert_eq!(why, Expiry::Idle);
        t.received(b"G");
        let (head_at, why) = t.deadline().expect("head deadline");
        assert!(why == Expiry::Header && head_at < idle_at, "the first byte after idling starts the header timeout");
    }
}
