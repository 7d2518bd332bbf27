//! One connection as `serve` runs it, over an in-memory stream with paused time: the idle and
//! header deadlines, keep-alive reuse across a scrape interval, live streams exempt from both,
//! and the request size limits (431, 414, 413).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::info::StaticInfo;
use crate::logs::ring::RingLimits;
use crate::logs::{LogSource, LogSources, SourceKind};
use crate::snapshot::Snapshot;

fn state() -> Arc<AppState> {
    let (_tx, rx) = watch::channel(Arc::new(Snapshot::empty("t")));
    let limits = RingLimits { max_lines: 100, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 4 };
    let source = Arc::new(LogSource::new("app", SourceKind::Stdout, limits));
    source.ring.push(b"a line", false);
    let logs = Arc::new(LogSources::new(vec![source]));
    Arc::new(AppState::new(rx, StaticInfo::from_env(|_| None), logs, CancellationToken::new()))
}

/// A served connection: the client's end, and the task serving the other end.
fn open(state: &Arc<AppState>) -> (DuplexStream, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(256 << 10);
    let stats = state.http_stats().clone();
    let ticket = Arc::new(stats.pending.admit());
    let conn = connection(server, state.clone(), ticket.clone());
    let open = stats.opened();
    let task = tokio::spawn(async move {
        run_connection(conn, &ticket, &stats).await;
        drop(open);
    });
    (client, task)
}

/// Reads until `needle` has arrived (or the stream ends); returns what was read.
async fn read_until(client: &mut DuplexStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Whether the server closed the connection: reading gives end of stream.
async fn closed(client: &mut DuplexStream) -> bool {
    let mut buf = [0u8; 1024];
    matches!(tokio::time::timeout(Duration::from_millis(10), client.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_is_reused_across_a_scrape_interval_and_closed_after_the_idle_timeout() {
    let state = state();
    let (mut client, task) = open(&state);
    client.write_all(HEALTHZ).await.unwrap();
    assert!(read_until(&mut client, "ok\n").await.starts_with("HTTP/1.1 200"));
    // Prometheus's default interval: well past the header timeout, and the connection still serves.
    tokio::time::sleep(Duration::from_secs(60)).await;
    client.write_all(HEALTHZ).await.unwrap();
    assert!(read_until(&mut client, "ok\n").await.starts_with("HTTP/1.1 200"), "reused after 60 s idle");
    tokio::time::sleep(IDLE_TIMEOUT - Duration::from_secs(1)).await;
    assert!(!task.is_finished() && !closed(&mut client).await, "open just before the idle timeout");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(closed(&mut client).await, "closed after the idle timeout");
    task.await.unwrap();
    let f = state.http_stats().figures();
    assert!(f.connections_evicted.contains(&(EvictReason::IdleTimeout, 1)), "{f:?}");
    assert_eq!((f.header_timeouts, f.connections_idle), (0, 0));
    assert!(f.requests.contains(&(Route::Status, "2xx", 2)), "{f:?}");
}

#[tokio::test(start_paused = true)]
async fn a_request_head_must_arrive_within_the_header_timeout_also_after_an_idle_spell() {
    let state = state();
    // A connection that never completes its first head.
    let (mut slow, first) = open(&state);
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(HEADER_READ_TIMEOUT + Duration::from_secs(1)).await;
    assert!(closed(&mut slow).await, "closed by the header timeout");
    first.await.unwrap();
    // A keep-alive connection idle for 30 s, then a head trickled in: the header timeout runs
    // from its first byte, not from the start of the idle spell.
    let (mut client, task) = open(&state);
    client.write_all(HEALTHZ).await.unwrap();
    read_until(&mut client, "ok\n").await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    client.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(HEADER_READ_TIMEOUT - Duration::from_secs(1)).await;
    assert!(!task.is_finished(), "still within the header timeout of the second head");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(closed(&mut client).await);
    task.await.unwrap();
    assert_eq!(state.http_stats().figures().header_timeouts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_live_stream_is_exempt_from_both_deadlines() {
    let state = state();
    let (mut client, task) = open(&state);
    client.write_all(b"GET /logs/app/stream HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    assert!(read_until(&mut client, "a line").await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(IDLE_TIMEOUT * 2).await;
    assert!(read_until(&mut client, "keep-alive").await.contains(": keep-alive"), "still streaming");
    assert!(!task.is_finished());
    let f = state.http_stats().figures();
    assert_eq!((f.connections_idle, f.header_timeouts), (0, 0));
    drop(client);
}

#[tokio::test]
async fn oversized_heads_long_uris_and_admin_bodies_are_refused() {
    let state = state();
    let answer = |request: Vec<u8>| {
        let state = state.clone();
        async move {
            let (mut client, task) = open(&state);
            // The server may answer before the whole request is written.
            let _ = client.write_all(&request).await;
            let reply = read_until(&mut client, "\r\n\r\n").await;
            drop(client);
            let _ = task.await;
            reply
        }
    };
    let big_header = format!("GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(2 * MAX_HEAD_BYTES));
    let reply = answer(big_header.into_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply:?}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert!(answer(format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{many}\r\n").into_bytes())
        .await
        .starts_with("HTTP/1.1 431"));
    let long_uri = format!("GET /logs/{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(2 * MAX_HEAD_BYTES));
    let reply = answer(long_uri.into_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 414") || reply.starts_with("HTTP/1.1 431"), "{reply}");
    // A 1 GiB admin body is refused from its Content-Length, before it is sent.
    let post = b"POST /admin/cleanup HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
    let reply = answer(post).await;
    assert!(reply.starts_with("HTTP/1.1 413") && reply.to_ascii_lowercase().contains("connection: close"), "{reply}");
    let chunked = b"POST /-/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    assert!(answer(chunked).await.starts_with("HTTP/1.1 413"));
    // Without a body: the token check (no token configured: 404).
    let empty = b"POST /admin/cleanup HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".to_vec();
    assert!(answer(empty).await.starts_with("HTTP/1.1 404"));
    let f = state.http_stats().figures();
    assert!(f.requests.contains(&(Route::Admin, "4xx", 3)), "{f:?}");
    assert_eq!(f.connections_open, 0, "every connection closed");
}
