//! The HTTP server (hyper 1.x). Endpoints:
//!
//! | path       | what |
//! |------------|------|
//! | `/metrics` | Prometheus text format: one `metrics::Scrape` of the latest snapshot, rendered and gzipped once per sample; `?detail=1` adds the detail families |
//! | `/healthz` | 200 while the process runs |
//! | `/readyz`  | 200 after the first sample, 503 before |
//! | `/logs`    | the log sources and their figures (JSON) |
//! | `/logs/{source}` | a page of lines: newest first by default, cursors, filters, byte cap (JSON or text) |
//! | `/logs/{source}/stream` | Server-Sent Events: a backlog or a resume point, then live lines |
//! | `/status`  | leakwatch, the latest snapshot, every internal structure's size and cap, cleanups (JSON) |
//! | `/alerts`  | pending, firing and recently resolved alerts, and the leak detector (JSON) |
//! | `/alerts/history` | the bounded alert transition history, newest first (JSON) |
//! | `/`        | the web console for a browser (`Accept: text/html`, `console`), else a short index |
//! | `/index.txt` | the short index |
//! | `/api/history` | the in-process history of key figures: `since`, `after_seq`, `limit` pages (JSON) |
//!
//! Admin endpoints (`POST`) exist only with an admin token file and need its bearer token
//! (`admin`): `POST /-/reload` reloads the config file ([`crate::reload`]), `POST
//! /admin/cleanup` runs a cleanup now ([`crate::cleanup`]).
//!
//! Connections are capped (a permit each), a request head must arrive within
//! `HEADER_READ_TIMEOUT`, a keep-alive connection idle for `IDLE_TIMEOUT` is closed, and accept
//! errors back off instead of ending the server. Connections that are not serving a request (still
//! sending a request head, or idle between keep-alive requests) are evictable: when more than
//! `MAX_IDLE_CONNECTIONS` are, or the cap is reached, the oldest is closed to make room, so slow
//! clients (slowloris) cannot lock out a scrape. A request head is at most 64 KiB (hyper answers
//! 431 beyond it, and 414 for a longer URI), admin requests carry no body (413 above
//! `routes::MAX_ADMIN_BODY`), and the server's figures are [`HttpStats`].
//!
//! With TLS on (`--web.config.file`), each connection's handshake runs in its task under
//! `tls::HANDSHAKE_TIMEOUT` while the connection holds its permit and counts as idle (a slow
//! handshake is a slow client); the web config's checks run before routing (`guard`).

pub(crate) mod admin;
mod alerts;
mod body;
pub(crate) mod cache;
#[cfg(test)]
mod conn_tests;
pub(crate) mod console;
mod encoding;
mod guard;
mod history;
mod logs;
mod pending;
mod routes;
pub mod sse;
mod stats;
mod status;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

pub use logs::PAGE_MEMORY_BUDGET;
pub(crate) use routes::AppState;
pub use stats::{EvictReason, HttpFigures, HttpStats, Route};

/// Most concurrent connections; beyond it new connections are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// Most connections not serving a request; beyond it the oldest of them is closed.
pub(crate) const MAX_IDLE_CONNECTIONS: usize = 64;
/// Time a client has to send a request head: from the connection's start, or from the first byte
/// of the next request on a keep-alive connection.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a keep-alive connection may wait for its next request. Above the common scrape
/// intervals (15 s to 1 min, Prometheus's default), so a scraper's connection is reused from
/// scrape to scrape; a client that went away without closing is dropped after it.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest request head (request line and headers): one byte more gets 431 (hyper's
/// `max_header_size`, checked on the parsed head, so a head that arrives in one large read is
/// held to it too), a longer URI 414 or 431. It is also hyper's read buffer cap.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long connections serving a request may take to finish on shutdown (connections without a
/// request in flight are closed at once).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The answer to a connection refused at the cap (all serving), written before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
    Content-Length: 46\r\nConnection: close\r\n\r\nbusy: every connection is serving; retry soon\n";

