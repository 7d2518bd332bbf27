//! `GET /status`: one JSON document with the typed [`Summary`](crate::summary::Summary) that
//! `leakwatch status` reads, leakwatch's own figures, the latest snapshot, the size and cap of
//! every internal structure, and the cleanup statistics; `GET /oom`: the snapshot's OOM
//! section alone; `POST /admin/cleanup`: a cleanup now, answered with its report. The shape is
//! documented in docs/status.md.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::body::Body;
use crate::cleanup::{Cleanup, CleanupStats, Trigger};
use crate::measure::Structure;
use crate::snapshot::Snapshot;

/// The `/status` document.
#[derive(Debug, Serialize)]
pub(crate) struct Status<'a> {
    /// What an operator reads first (alerts, target state, memory, fds, connections, tasks,
    /// logs), typed once for the server and `leakwatch status`.
    pub(crate) summary: crate::summary::Summary,
    /// leakwatch itself.
    pub(crate) leakwatch: Own<'a>,
    /// The latest snapshot (seq 0 before the first sample).
    pub(crate) snapshot: &'a Snapshot,
    /// Every internal structure: the log buffers' parts, the sampler's, the alert engine's,
    /// HTTP's.
    pub(crate) structures: &'a [Structure],
    /// Cleanup statistics; `null` when the cleanup task does not run.
    pub(crate) cleanup: Option<CleanupStats>,
    /// The HTTP server's connections (open, idle, against their caps), evictions, refusals,
    /// header timeouts, page memory and requests.
    pub(crate) http: super::stats::HttpFigures,
}

/// The `leakwatch` section.
#[derive(Debug, Serialize)]
pub(crate) struct Own<'a> {
    /// The version.
    pub(crate) version: &'a str,
    /// leakwatch's pid.
    pub(crate) pid: u32,
    /// When leakwatch started (Unix seconds), from its own sample.
    pub(crate) started_at: Option<f64>,
    /// Seconds since then.
    pub(crate) uptime_seconds: Option<f64>,
    /// Its resident set size in the latest sample, bytes.
    pub(crate) rss_bytes: Option<u64>,
}

impl<'a> Own<'a> {
    /// leakwatch's figures from its own sample in `snapshot`.
    pub(crate) fn of(version: &'a str, snapshot: &Snapshot) -> Self {
        let now = crate::seconds::now();
        let own = snapshot.own_process.as_ref();
        let started_at = own.and_then(|p| p.start_time_seconds);
        Self {
            version,
            pid: std::process::id(),
            started_at,
            uptime_seconds: started_at.map(|s| (now - s).max(0.0)),
            rss_bytes: own.and_then(|p| p.rss),
        }
    }
}

/// `GET /status`.
pub(crate) fn status(doc: &Status<'_>) -> Response<Body> {
    json(StatusCode::OK, doc)
}

/// `GET /oom`: the target's presence, leakwatch's OOM kill count and the newest OOM reports.
pub(crate) fn oom(snapshot: &Snapshot) -> Response<Body> {
    json(StatusCode::OK, &snapshot.oom)
}

/// `POST /admin/cleanup` (already authorized): runs a cleanup and returns its report.
pub(crate) async fn cleanup(cleanup: Option<&Cleanup>) -> Response<Body> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    let unavailable = Error { error: "the cleanup task is not running" };
    let Some(cleanup) = cleanup else { return json(StatusCode::SERVICE_UNAVAILABLE, &unavailable) };
    match cleanup.run_now(Trigger::Admin).await {
        Some(report) => json(StatusCode::OK, &report),
        None => json(StatusCode::SERVICE_UNAVAILABLE, &unavailable),
    }
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let (status, body) = match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (status, body)
        }
        Err(e) => {
            tracing::error!("encoding status JSON failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{\"error\":\"encoding failed\"}\n".to_vec())
        }
    };
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
