//! The HTTP server's own bounded structures and counters: connections against their caps,
//! evictions by reason, refusals, header timeouts, the page memory budget and requests by route
//! and status class. Read as plain data ([`HttpStats::figures`], for `/status`), and taken into a
//! `/metrics` render as a [`ScrapePart`] (as they are when the render is made: once per sample).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::pending::Pending;
use super::{MAX_CONNECTIONS, MAX_IDLE_CONNECTIONS};
use crate::metric_names as n;
use crate::metrics::family::Family;
use crate::metrics::ScrapePart;

/// Why a connection was closed by the server before its client closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictReason {
    /// More than `MAX_IDLE_CONNECTIONS` were idle: the oldest idle one made room.
    IdleCap,
    /// The connection cap was reached: the oldest idle one made room for a new connection.
    ConnectionCap,
    /// Idle between requests longer than `super::IDLE_TIMEOUT`.
    IdleTimeout,
}

impl EvictReason {
    /// Every reason, in label order.
    pub(crate) const ALL: [EvictReason; 3] =
        [EvictReason::IdleCap, EvictReason::ConnectionCap, EvictReason::IdleTimeout];

    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::IdleCap => "idle_cap",
            Self::ConnectionCap => "connection_cap",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// The bounded route label of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `/metrics`.
    Metrics,
    /// `/logs` and `/logs/{source}` pages.
    Logs,
    /// `/logs/{source}/stream`.
    Stream,
    /// `/alerts`, `/alerts/history`.
    Alerts,
    /// `/status`, `/healthz`, `/readyz`, `/oom`, `/api/history`.
    Status,
    /// The `POST` admin endpoints.
    Admin,
    /// Anything else (the index, unknown paths, refused methods).
    Other,
}

impl Route {
    /// Every route, in label order.
    pub(crate) const ALL: [Route; 7] =
        [Route::Metrics, Route::Logs, Route::Stream, Route::Alerts, Route::Status, Route::Admin, Route::Other];

    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Stream => "stream",
            Self::Alerts => "alerts",
            Self::Status => "status",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }

    /// The route of a request path (`admin` is decided by the router: it depends on the method).
    pub(crate) fn of_path(path: &str) -> Route {
        match path {
            "/metrics" => Route::Metrics,
            "/alerts" | "/alerts/history" => Route::Alerts,
            "/status" | "/healthz" | "/readyz" | "/oom" | "/api/history" => Route::Status,
            "/logs" => Route::Logs,
            // As the router splits it: `/logs/stream` is the page of a source named `stream`.
            p => match p.strip_prefix("/logs/") {
                Some(rest) if rest.strip_suffix("/stream").is_some() => Route::Stream,
                Some(_) => Route::Logs,
                None => Route::Other,
            },
        }
    }
}

/// Status classes `1xx` … `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The counters. One per server; every figure is a relaxed atomic (they are only ever summed).
#[derive(Debug)]
pub struct HttpStats {
    open: AtomicU64,
    evicted: [AtomicU64; 3],
    refused: AtomicU64,
    header_timeouts: AtomicU64,
    requests: [[AtomicU64; 5]; 7],
    pub(super) pending: Arc<Pending>,
    page_budget: Arc<Semaphore>,
    page_budget_bytes: u64,
}

/// The figures of [`HttpStats`] at one moment, as plain data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpFigures {
    /// Connections open now.
    pub(crate) connections_open: u64,
    /// The connection cap.
    pub(crate) connections_max: u64,
    /// Connections not serving a request now (evictable).
    pub(crate) connections_idle: u64,
    /// Most idle connections before the oldest is closed.
    pub(crate) connections_idle_max: u64,
    /// Connections closed by the server, by reason.
    pub(crate) connections_evicted: Vec<(EvictReason, u64)>,
    /// New connections closed at once: the cap was reached with every connection serving.
    pub(crate) connections_refused: u64,
    /// Connections closed because their request head did not arrive within the header timeout.
    pub(crate) header_timeouts: u64,
    /// Bytes of the page memory budget held by pages being built or sent.
    pub(crate) page_memory_bytes: u64,
    /// The page memory budget.
    pub(crate) page_memory_max_bytes: u64,
    /// Requests answered, by route and status class (`2xx`, …).
    pub(crate) requests: Vec<(Route, &'static str, u64)>,
}

impl HttpStats {
    /// Counters over the evictable-connection queue and the page memory budget (permits are KiB).
    pub fn new(page_budget: Arc<Semaphore>) -> Self {
        let page_budget_bytes = (page_budget.available_permits() as u64) << 10;
        Self {
            open: AtomicU64::new(0),
            evicted: Default::default(),
            refused: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
            requests: Default::default(),
            pending: Arc::new(Pending::default()),
            page_budget,
            page_budget_bytes,
        }
    }

