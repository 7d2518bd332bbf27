//! Request routing and responses.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::body::Body;
use super::cache::MetricsCache;
use super::console;
use super::encoding;
use super::guard::{Guard, Realm};
use super::stats::{HttpStats, Route};
use super::{logs, status};
use crate::alert::AlertState;
use crate::cleanup::Cleanup;
use crate::history::ConsoleSettings;
use crate::history::SharedHistory;
use crate::info::StaticInfo;
use crate::logs::LogSources;
use crate::measure::Structure;
use crate::metrics::Scrape;
use crate::reload::{ReloadHandle, Trigger};
use crate::snapshot::Snapshot;
use crate::summary::Summary;
use crate::token::AdminToken;

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const INDEX: &str = "leakwatch\n\n\
/metrics                 Prometheus metrics (?detail=1: the detail families too)\n\
/healthz                 liveness\n\
/readyz                  readiness (after the first sample)\n\
/index.txt               this index (a browser asking for / gets the web console)\n\
/api/history             key figures over the last hour: since, after_seq, limit (JSON)\n\
/status                  leakwatch, the latest snapshot, internal structures and cleanups (JSON)\n\
/alerts                  pending, firing and recently resolved alerts, and the leak detector (JSON)\n\
/alerts/history          alert transitions, newest first (JSON)\n\
/oom                     target up/down, OOM kills counted by leakwatch, the newest OOM reports (JSON)\n\
/logs                    log sources and their figures (JSON)\n\
/logs/SOURCE             recent lines: lines, max_bytes, before_seq, after_seq, contains, regex, format\n\
/logs/SOURCE/stream      live lines as Server-Sent Events: backlog, after_seq or Last-Event-ID, contains, regex, format\n\
POST /-/reload           reload the config file (admin token)\n\
POST /admin/cleanup      trim leakwatch's structures now (admin token)\n";

/// What request handlers read: the latest snapshot, fixed info and the log sources. The rendered
/// `/metrics` body is cached per snapshot, so a scrape storm costs one render per sampling interval.
pub(crate) struct AppState {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    info: StaticInfo,
    logs: Arc<LogSources>,
    alerts: watch::Receiver<Arc<AlertState>>,
    rendered: Arc<MetricsCache>,
    shutdown: CancellationToken,
    /// KiB of memory pages may take (see [`logs::PAGE_MEMORY_BUDGET`]).
    page_budget: Arc<Semaphore>,
    admin: AdminToken,
    reload: Option<ReloadHandle>,
    cleanup: Option<Cleanup>,
    guard: Guard,
    /// The server's connection and request figures.
    http: Arc<HttpStats>,
    /// The history behind the console's charts, when kept.
    history: Option<SharedHistory>,
    console: ConsoleSettings,
    interval: Duration,
}

impl AppState {
    /// State over a snapshot channel and the log source registry; live streams end when
    /// `shutdown` is cancelled.
    pub(crate) fn new(
        snapshot: watch::Receiver<Arc<Snapshot>>,
        info: StaticInfo,
        logs: Arc<LogSources>,
        shutdown: CancellationToken,
    ) -> Self {
        let alerts = watch::channel(Arc::new(AlertState::default())).1;
        let page_budget = Arc::new(Semaphore::new(logs::PAGE_MEMORY_BUDGET >> 10));
        let admin = AdminToken::default();
        let rendered = Arc::new(MetricsCache::new(snapshot.clone()));
        let guard = Guard::default();
        let http = Arc::new(HttpStats::new(page_budget.clone()));
        Self {
            snapshot,
            info,
            logs,
            alerts,
            rendered,
            shutdown,
            page_budget,
            admin,
            reload: None,
            cleanup: None,
            guard,
            http,
            history: None,
            console: ConsoleSettings::default(),
            interval: Duration::from_secs(1),
        }
    }

    /// The same state, serving `history` on `/api/history` (and listing it in `/status`), and
    /// the console with `settings`; the page polls every sampling `interval`.
    pub(crate) fn with_console(self, history: SharedHistory, settings: ConsoleSettings, interval: Duration) -> Self {
        Self { history: Some(history), console: settings, interval, ..self }
    }

    /// The server's connection and request figures (for `/status`).
    pub(crate) fn http_stats(&self) -> &Arc<HttpStats> {
        &self.http
    }

    /// The same state, with cleanup statistics on `/status` and `/metrics` and
    /// `POST /admin/cleanup` running cleanups through `cleanup`.
    pub(crate) fn with_cleanup(self, cleanup: Cleanup) -> Self {
        Self { cleanup: Some(cleanup), ..self }
    }

    /// The `/metrics` body cache (the cleanup drops a stale body).
    pub(crate) fn metrics_cache(&self) -> Arc<MetricsCache> {
        self.rendered.clone()
    }

