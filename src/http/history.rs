//! `GET /api/history`: a page of the in-process history (see [`crate::history`]), oldest first,
//! from `since` (Unix seconds) and/or after the cursor `after_seq`, at most `limit` points; a bad
//! parameter is a 400 that names it.

use hyper::{Response, StatusCode};

use super::body::Body;
use super::logs::error;
use crate::history::query::history_query;
use crate::history::SharedHistory;

/// `GET /api/history`; 503 when the history is not kept (no history task).
pub(crate) fn history(history: Option<&SharedHistory>, query: &str) -> Response<Body> {
    let q = match history_query(query) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), Some(&e.param)),
    };
    let Some(history) = history else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the history is not kept", None);
    };
    let page = history.page(&q);
    match serde_json::to_vec(&page) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut r = Response::new(Body::full(body));
            r.headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding the history failed: {e}"), None),
    }
}
