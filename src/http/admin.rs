//! Admin endpoints' bearer token. The token lives in a file (a mounted Kubernetes Secret) that
//! is read on every admin request, so a rotated Secret takes effect without a reload. Without a
//! configured file the admin endpoints do not exist (404); a missing or wrong token is 401,
//! compared in constant time over SHA-256 digests (neither the token's bytes nor its length
//! leak through timing).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body::Body;
use crate::config::token::read_token;

/// Where the admin token is read from; `None` disables the admin endpoints. Clones share the
/// setting, so a reload ([`AdminToken::set_file`]) reaches the server's copy.
#[derive(Debug, Clone)]
pub struct AdminToken {
    file: Arc<RwLock<Option<PathBuf>>>,
    /// One read of the token file at a time: a file system that hangs holds one blocking
    /// thread, not one per request.
    reading: Arc<tokio::sync::Semaphore>,
}

impl Default for AdminToken {
    fn default() -> Self {
        Self::new(None)
    }
}

impl AdminToken {
    /// Admin endpoints guarded by the token in `file`, or disabled with `None`.
    pub fn new(file: Option<PathBuf>) -> Self {
        Self { file: Arc::new(RwLock::new(file)), reading: Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    /// [`AdminToken::authorize`] on the blocking pool, one read of the file at a time, within
    /// `deadline` (waiting for the turn included); `None` past it.
    pub async fn authorize_within(
        &self,
        headers: HeaderMap,
        deadline: std::time::Duration,
    ) -> Option<Result<(), Box<Response<Body>>>> {
        let admin = self.clone();
        let check = async move {
            let permit = self.reading.clone().acquire_owned().await.ok()?;
            tokio::task::spawn_blocking(move || {
                // A hung read keeps the permit until it returns.
                let _reading = permit;
                admin.authorize(&headers)
            })
            .await
            .ok()
        };
        tokio::time::timeout(deadline, check).await.ok().flatten()
    }

    /// Whether the admin endpoints exist (a token file is configured).
    pub fn enabled(&self) -> bool {
        self.file.read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }

    /// Changes the token file (a reload); `None` disables the admin endpoints.
    pub fn set_file(&self, file: Option<PathBuf>) {
        *self.file.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = file;
    }

    /// Ok when the request carries `Authorization: Bearer <token>` with the file's token;
    /// otherwise the response to send: 404 (no token configured), 401 (missing or wrong token)
    /// or 503 (the token file cannot be read).
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), Box<Response<Body>>> {
        let file = self.file.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(file) = file else {
            return Err(text(StatusCode::NOT_FOUND, "not found; admin endpoints are disabled (no admin token file)\n"));
        };
        let expected = match read_token(&file) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!("admin token: {e}");
                return Err(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the admin token file cannot be read; see the log\n",
                ));
            }
        };
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .map(|t| t.trim_ascii())
            .unwrap_or_default();
        if bool::from(Sha256::digest(given).ct_eq(&Sha256::digest(&expected))) {
            Ok(())
        } else {
            let mut r = text(StatusCode::UNAUTHORIZED, "a valid bearer token is required\n");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"leakwatch\""));
            Err(r)
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
            tokio::join!(admin.authorize_within(good.clone(), deadline), admin.authorize_within(good, deadline));
        assert!(matches!((a, b), (Some(Ok(())), Some(Ok(())))), "concurrent requests wait their turn");
        std::fs::remove_file(&file).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, &file, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let refused = admin.authorize_within(headers(Some("Bearer x")), deadline).await;
        assert_eq!(status(refused.expect("answered at once")), StatusCode::SERVICE_UNAVAILABLE);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_file_disables_and_the_token_decides() {
        assert_eq!(status(AdminToken::new(None).authorize(&headers(Some("Bearer x")))), StatusCode::NOT_FOUND);
        let dir = std::env::temp_dir().join(format!("leakwatch-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret-token-0123456789\n").unwrap();
        let admin = AdminToken::new(Some(file.clone()));
        assert_eq!(status(admin.authorize(&headers(Some("Bearer s3cret-token-0123456789")))), StatusCode::OK);
        assert_eq!(status(admin.authorize(&headers(Some("Bearer s3cret-token-012345678")))), StatusCode::UNAUTHORIZED);
        assert_eq!(status(admin.authorize(&headers(Some("Basic s3cret-token-0123456789")))), StatusCode::UNAUTHORIZED);
        assert_eq!(status(admin.authorize(&headers(None))), StatusCode::UNAUTHORIZED);
        // A rotated Secret takes effect at the next request.
        std::fs::write(&file, "another-token-0123456789").unwrap();
        assert_eq!(status(admin.authorize(&headers(Some("Bearer s3cret-token-0123456789")))), StatusCode::UNAUTHORIZED);
        assert_eq!(status(admin.authorize(&headers(Some("Bearer another-token-0123456789")))), StatusCode::OK);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(status(admin.authorize(&headers(Some("Bearer x")))), StatusCode::SERVICE_UNAVAILABLE);
        // A reload that removes the file setting disables the endpoints in every clone.
        let served = admin.clone();
        admin.set_file(None);
        assert_eq!(status(served.authorize(&headers(Some("Bearer x")))), StatusCode::NOT_FOUND);
        std::fs::remove_dir(&dir).unwrap();
    }
}