    /// HTTP's own structures.
    fn http_structures(&self) -> Vec<Structure> {
        let budget_kib = logs::PAGE_MEMORY_BUDGET >> 10;
        let in_use = budget_kib.saturating_sub(self.page_budget.available_permits());
        let mut out = vec![
            self.rendered.structure(),
            Structure {
                bytes: Some((in_use as u64) << 10),
                ..Structure::counted("log_page_budget_kib", in_use, Some(budget_kib))
            },
        ];
        out.extend(self.history.as_ref().map(SharedHistory::structure));
        out
    }

    /// Every internal structure: the snapshot's (log buffers, sampler), the alert engine's, HTTP's.
    fn structures(&self, snapshot: &Snapshot, alerts: &AlertState) -> Vec<Structure> {
        let mut out = snapshot.structures.clone();
        out.extend(alerts.structures.iter().cloned());
        out.extend(self.http_structures());
        out
    }

    fn status(&self) -> Response<Body> {
        let snapshot = self.snapshot.borrow().clone();
        let alerts = self.alerts.borrow().clone();
        let structures = self.structures(&snapshot, &alerts);
        let cleanup = self.cleanup.as_ref().map(Cleanup::stats);
        status::status(&status::Status {
            summary: Summary::of(&self.info.version, &snapshot, &alerts, &structures, cleanup.as_ref()),
            leakwatch: status::Own::of(&self.info.version, &snapshot),
            snapshot: &snapshot,
            structures: &structures,
            cleanup,
            http: self.http.figures(),
        })
    }

    /// The same state, with the web config's TLS, auth, headers and rate limit, and the log
    /// endpoints' own users (swappable: replace them through the [`SharedUsers`] handle).
    ///
    /// [`SharedUsers`]: crate::web::SharedUsers
    pub(crate) fn with_web(self, web: Option<Arc<crate::web::WebConfig>>, log_users: crate::web::SharedUsers) -> Self {
        Self { guard: Guard::new(web, log_users), ..self }
    }

    /// TLS settings for a new connection, when the web config (as it is now) turns TLS on.
    pub(crate) fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.guard.web().and_then(|w| w.tls.clone())
    }

    /// The same state, with the admin endpoints guarded by `admin`.
    pub(crate) fn with_admin(self, admin: AdminToken) -> Self {
        Self { admin, ..self }
    }

    /// The same state, with `POST /-/reload` and the reload metrics served through `reload`.
    pub(crate) fn with_reload(self, reload: ReloadHandle) -> Self {
        Self { reload: Some(reload), ..self }
    }

    /// The same state, reading alerts from the engine's channel.
    pub(crate) fn with_alerts(self, alerts: watch::Receiver<Arc<AlertState>>) -> Self {
        Self { alerts, ..self }
    }

    /// `/metrics`: the scrape of the latest snapshot, rendered in one pass and cached (with its
    /// gzip form, compressed once) until the snapshot, the alert state, the reload status or the
    /// cleanup count changes. The HTTP figures in it are those of the render.
    fn metrics_response(&self, gzip: bool, detail: bool) -> Response<Body> {
        let body = self.metrics_body(gzip, detail);
        let mut r = with_type(Response::new(Body::full(body)), PROMETHEUS_TEXT);
        r.headers_mut().insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    }

    fn metrics_body(&self, gzip: bool, detail: bool) -> Bytes {
        let snapshot = self.snapshot.borrow().clone();
        let alerts = self.alerts.borrow().clone();
        let reload = self.reload.as_ref().map(ReloadHandle::status);
        // The alert state of a snapshot is published just after it: both seqs key the cache, with
        // the reload attempts (a reload's metrics show at once) and the cleanup count (its figures
        // are rendered too). A cached scrape computes nothing else.
        let key = (
            snapshot.seq,
            alerts.seq,
            reload.as_ref().map_or(0, |r| r.generation),
            self.cleanup.as_ref().map_or(0, Cleanup::performed_total),
            u64::from(detail),
        );
        let render = || {
            let cleanup = self.cleanup.as_ref().map(Cleanup::stats);
            let structures = self.structures(&snapshot, &alerts);
            let http = self.http.figures();
            Scrape {
                alerts: Some(&alerts),
                reload: reload.as_deref(),
                structures: &structures,
                cleanup: cleanup.as_ref(),
                http: Some(&http),
                detail,
                ..Scrape::new(&snapshot, &self.info)
            }
            .render()
        };
        if gzip {
            self.rendered.get_or_render_gzip(key, render)
        } else {
            self.rendered.get_or_render(key, render)
        }
    }
}

/// Checks a request against the web config (rate limit, basic auth), routes it, adds the
/// configured headers and counts it by route and status class.
pub(crate) async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let admin = *req.method() == Method::POST && ADMIN_PATHS.contains(&req.uri().path());
    let counted = if admin { Route::Admin } else { Route::of_path(req.uri().path()) };
    let web = state.guard.web();
    // The console shows logs: it answers to the log endpoints' users.
    let realm = if console::is_console(req.uri().path(), req.headers()) {
        Realm::Logs
    } else {
        Realm::of(req.uri().path(), admin)
    };
    let mut response = match state.guard.admit(web.as_deref(), realm, req.headers()).await {
        Ok(()) => route(&state, req, admin).await,
        Err(refused) => refused,
    };
    Guard::decorate(web.as_deref(), &mut response);
    state.http.request(counted, response.status().as_u16());
    Ok(response)
}

