//! Request routing and responses.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use crate::alert::AlertState;
use crate::logs::LogSources;
use crate::metrics::{self, StaticInfo};
use crate::snapshot::Snapshot;

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What request handlers read: the latest snapshot, fixed info and the log sources. The rendered
/// `/metrics` body is cached per snapshot, so a scrape storm costs one render per sampling interval.
pub struct AppState {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    info: StaticInfo,
    logs: Arc<LogSources>,
    alerts: watch::Receiver<Arc<AlertState>>,
    rendered: Mutex<Option<((u64, u64), Bytes)>>,
}

impl AppState {
    /// State over a snapshot channel and the log source registry.
    pub fn new(snapshot: watch::Receiver<Arc<Snapshot>>, info: StaticInfo, logs: Arc<LogSources>) -> Self {
        let alerts = watch::channel(Arc::new(AlertState::default())).1;
        Self { snapshot, info, logs, alerts, rendered: Mutex::new(None) }
    }

    /// The same state, reading alerts from the engine's channel.
    pub fn with_alerts(self, alerts: watch::Receiver<Arc<AlertState>>) -> Self {
        Self { alerts, ..self }
    }

    /// The log source registry.
    pub fn logs(&self) -> &Arc<LogSources> {
        &self.logs
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

/// Routes one request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let response = match req.uri().path() {
        _ if !get => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        "/metrics" => with_type(Response::new(Full::new(state.metrics_body())), PROMETHEUS_TEXT),
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
        "/" => plain(
            StatusCode::OK,
            "leakwatch\n\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness (after the first sample)\n/alerts   alert state (JSON)\n/alerts/history  alert transitions (JSON)\n",
        ),
        _ => plain(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
    };
    Ok(response)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = with_type(Response::new(Full::new(Bytes::from_static(body.as_bytes()))), TEXT);
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Response<Full<Bytes>>, content_type: &'static str) -> Response<Full<Bytes>> {
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
