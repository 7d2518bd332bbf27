//! The web configuration file (`--web.config.file`) in the exporter-toolkit format shared by the
//! Prometheus exporters, so existing scrape configs and Secrets work unchanged: TLS
//! ([`tls`]: certificate reload on change, client certificates), basic auth with bcrypt
//! ([`auth`]), extra response headers and a request rate limit. Loaded and checked at startup;
//! a bad file is a config error (exit 64) naming the file, the key and the line. Like
//! exporter-toolkit, which reads the file on every request, leakwatch picks up a changed file at
//! the next request ([`LiveWebConfig`]); a bad new file keeps the previous one and logs why.

pub(crate) mod auth;
mod file;
mod rate;
pub(crate) mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};

pub(crate) use auth::{SharedUsers, Users, Verifier};
pub(crate) use rate::RateLimit;

/// The largest web config file accepted.
pub(crate) const MAX_WEB_CONFIG_BYTES: u64 = 1 << 20;

/// A checked web configuration.
pub(crate) struct WebConfig {
    /// The file it came from.
    pub(crate) path: PathBuf,
    /// TLS, when `tls_server_config` sets anything.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth users, when any are listed.
    pub(crate) users: Option<Users>,
    /// Headers added to every response.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The request rate limit, when `rate_limit.interval` is not 0.
    pub(crate) rate_limit: Option<RateLimit>,
    /// What the file asks that leakwatch serves differently (logged at startup).
    pub(crate) warnings: Vec<String>,
    /// The files it consists of (itself, certificate, key and client CA files), with what each
    /// is: no log source may read them ([`crate::logs::guard`]).
    pub(crate) files: Vec<(&'static str, PathBuf)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("users", &self.users)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// Reads and checks the file (and the certificate and key it names). The error starts with
    /// the file's path.
    pub(crate) fn load(path: &Path) -> Result<WebConfig, String> {
        let at = |e: String| format!("{}: {e}", path.display());
        // A regular file only, opened without blocking (see crate::fsread).
        let bytes = crate::fsread::read_capped(path, MAX_WEB_CONFIG_BYTES).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(&bytes).map_err(|e| at(format!("not UTF-8: {e}")))?;
        let parsed = file::parse(text).map_err(at)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let t = &parsed.tls_server_config;
        let mut files = vec![("web config", path.to_path_buf())];
        for (what, file) in
            [("TLS certificate", &t.cert_file), ("TLS key", &t.key_file), ("TLS client CA", &t.client_ca_file)]
        {
            if !file.is_empty() {
                files.push((what, dir.join(file)));
            }
        }
        let mut warnings = Vec::new();
        let tls = match parsed.tls_server_config.is_enabled() {
            true => Some(tls::server_config(&parsed.tls_server_config, dir, &mut warnings).map_err(at)?),
            false => None,
        };
        if parsed.http_server_config.http2 == Some(true) && tls.is_some() {
            warnings.push("http_server_config.http2: leakwatch serves HTTP/1.1 only (Prometheus scrapes it)".into());
        }
        let users = Users::new(parsed.basic_auth_users);
        if users.is_some() && tls.is_none() {
            warnings.push("basic_auth_users without tls_server_config: passwords cross the network in clear".into());
        }
        let mut headers = Vec::new();
        for (name, value) in parsed.http_server_config.headers.0 {
            let header = HeaderName::try_from(name.as_str()).map_err(|e| at(format!("header {name}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| at(format!("header {name}: {e}")))?;
            headers.push((header, value));
        }
        let limit = parsed.rate_limit;
        let rate_limit = match limit.interval.0 {
            Duration::ZERO => None,
            interval => {
                if limit.burst == 0 {
                    warnings.push(
                        "rate_limit.burst is 0: every request is refused with 429 (as in exporter-toolkit)".into(),
                    );
                }
                Some(RateLimit::new(interval, limit.burst))
            }
        };
        Ok(WebConfig { path: path.to_path_buf(), tls, users, headers, rate_limit, warnings, files })
    }
}

/// The web config in force: re-read when its file changes (one `stat` per request decides).
#[derive(Debug)]
pub(crate) struct LiveWebConfig {
    state: Mutex<(Arc<WebConfig>, Option<tls::Stamp>)>,
}

impl LiveWebConfig {
    /// Starts from a config loaded at startup.
    pub(crate) fn new(config: Arc<WebConfig>) -> Self {
        let stamp = tls::Stamp::of(&config.path);
        Self { state: Mutex::new((config, stamp)) }
    }

    /// The config now: reloaded first if the file changed since the last look. A file that no
    /// longer loads, or that would turn TLS on or off (never a silent downgrade to plain HTTP;
    /// that takes a restart), keeps the previous config (logged once per change).
    pub(crate) fn current(&self) -> Arc<WebConfig> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = state.0.path.clone();
        let now = tls::Stamp::of(&path);
        if now != state.1 {
            state.1 = now;
            match WebConfig::load(&path) {
                Ok(config) if config.tls.is_some() != state.0.tls.is_some() => tracing::error!(
                    file = %path.display(),
                    "web config not reloaded, keeping the previous one: it turns TLS {}; restart leakwatch for that",
                    if config.tls.is_some() { "on" } else { "off" }
                ),
                Ok(config) => {
                    tracing::info!(file = %path.display(), tls = config.tls.is_some(), "web config reloaded");
                    for warning in &config.warnings {
                        tracing::warn!(file = %path.display(), "{warning}");
                    }
                    state.0 = Arc::new(config);
                }
                Err(e) => tracing::error!("web config not reloaded, keeping the previous one: {e}"),
            }
        }
        state.0.clone()
    }
}
