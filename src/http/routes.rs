//! Request routing and responses.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::admin::AdminToken;
use super::body::Body;
use super::logs;
use super::stats::{HttpStats, Route};
use crate::alert::AlertState;
use crate::logs::LogSources;
use crate::metrics::{self, StaticInfo};
use crate::snapshot::Snapshot;

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const INDEX: &str = "leakwatch\n\n\
/metrics                 Prometheus metrics\n\
/healthz                 liveness\n\
/readyz                  readiness (after the first sample)\n\
/alerts                  pending, firing and recently resolved alerts, and the leak detector (JSON)\n\
/alerts/history          alert transitions, newest first (JSON)\n\
/logs                    log sources and their figures (JSON)\n\
/logs/SOURCE             recent lines: lines, max_bytes, before_seq, after_seq, contains, regex, format\n\
/logs/SOURCE/stream      live lines as Server-Sent Events: backlog, after_seq or Last-Event-ID, contains, regex, format\n";

/// What request handlers read: the latest snapshot, fixed info and the log sources. The rendered
/// `/metrics` body is cached per snapshot, so a scrape storm costs one render per sampling interval.
pub struct AppState {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    info: StaticInfo,
    logs: Arc<LogSources>,
    alerts: watch::Receiver<Arc<AlertState>>,
    rendered: Mutex<Option<((u64, u64), Bytes)>>,
    shutdown: CancellationToken,
    /// KiB of memory pages may take (see [`logs::PAGE_MEMORY_BUDGET`]).
    page_budget: Arc<Semaphore>,
    admin: AdminToken,
    /// The server's connection and request figures.
    http: Arc<HttpStats>,
}

impl AppState {
    /// State over a snapshot channel and the log source registry; live streams end when
    /// `shutdown` is cancelled.
    pub fn new(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        info: StaticInfo,
        logs: Arc<LogSources>,
        shutdown: CancellationToken,
    ) -> Self {
        let alerts = watch::channel(Arc::new(AlertState::default())).1;
        let page_budget = Arc::new(Semaphore::new(logs::PAGE_MEMORY_BUDGET >> 10));
        let admin = AdminToken::default();
        let http = Arc::new(HttpStats::new(page_budget.clone()));
        Self { snapshot, info, logs, alerts, rendered: Mutex::new(None), shutdown, page_budget, admin, http }
    }

    /// The server's connection and request figures (for `/status`).
    pub fn http_stats(&self) -> &Arc<HttpStats> {
        &self.http
    }

    /// The same state, with the admin endpoints guarded by `admin`.
    pub fn with_admin(self, admin: AdminToken) -> Self {
        Self { admin, ..self }
    }

    /// The same state, reading alerts from the engine's channel.
    pub fn with_alerts(self, alerts: watch::Receiver<Arc<AlertState>>) -> Self {
        Self { alerts, ..self }
    }

    /// The cached snapshot render with the HTTP families, rendered fresh, after it.
    fn metrics_response_body(&self) -> Bytes {
        let cached = self.metrics_body();
        let http = self.http.render();
        let mut body = Vec::with_capacity(cached.len() + http.len());
        body.extend_from_slice(&cached);
        body.extend_from_slice(http.as_bytes());
        Bytes::from(body)
    }

    fn metrics_body(&self) -> Bytes {
        let snapshot = self.snapshot.borrow().clone();
        let alerts = self.alerts.borrow().clone();
        // The alert state of a snapshot is published just after it: both seqs key the cache.
        let key = (snapshot.seq, alerts.seq);
        let mut cache = self.rendered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*cache {
            Some((k, body)) if *k == key && snapshot.seq != 0 => body.clone(),
            _ => {
                let body = Bytes::from(metrics::render_with_alerts(&snapshot, Some(&alerts), &self.info));
                *cache = Some((key, body.clone()));
                body
            }
        }
    }
}

/// Routes one request and counts it by route and status class.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let admin = *req.method() == Method::POST && ADMIN_PATHS.contains(&req.uri().path());
    let route = if admin { Route::Admin } else { Route::of_path(req.uri().path()) };
    let response = route_request(&state, req, admin).await;
    state.http.request(route, response.status().as_u16());
    Ok(response)
}

async fn route_request(state: &AppState, req: Request<Incoming>, admin: bool) -> Response<Body> {
    let head = *req.method() == Method::HEAD;
    if admin {
        return admin_route(state, &req).await;
    }
    if !head && *req.method() != Method::GET {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let response = match path {
        "/metrics" => with_type(Response::new(Body::full(state.metrics_response_body())), PROMETHEUS_TEXT),
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/alerts" => super::alerts::current(&state.alerts),
        "/alerts/history" => super::alerts::history(&state.alerts),
        "/readyz" => {
            if state.snapshot.borrow().seq > 0 {
                plain(StatusCode::OK, "ready\n")
            } else {
                plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: no sample taken yet\n")
            }
        }
        "/" => plain(StatusCode::OK, INDEX),
        "/logs" => logs::list(&state.logs),
        _ => match path.strip_prefix("/logs/") {
            Some(rest) => log_route(state, &req, rest, query, head).await,
            None => plain(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
        },
    };
    response
}

/// The admin endpoints: `POST` only, behind the bearer token.
const ADMIN_PATHS: &[&str] = &["/admin/cleanup", "/-/reload"];

/// The largest request body an admin endpoint accepts (they take none).
pub const MAX_ADMIN_BODY: u64 = 1024;

/// An admin request: 413 with a body over [`MAX_ADMIN_BODY`] (never read), 404 without a
/// configured token, 401 without the right one.
async fn admin_route(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    if let Some(refused) = oversized_body(req) {
        return refused;
    }
    if let Err(refused) = state.admin.authorize(req.headers()) {
        return refused;
    }
    match req.uri().path() {
        _ => plain(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
    }
}

/// 413 for a body declared (`Content-Length`) or bounded (`size_hint`, chunked) above
/// [`MAX_ADMIN_BODY`]; the body is not read, and the connection closes after the answer.
fn oversized_body(req: &Request<Incoming>) -> Option<Response<Body>> {
    use hyper::body::Body as _;
    let hint = req.body().size_hint();
    let declared = hint.exact().or(Some(hint.lower()).filter(|n| *n > 0));
    let chunked = req.headers().get(hyper::header::TRANSFER_ENCODING).is_some();
    if declared.is_some_and(|n| n > MAX_ADMIN_BODY) || chunked {
        let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "admin endpoints take no request body\n");
        r.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        return Some(r);
    }
    None
}

/// `/logs/{source}` and `/logs/{source}/stream`.
async fn log_route(state: &AppState, req: &Request<Incoming>, rest: &str, query: &str, head: bool) -> Response<Body> {
    let (name, stream) = match rest.strip_suffix("/stream") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    let Some(source) = state.logs.get(name) else {
        let known: Vec<&str> = state.logs.iter().map(|s| s.name.as_str()).collect();
        let message = format!("no log source {name:?}; sources: {}", known.join(", "));
        return logs::error(StatusCode::NOT_FOUND, &message, None);
    };
    let header = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let accept = header(ACCEPT);
    if stream {
        let last_event_id = req.headers().get("last-event-id").map(HeaderValue::as_bytes);
        logs::stream(source, query, last_event_id, accept, head, state.shutdown.clone())
    } else {
        logs::page(source.clone(), query, accept, state.page_budget.clone()).await
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = with_type(Response::new(Body::full(Bytes::from_static(body.as_bytes()))), TEXT);
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Response<Body>, content_type: &'static str) -> Response<Body> {
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