/// Binds the listener (separately, so a bind error is reported before anything starts).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `token` is cancelled, then drains open connections for up to [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(listener: TcpListener, state: AppState, token: CancellationToken) {
    let state = Arc::new(state);
    let stats = state.http_stats().clone();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: wait instead of spinning or exiting.
                tracing::warn!("accept failed: {e}; retrying in 1s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Per connection: a changed web config applies from the next connection on.
        let tls = state.tls().map(tokio_rustls::TlsAcceptor::from);
        let Some(permit) = make_room(&permits, &stats).await else {
            if tls.is_none() {
                // Every connection is serving: say so rather than close in silence (best effort,
                // never waiting on the client).
                let _ = stream.try_write(REFUSED);
            }
            continue;
        };
        let ticket = Arc::new(stats.pending.admit());
        let watcher = graceful.watcher();
        let open = stats.opened();
        let (state, stats) = (state.clone(), stats.clone());
        tokio::spawn(async move {
            // A TLS handshake in progress is an idle connection: evictable, and bounded in time
            // (`tls::accept` logs a failed one).
            let io = match tls {
                None => Some(Either::Left(stream)),
                Some(acceptor) => tokio::select! {
                    accepted = tls::accept(&acceptor, stream) => accepted.map(Either::Right),
                    _ = ticket.close.cancelled() => None,
                },
            };
            if let Some(io) = io {
                let conn = watcher.watch(connection(io, state, ticket.clone()));
                run_connection(conn, &ticket, &stats).await;
            }
            drop((permit, open));
        });
    }
    drop(listener);
    // Connections still sending a head, or idle between requests, have nothing to finish.
    stats.pending.close_all();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("open HTTP connections did not finish within {SHUTDOWN_GRACE:?}");
    }
}

/// A permit for a new connection: at the cap, or with too many connections doing nothing, the
/// oldest idle one is closed first. `None` when every connection is serving (the new one is refused).
async fn make_room(permits: &Arc<Semaphore>, stats: &HttpStats) -> Option<OwnedSemaphorePermit> {
    if permits.available_permits() == 0 {
        if stats.pending.evict_oldest() {
            stats.evicted(EvictReason::ConnectionCap);
        }
    } else if stats.pending.len() >= MAX_IDLE_CONNECTIONS && stats.pending.evict_oldest() {
        stats.evicted(EvictReason::IdleCap);
    }
    if let Ok(p) = permits.clone().try_acquire_owned() {
        return Some(p);
    }
    // An evicted connection gives its permit back as soon as its task sees the eviction.
    match tokio::time::timeout(Duration::from_millis(100), permits.clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            stats.refused();
            tracing::debug!("connection cap {MAX_CONNECTIONS} reached, all serving; closing a new connection");
            None
        }
    }
}

/// One accepted connection served over `stream` (a TCP stream, or TLS over one).
fn connection<S>(
    stream: S,
    state: Arc<AppState>,
    ticket: Arc<pending::Ticket>,
) -> impl GracefulConnection<Error = hyper::Error> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service(state, ticket.clone());
    http1::Builder::new()
        .timer(TokioTimer::new())
        // The head and idle deadlines are the ticket's (hyper's own header timer would also end
        // idle keep-alive connections at the header timeout).
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(pending::Watched::new(stream, ticket)), service)
}

/// The per-request service: marks the connection serving while a request is handled, and idle
/// again once a whole body is answered (a stream keeps it serving).
fn service(
    state: Arc<AppState>,
    ticket: Arc<pending::Ticket>,
) -> impl hyper::service::Service<Request<Incoming>, Response = Response<body::Body>, Error = Infallible, Future: Send>
{
    hyper::service::service_fn(move |req| {
        let (state, ticket) = (state.clone(), ticket.clone());
        async move {
            ticket.busy();
            let response = routes::handle(state, req).await;
            if matches!(&response, Ok(r) if !r.body().is_stream()) {
                ticket.idle();
            }
            response
        }
    })
}

/// Drives one connection until it ends, is evicted, or overruns its head or idle deadline.
async fn run_connection<C>(conn: C, ticket: &pending::Ticket, stats: &HttpStats)
where
    C: std::future::Future<Output = Result<(), hyper::Error>>,
{
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!("connection ended with an error: {e}");
            }
        }
        _ = ticket.close.cancelled() => tracing::debug!("closed an idle connection to make room"),
        expiry = pending::expired(ticket) => match expiry {
            pending::Expiry::Header => {
                stats.header_timeout();
                tracing::debug!("closed a connection whose request head did not arrive within {HEADER_READ_TIMEOUT:?}");
            }
            pending::Expiry::Idle => {
                stats.evicted(EvictReason::IdleTimeout);
                tracing::debug!("closed a connection idle for {IDLE_TIMEOUT:?}");
            }
        },
    }
}