/// Routes one admitted request.
async fn route(state: &AppState, req: Request<Incoming>, admin: bool) -> Response<Body> {
    let head = *req.method() == Method::HEAD;
    if admin {
        return admin_route(state, &req).await;
    }
    // An admin path with another method: 405 where the admin endpoints exist (as Prometheus
    // answers `GET /-/reload`), 404 where they do not.
    if ADMIN_PATHS.contains(&req.uri().path()) && state.admin.enabled() {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "admin endpoints take POST only\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    if !head && *req.method() != Method::GET {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    match path {
        "/metrics" => match encoding::detail(query) {
            Ok(detail) => {
                let accept_encoding = req.headers().get(ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
                state.metrics_response(encoding::accepts_gzip(accept_encoding), detail)
            }
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/status" => state.status(),
        "/oom" => status::oom(&state.snapshot.borrow().clone()),
        "/alerts" => super::alerts::current(&state.alerts),
        "/alerts/history" => super::alerts::history(&state.alerts),
        "/readyz" => {
            if state.snapshot.borrow().seq > 0 {
                plain(StatusCode::OK, "ready\n")
            } else {
                plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: no sample taken yet\n")
            }
        }
        "/" if console::wants_html(req.headers()) => console::page(&state.console, state.interval),
        "/" => {
            let mut r = plain(StatusCode::OK, INDEX);
            r.headers_mut().insert(VARY, HeaderValue::from_static("Accept"));
            r
        }
        "/index.txt" => plain(StatusCode::OK, INDEX),
        "/api/history" => super::history::history(state.history.as_ref(), query),
        "/logs" => logs::list(&state.logs),
        _ => match path.strip_prefix("/logs/") {
            Some(rest) => log_route(state, &req, rest, query, head).await,
            None => console::asset_at(path)
                .unwrap_or_else(|| plain(StatusCode::NOT_FOUND, "not found; see /index.txt for the endpoints\n")),
        },
    }
}

/// The admin endpoints: `POST` only, behind the bearer token.
const ADMIN_PATHS: &[&str] = &["/admin/cleanup", "/-/reload"];

/// How long reading the admin token file may take before the request gets 503.
const ADMIN_TOKEN_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest request body an admin endpoint accepts (they take none).
pub(crate) const MAX_ADMIN_BODY: u64 = 1024;

/// An admin request: 413 with a body over [`MAX_ADMIN_BODY`] (never read), 404 without a
/// configured token, 401 without the right one.
async fn admin_route(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    if let Some(refused) = oversized_body(req) {
        return refused;
    }
    // The token file is read on the blocking pool, under a deadline: a file system that hangs
    // (a stale network mount) costs this request a 503, never the server's thread.
    // One read at a time, so a hung one holds one blocking thread.
    match super::admin::authorize_within(&state.admin, req.headers().clone(), ADMIN_TOKEN_READ_TIMEOUT).await {
        Some(Ok(())) => {}
        Some(Err(refused)) => return *refused,
        None => {
            tracing::error!("admin token: the file could not be read within {ADMIN_TOKEN_READ_TIMEOUT:?}");
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "the admin token file cannot be read; see the log\n");
            r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("5"));
            return r;
        }
    }
    match req.uri().path() {
        "/-/reload" => reload(state).await,
        "/admin/cleanup" => status::cleanup(state.cleanup.as_ref()).await,
        _ => plain(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
    }
}

/// `POST /-/reload`: 200 once the new config is applied, 500 naming the problem when the file
/// was refused (the running config stays), as Prometheus answers.
async fn reload(state: &AppState) -> Response<Body> {
    let Some(handle) = &state.reload else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "reloading is not available\n");
    };
    match handle.reload(Trigger::Http).await {
        Ok(outcome) if outcome.restart_needed.is_empty() => plain(StatusCode::OK, "configuration reloaded\n"),
        Ok(outcome) => text(
            StatusCode::OK,
            format!("configuration reloaded; takes effect after a restart: {}\n", outcome.restart_needed.join(", ")),
        ),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")),
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
        let list = state.logs.list();
        let known: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        let message = format!("no log source {name:?}; sources: {}", known.join(", "));
        return logs::error(StatusCode::NOT_FOUND, &message, None);
    };
    let header = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let accept = header(ACCEPT);
    if stream {
        let last_event_id = req.headers().get("last-event-id").map(HeaderValue::as_bytes);
        logs::stream(&source, query, last_event_id, accept, head, state.shutdown.clone())
    } else {
        logs::page(source, query, accept, state.page_budget.clone()).await
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = with_type(Response::new(Body::full(Bytes::from(body))), TEXT);
    *r.status_mut() = status;
    r
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
