//! The HTTP server (hyper 1.x). Endpoints:
//!
//! | path       | what |
//! |------------|------|
//! | `/metrics` | Prometheus text format, rendered from the latest snapshot (cached per snapshot) |
//! | `/healthz` | 200 while the process runs |
//! | `/readyz`  | 200 after the first sample, 503 before |
//! | `/logs`    | the log sources and their figures (JSON) |
//! | `/logs/{source}` | a page of lines: newest first by default, cursors, filters, byte cap (JSON or text) |
//! | `/logs/{source}/stream` | Server-Sent Events: a backlog or a resume point, then live lines |
//! | `/status`  | leakwatch, the latest snapshot, every internal structure's size and cap, cleanups (JSON) |
//! | `/alerts`  | pending, firing and recently resolved alerts, and the leak detector (JSON) |
//! | `/alerts/history` | the bounded alert transition history, newest first (JSON) |
//! | `/`        | a short index |
//!
//! Admin endpoints (`POST`) exist only with an admin token file and need its bearer token
//! ([`admin`]): `POST /-/reload` reloads the config file ([`crate::reload`]), `POST
//! /admin/cleanup` runs a cleanup now ([`crate::cleanup`]).
//!
//! Connections are capped (a permit each), headers must arrive within a timeout, and accept
//! errors back off instead of ending the server. Connections that are not serving a request (still
//! sending their first request head, or idle between keep-alive requests) are evictable: when
//! more than [`MAX_IDLE_CONNECTIONS`] are, or the cap is reached, the oldest is closed to make
//! room, so slow clients (slowloris) cannot lock out a scrape.
//!
//! With TLS on (`--web.config.file`), each connection's handshake runs in its task under
//! [`tls::HANDSHAKE_TIMEOUT`] while the connection holds its permit and counts as idle (a slow
//! handshake is a slow client); the web config's checks run before routing (`guard`).

pub mod admin;
mod alerts;
mod body;
pub mod cache;
mod guard;
mod logs;
mod pending;
mod routes;
pub mod sse;
mod status;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

pub use routes::AppState;

/// Most concurrent connections; beyond it new connections are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Most connections not serving a request; beyond it the oldest of them is closed.
pub const MAX_IDLE_CONNECTIONS: usize = 64;
/// Time a client has to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may take to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds the listener (separately, so a bind error is reported before anything starts).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `token` is cancelled, then drains open connections for up to [`SHUTDOWN_GRACE`].
pub async fn serve(listener: TcpListener, state: AppState, token: CancellationToken) {
    let state = Arc::new(state);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let pending = Arc::new(pending::Pending::default());
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
        // Make room: at the cap, or with too many connections doing nothing, close the oldest idle one.
        if permits.available_permits() == 0 || pending.len() >= MAX_IDLE_CONNECTIONS {
            pending.evict_oldest();
        }
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            // An evicted connection gives its permit back as soon as its task sees the eviction.
            Err(_) => match tokio::time::timeout(Duration::from_millis(100), permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    tracing::debug!("connection cap {MAX_CONNECTIONS} reached, all serving; closing a new connection");
                    continue;
                }
            },
        };
        // Per connection: a changed web config applies from the next connection on.
        let tls = state.tls().map(tokio_rustls::TlsAcceptor::from);
        let ticket = Arc::new(pending.admit());
        let close = ticket.close.clone();
        let state = state.clone();
        let service = hyper::service::service_fn(move |req| {
            let (state, ticket) = (state.clone(), ticket.clone());
            async move {
                ticket.busy();
                let response = routes::handle(state, req).await;
                // A whole body is written at once; a stream keeps the connection serving.
                if matches!(&response, Ok(r) if !r.body().is_stream()) {
                    ticket.idle();
                }
                response
            }
        });
        let watcher = graceful.watcher();
        let conn = async move {
            // A TLS handshake in progress is an idle connection: evictable, and bounded in time.
            let io = match tls {
                None => Either::Left(stream),
                Some(acceptor) => Either::Right(tls::accept(&acceptor, stream).await?),
            };
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(io), service);
            Some(watcher.watch(conn).await)
        };
        tokio::spawn(async move {
            tokio::select! {
                result = conn => {
                    // `None`: the TLS handshake failed (logged by `tls::accept`).
                    if let Some(Err(e)) = result {
                        tracing::debug!("connection ended with an error: {e}");
                    }
                }
                _ = close.cancelled() => tracing::debug!("closed an idle connection to make room"),
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("open HTTP connections did not finish within {SHUTDOWN_GRACE:?}");
    }
}
