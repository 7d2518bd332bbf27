//! `GET /alerts` (pending, firing and recently resolved alerts, and the leak detector per
//! resource) and `GET /alerts/history` (the bounded transition history, newest first), as JSON
//! from the alert engine's latest published state.

use std::sync::Arc;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::watch;

use super::body::Body;
use crate::alert::engine::{AlertView, State, Transition, TrendView};
use crate::alert::AlertState;

#[derive(Serialize)]
struct Current<'a> {
    /// The snapshot evaluated (0 before the first evaluation).
    seq: u64,
    evaluated_at: f64,
    alerts: Vec<&'a AlertView>,
    trends: &'a [TrendView],
}

#[derive(Serialize)]
struct History<'a> {
    max_transitions: usize,
    transitions: &'a [Transition],
}

/// `GET /alerts`.
pub(crate) fn current(rx: &watch::Receiver<Arc<AlertState>>) -> Response<Body> {
    // Clone the Arc so the engine is never blocked while the JSON is written.
    let state = rx.borrow().clone();
    let alerts = state.alerts.iter().filter(|a| a.state != State::Inactive).collect();
    json(&Current { seq: state.seq, evaluated_at: state.evaluated_at, alerts, trends: &state.trends })
}

/// `GET /alerts/history`.
pub(crate) fn history(rx: &watch::Receiver<Arc<AlertState>>) -> Response<Body> {
    let state = rx.borrow().clone();
    json(&History { max_transitions: state.history_max, transitions: &state.history })
}

fn json(value: &impl Serialize) -> Response<Body> {
    let (status, body) = match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (StatusCode::OK, body)
        }
        Err(e) => {
            tracing::error!("encoding alert JSON failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{\"error\":\"encoding failed\"}\n".to_vec())
        }
    };
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}
