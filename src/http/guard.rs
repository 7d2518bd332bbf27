//! What the web config asks of every request before it is routed: the rate limit (429), basic
//! auth (401 with `WWW-Authenticate: Basic`), and the extra response headers.
//!
//! Realms, as in exporter-toolkit every path is protected (`/healthz` too):
//! - the log endpoints (`/logs`, `/logs/{source}`, `/logs/{source}/stream`) require a user of
//!   `logs.basic_auth_users` when that is set, else a web config user;
//! - the admin endpoints (`POST /admin/cleanup`, `POST /-/reload`) authenticate with their own
//!   bearer token instead (one `Authorization` header cannot carry both);
//! - everything else requires a web config user, when the web config lists any.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::body::Body;
use crate::web::{LiveWebConfig, SharedUsers, Verifier, WebConfig};

/// Which users a path answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Realm {
    /// `/metrics`, `/healthz`, `/alerts`, ...: the web config's users.
    Site,
    /// The log endpoints: `logs.basic_auth_users`, else the web config's users.
    Logs,
    /// The admin endpoints: their bearer token only.
    Admin,
}

impl Realm {
    /// The realm of a request path (`admin`: a `POST` to an admin path).
    pub(crate) fn of(path: &str, admin: bool) -> Realm {
        if admin {
            Realm::Admin
        } else if path == "/logs" || path.starts_with("/logs/") {
            Realm::Logs
        } else {
            Realm::Site
        }
    }
}

/// The request checks of one server.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    web: Option<LiveWebConfig>,
    log_users: SharedUsers,
    verifier: Verifier,
}

impl Guard {
    /// Checks from the web config (if any) and the log endpoints' users.
    pub(crate) fn new(web: Option<Arc<WebConfig>>, log_users: SharedUsers) -> Self {
        Self { web: web.map(LiveWebConfig::new), log_users, verifier: Verifier::default() }
    }

    /// The web config in force (re-read when its file changed).
    pub(crate) fn web(&self) -> Option<Arc<WebConfig>> {
        self.web.as_ref().map(LiveWebConfig::current)
    }

    /// Ok to route the request, or the refusal to send; `web` is [`Guard::web`] for this request.
    pub(crate) async fn admit(
        &self,
        web: Option<&WebConfig>,
        realm: Realm,
        headers: &HeaderMap,
    ) -> Result<(), Response<Body>> {
        if let Some(limit) = web.and_then(|w| w.rate_limit.as_ref()) {
            if !limit.allow() {
                return Err(text(StatusCode::TOO_MANY_REQUESTS, "too many requests (rate_limit)\n"));
            }
        }
        let log_users = match realm {
            Realm::Admin => return Ok(()),
            Realm::Logs => self.log_users.current(),
            Realm::Site => None,
        };
        let site_users = web.and_then(|w| w.users.as_ref());
        let ok = match (log_users.as_deref(), site_users) {
            (Some(users), _) | (None, Some(users)) => self.verifier.check(users, headers).await,
            (None, None) => true,
        };
        if ok {
            return Ok(());
        }
        let mut refused = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        refused.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        Err(refused)
    }

    /// Adds the configured headers to a response.
    pub(crate) fn decorate(web: Option<&WebConfig>, response: &mut Response<Body>) {
        if let Some(web) = web {
            for (name, value) in &web.headers {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_by_path() {
        assert_eq!(Realm::of("/logs", false), Realm::Logs);
        assert_eq!(Realm::of("/logs/app/stream", false), Realm::Logs);
        assert_eq!(Realm::of("/logsx", false), Realm::Site);
        assert_eq!(Realm::of("/metrics", false), Realm::Site);
        assert_eq!(Realm::of("/healthz", false), Realm::Site);
        assert_eq!(Realm::of("/admin/cleanup", true), Realm::Admin);
    }
}
