//! Secret tokens read from files (mounted Kubernetes Secrets), and the admin endpoints' bearer
//! token. The token file is read on every admin request, so a rotated Secret takes effect without
//! a reload. Without a configured file the admin endpoints do not exist; a missing or wrong token
//! is refused, compared in constant time over SHA-256 digests (neither the token's bytes nor its
//! length leak through timing). HTTP turns a [`Denied`] into its response (`http::admin`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest token accepted, bytes.
pub(crate) const MIN_TOKEN_BYTES: usize = 16;
/// Longest token file read, bytes.
pub(crate) const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The token in `file`: its content without surrounding whitespace, at least
/// [`MIN_TOKEN_BYTES`] long. The error names the file and the problem, never the token.
pub(crate) fn read_token(file: &Path) -> Result<Vec<u8>, String> {
    // A regular file only, opened without blocking (see crate::fsread).
    let bytes = crate::fsread::read_capped(file, MAX_TOKEN_FILE_BYTES).map_err(|e| e.to_string())?;
    let token = bytes.trim_ascii();
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "{}: the token must be at least {MIN_TOKEN_BYTES} bytes, got {}",
            file.display(),
            token.len()
        ));
    }
    if token.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("{}: the token must be printable ASCII without spaces", file.display()));
    }
    Ok(token.to_vec())
}

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No token file is configured: the admin endpoints do not exist.
    Disabled,
    /// The bearer token is missing or wrong.
    Unauthorized,
    /// The token file cannot be read (logged).
    Unreadable,
}

/// Where the admin token is read from; `None` disables the admin endpoints. Clones share the
/// setting, so a reload ([`AdminToken::set_file`]) reaches the server's copy.
#[derive(Debug, Clone)]
pub(crate) struct AdminToken {
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
    pub(crate) fn new(file: Option<PathBuf>) -> Self {
        Self { file: Arc::new(RwLock::new(file)), reading: Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    /// [`AdminToken::authorize`] on the blocking pool, one read of the file at a time, within
    /// `deadline` (waiting for the turn included); `None` past it.
    pub(crate) async fn authorize_within(
        &self,
        headers: HeaderMap,
        deadline: std::time::Duration,
    ) -> Option<Result<(), Denied>> {
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
    pub(crate) fn enabled(&self) -> bool {
        self.file.read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }

    /// Changes the token file (a reload); `None` disables the admin endpoints.
    pub(crate) fn set_file(&self, file: Option<PathBuf>) {
        *self.file.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = file;
    }

    /// Ok when the request carries `Authorization: Bearer <token>` with the file's token;
    /// otherwise why not.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let file = self.file.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let Some(file) = file else {
            return Err(Denied::Disabled);
        };
        let expected = match read_token(&file) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!("admin token: {e}");
                return Err(Denied::Unreadable);
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
            Err(Denied::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_token_files_are_named_without_the_token() {
        let dir = std::env::temp_dir().join(format!("leakwatch-admin-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "short").unwrap();
        let err = read_token(&file).unwrap_err();
        assert!(err.contains("at least 16") && !err.contains("short"), "{err}");
        std::fs::write(&file, "has a space in the middle of it").unwrap();
        assert!(read_token(&file).unwrap_err().contains("printable"));
        std::fs::write(&file, vec![b'a'; 5000]).unwrap();
        assert!(read_token(&file).unwrap_err().contains("larger than"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(read_token(&file).unwrap_err().contains("token"));
    }
}
