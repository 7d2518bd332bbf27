//! The web console: one page at `/` for browsers (a client that accepts `text/html`; others get
//! the plain-text index, also at `/index.txt`), its script and style at [`SCRIPT_PATH`] and
//! [`STYLE_PATH`]. The assets are compiled into the binary; the page fetches nothing but
//! leakwatch's own endpoints. It shows logs, so it answers to the log endpoints' users
//! ([`super::guard::Realm::Logs`]). Every console response carries a strict
//! Content-Security-Policy (scripts and styles from the same origin only, no inline script),
//! `X-Frame-Options: DENY` and `X-Content-Type-Options: nosniff`.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Response, StatusCode};

use super::body::Body;
use crate::history::ConsoleSettings;

/// The page's script.
pub(crate) const SCRIPT_PATH: &str = "/console/console.js";
/// The page's style sheet.
pub(crate) const STYLE_PATH: &str = "/console/console.css";

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only leakwatch's own origin, for everything; no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether a request is for the console (page or asset): these answer to the log users.
pub(crate) fn is_console(path: &str, headers: &HeaderMap) -> bool {
    match path {
        "/" => wants_html(headers),
        p => p == SCRIPT_PATH || p == STYLE_PATH,
    }
}

/// Whether the client accepts HTML (a browser); `curl` sends `*/*` and gets the text index.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html")))
}

/// The page, with the settings it reads filled in.
pub(crate) fn page(settings: &ConsoleSettings, interval: Duration) -> Response<Body> {
    let html = PAGE
        .replace("{{MAX_LOG_LINES}}", &settings.max_log_lines.to_string())
        .replace("{{INTERVAL_MS}}", &interval.as_millis().to_string())
        .replace("{{SCRIPT}}", SCRIPT_PATH)
        .replace("{{STYLE}}", STYLE_PATH);
    let mut r = asset(Bytes::from(html), "text/html; charset=utf-8", "no-store");
    r.headers_mut().insert(VARY, HeaderValue::from_static("Accept"));
    r
}

/// An asset by path, if it is one.
pub(crate) fn asset_at(path: &str) -> Option<Response<Body>> {
    match path {
        SCRIPT_PATH => Some(asset(Bytes::from_static(SCRIPT.as_bytes()), "text/javascript; charset=utf-8", "no-cache")),
        STYLE_PATH => Some(asset(Bytes::from_static(STYLE.as_bytes()), "text/css; charset=utf-8", "no-cache")),
        _ => None,
    }
}

fn asset(body: Bytes, content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    r
}

/// The console's security headers.
pub(crate) fn secure(h: &mut HeaderMap) {
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_the_page_and_curl_the_index() {
        let browser = accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        assert!(wants_html(&browser) && is_console("/", &browser));
        assert!(!wants_html(&accept("*/*")) && !is_console("/", &accept("*/*")));
        assert!(!wants_html(&HeaderMap::new()));
        assert!(is_console(SCRIPT_PATH, &HeaderMap::new()) && is_console(STYLE_PATH, &HeaderMap::new()));
        assert!(!is_console("/index.txt", &browser) && !is_console("/metrics", &browser));
    }

    #[test]
    fn the_page_names_its_assets_carries_its_settings_and_has_no_inline_script() {
        let r = page(&ConsoleSettings { max_log_lines: 123, ..Default::default() }, Duration::from_millis(500));
        let h = r.headers();
        assert_eq!(h[X_FRAME_OPTIONS], "DENY");
        let csp = h[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
        let Body::Full { bytes: Some(body), .. } = r.into_body() else { panic!("a whole body") };
        let html = std::str::from_utf8(&body).unwrap();
        assert!(html.contains(r#"data-max-log-lines="123""#) && html.contains(r#"data-interval-ms="500""#));
        assert!(html.contains(&format!(r#"<script src="{SCRIPT_PATH}""#)), "{html}");
        assert!(!html.contains("{{"), "every placeholder filled");
        // Every <script> has a src (the policy would refuse an inline one), and nothing is remote.
        assert_eq!(html.matches("<script").count(), html.matches("<script src=\"/").count());
        assert!(!html.contains("http:") && !html.contains("https:"));
        for text in [SCRIPT, STYLE] {
            // The SVG namespace name is a URI that is never fetched.
            let text = text.replace("'http://www.w3.org/2000/svg'", "");
            assert!(!text.contains("http://") && !text.contains("https://"), "assets fetch nothing remote");
        }
    }
}