    /// A connection was accepted; the guard counts it closed when dropped.
    pub(super) fn opened(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self.clone())
    }

    /// Counts one connection closed by leakwatch for `reason`.
    pub fn evicted(&self, reason: EvictReason) {
        self.evicted[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn header_timeout(&self) {
        self.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[route as usize][class].fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn figures(&self) -> HttpFigures {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let free = (self.page_budget.available_permits() as u64) << 10;
        HttpFigures {
            connections_open: get(&self.open),
            connections_max: MAX_CONNECTIONS as u64,
            connections_idle: self.pending.len() as u64,
            connections_idle_max: MAX_IDLE_CONNECTIONS as u64,
            connections_evicted: EvictReason::ALL.iter().map(|r| (*r, get(&self.evicted[*r as usize]))).collect(),
            connections_refused: get(&self.refused),
            header_timeouts: get(&self.header_timeouts),
            page_memory_bytes: self.page_budget_bytes.saturating_sub(free),
            page_memory_max_bytes: self.page_budget_bytes,
            requests: Route::ALL
                .iter()
                .flat_map(|r| CLASSES.iter().enumerate().map(move |(i, c)| (*r, *c, i)))
                .map(|(r, c, i)| (r, c, get(&self.requests[r as usize][i])))
                .collect(),
        }
    }
}

impl ScrapePart for HttpFigures {
    /// The `leakwatch_http_*` families, all detail (`/status` shows them either way): open and
    /// idle connections and their caps, evictions, refusals, timeouts, page memory, requests.
    fn families(&self, out: &mut Vec<Family>) {
        let gauge = |name: &str, help: &str, v: u64| {
            let mut f = Family::gauge(name, help).detail();
            f.add(&[], v as f64);
            f
        };
        let counter = |name: &str, help: &str, v: u64| {
            let mut f = Family::counter(name, help).detail();
            f.add(&[], v as f64);
            f
        };
        let mut evicted = Family::counter(
            n::HTTP_CONNECTIONS_EVICTED_TOTAL,
            "Connections closed by leakwatch, by reason: idle_cap (too many idle), connection_cap (room for a new one), idle_timeout.",
        )
        .detail();
        // Label sets appear on first use, as client libraries create them: no always-zero series.
        for (reason, count) in self.connections_evicted.iter().filter(|(_, count)| *count > 0) {
            evicted.add(&[("reason", reason.as_str())], *count as f64);
        }
        let mut requests =
            Family::counter(n::HTTP_REQUESTS_TOTAL, "HTTP requests answered, by route and status class.").detail();
        for (route, class, count) in self.requests.iter().filter(|(.., count)| *count > 0) {
            requests.add(&[("route", route.as_str()), ("status_class", class)], *count as f64);
        }
        out.extend([
            gauge(n::HTTP_CONNECTIONS, "Open HTTP connections.", self.connections_open),
            gauge(n::HTTP_CONNECTIONS_MAX, "The cap on open HTTP connections.", self.connections_max),
            gauge(n::HTTP_CONNECTIONS_IDLE, "HTTP connections not serving a request.", self.connections_idle),
            gauge(n::HTTP_CONNECTIONS_IDLE_MAX, "The cap on idle HTTP connections.", self.connections_idle_max),
            evicted,
            counter(
                n::HTTP_CONNECTIONS_REFUSED_TOTAL,
                "New HTTP connections closed at once.",
                self.connections_refused,
            ),
            counter(
                n::HTTP_HEADER_TIMEOUTS_TOTAL,
                "HTTP connections closed by the header timeout.",
                self.header_timeouts,
            ),
            gauge(n::HTTP_PAGE_MEMORY_BYTES, "Log page memory in use.", self.page_memory_bytes),
            gauge(n::HTTP_PAGE_MEMORY_MAX_BYTES, "Log page memory budget.", self.page_memory_max_bytes),
            requests,
        ]);
    }
}

/// Counts its connection closed when dropped.
pub(super) struct OpenGuard(Arc<HttpStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures' families (detail ones included) in the text format.
    fn render(figures: &HttpFigures) -> String {
        let mut out = Vec::new();
        figures.families(&mut out);
        let families: Vec<_> = out.into_iter().filter(|f| !f.is_empty()).map(Family::finish).collect();
        let mut text = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &families, &mut text).expect("encode");
        String::from_utf8(text).expect("utf-8")
    }

    #[test]
    fn figures_follow_the_counters_and_every_series_renders() {
        let budget = Arc::new(Semaphore::new(1024));
        let stats = Arc::new(HttpStats::new(budget.clone()));
        let guard = stats.opened();
        stats.evicted(EvictReason::IdleTimeout);
        stats.request(Route::Metrics, 200);
        stats.request(Route::Logs, 503);
        stats.request(Route::Other, 999);
        let held = budget.try_acquire_many(256).expect("permits");
        let f = stats.figures();
        assert_eq!((f.connections_open, f.page_memory_bytes, f.page_memory_max_bytes), (1, 256 << 10, 1 << 20));
        assert!(f.connections_evicted.contains(&(EvictReason::IdleTimeout, 1)));
        assert!(f.requests.contains(&(Route::Logs, "5xx", 1)) && f.requests.contains(&(Route::Other, "5xx", 1)));
        drop((guard, held));
        assert_eq!(stats.figures().connections_open, 0);
        let text = render(&stats.figures());
        assert!(text.contains("leakwatch_http_requests_total{route=\"metrics\",status_class=\"2xx\"} 1"), "{text}");
        let series = |name: &str| text.lines().filter(|l| l.starts_with(name)).count();
        assert_eq!(series("leakwatch_http_requests_total"), 3, "only the route and class pairs seen: {text}");
        assert_eq!(series("leakwatch_http_connections_evicted_total"), 1, "only the reason seen: {text}");
        assert_eq!(Route::of_path("/logs/app/stream"), Route::Stream);
        assert_eq!(Route::of_path("/logs/app"), Route::Logs);
        assert_eq!(Route::of_path("/logs/stream"), Route::Logs, "the page of a source named stream");
        assert_eq!(Route::of_path("/nope"), Route::Other);
    }
}
