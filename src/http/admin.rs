//! The admin endpoints' answers to the bearer token check ([`crate::token::AdminToken`]): 404
//! without a configured token file, 401 (with `WWW-Authenticate`) for a missing or wrong token,
//! 503 when the file cannot be read.

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use super::body::Body;
use crate::token::{AdminToken, Denied};

/// [`AdminToken::authorize_within`], refusals as responses; `None` past `deadline`.
pub(crate) async fn authorize_within(
    admin: &AdminToken,
    headers: HeaderMap,
    deadline: std::time::Duration,
) -> Option<Result<(), Box<Response<Body>>>> {
    admin.authorize_within(headers, deadline).await.map(|r| r.map_err(refusal))
}

#[cfg(test)]
/// [`AdminToken::authorize`], a refusal as its response.
pub(crate) fn authorize(admin: &AdminToken, headers: &HeaderMap) -> Result<(), Box<Response<Body>>> {
    admin.authorize(headers).map_err(refusal)
}

/// The response to a refused admin request.
fn refusal(denied: Denied) -> Box<Response<Body>> {
    match denied {
        Denied::Disabled => {
            text(StatusCode::NOT_FOUND, "not found; admin endpoints are disabled (no admin token file)\n")
        }
        Denied::Unreadable => {
            text(StatusCode::SERVICE_UNAVAILABLE, "the admin token file cannot be read; see the log\n")
        }
        Denied::Unauthorized => {
            let mut r = text(StatusCode::UNAUTHORIZED, "a valid bearer token is required\n");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"leakwatch\""));
            r
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Box<Response<Body>> {
    let mut r = Box::new(Response::new(Body::full(Bytes::from_static(body.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::AUTHORIZATION;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn status(r: Result<(), Box<Response<Body>>>) -> StatusCode {
        r.err().map_or(StatusCode::OK, |r| r.status())
    }

    #[tokio::test]
    async fn reads_run_one_at_a_time_off_the_runtime_and_a_fifo_is_a_503() {
        let dir = std::env::temp_dir().join(format!("leakwatch-admin-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret-token-0123456789\n").unwrap();
        let admin = AdminToken::new(Some(file.clone()));
        let deadline = std::time::Duration::from_secs(5);
        let good = headers(Some("Bearer s3cret-token-0123456789"));
        let (a, b) =
            tokio::join!(authorize_within(&admin, good.clone(), deadline), authorize_within(&admin, good, deadline));
        assert!(matches!((a, b), (Some(Ok(())), Some(Ok(())))), "concurrent requests wait their turn");
        std::fs::remove_file(&file).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, &file, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let refused = authorize_within(&admin, headers(Some("Bearer x")), deadline).await;
        assert_eq!(status(refused.expect("answered at once")), StatusCode::SERVICE_UNAVAILABLE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_file_disables_and_the_token_decides() {
        assert_eq!(status(authorize(&AdminToken::new(None), &headers(Some("Bearer x")))), StatusCode::NOT_FOUND);
        let dir = std::env::temp_dir().join(format!("leakwatch-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret-token-0123456789\n").unwrap();
        let admin = AdminToken::new(Some(file.clone()));
        assert_eq!(status(authorize(&admin, &headers(Some("Bearer s3cret-token-0123456789")))), StatusCode::OK);
        assert_eq!(
            status(authorize(&admin, &headers(Some("Bearer s3cret-token-012345678")))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(authorize(&admin, &headers(Some("Basic s3cret-token-0123456789")))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status(authorize(&admin, &headers(None))), StatusCode::UNAUTHORIZED);
        // A rotated Secret takes effect at the next request.
        std::fs::write(&file, "another-token-0123456789").unwrap();
        assert_eq!(
            status(authorize(&admin, &headers(Some("Bearer s3cret-token-0123456789")))),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(status(authorize(&admin, &headers(Some("Bearer another-token-0123456789")))), StatusCode::OK);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(status(authorize(&admin, &headers(Some("Bearer x")))), StatusCode::SERVICE_UNAVAILABLE);
        // A reload that removes the file setting disables the endpoints in every clone.
        let served = admin.clone();
        admin.set_file(None);
        assert_eq!(status(authorize(&served, &headers(Some("Bearer x")))), StatusCode::NOT_FOUND);
        std::fs::remove_dir(&dir).unwrap();
    }
}
