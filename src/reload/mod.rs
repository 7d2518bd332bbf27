//! Hot reload of the config file: triggered by a change of the file (`watch`), SIGHUP or
//! `POST /-/reload`; the file is read, overlaid with the same flags and `LEAKWATCH_*` values as
//! at start, validated completely and only then applied (`app::App::apply`, through
//! `Reconfigure`). A bad file keeps the old config running, is logged with the file (and line,
//! for YAML errors) and shows as `leakwatch_config_last_reload_successful 0` (`status`).
//!
//! ```text
//!  watch::run (notify on the directory, debounced) ─┐
//!  SIGHUP (lifecycle) ──────────────────────────────┼─► mpsc<Request> ─► run(): ConfigSource::load
//!  POST /-/reload (http, waits for the outcome) ────┘        │  (read, hash, overlay, validate)
//!                                                            ▼
//!             Reconfigure::apply (app::App::apply: each part reconfigures itself; a sampling
//!             pass starts at once) ─► watch<ReloadStatus>
//! ```

pub(crate) mod plan;
pub(crate) mod status;
pub(crate) mod watch;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::problem::{self, Problem};
use crate::config::{self, locate, Config, ConfigError, Overlay, ValidConfig};
pub use status::{ConfigHash, ReloadStatus};

/// Where the configuration comes from: the file (if any), and the flags and environment values
/// laid over it, as at start.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    path: Option<PathBuf>,
    overlay: Arc<dyn Overlay>,
    wrapped: bool,
}

/// A configuration that passed validation, and the hash of its file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: ValidConfig,
    /// SHA-256 of the file's bytes; `None` without a file.
    pub(crate) hash: Option<ConfigHash>,
}

impl ConfigSource {
    /// The file at `path` (none: defaults), overlaid with `overlay` (flags and environment
    /// values win); `wrapped` in `leakwatch run` mode.
    pub fn new(path: Option<PathBuf>, overlay: Arc<dyn Overlay>, wrapped: bool) -> Self {
        Self { path, overlay, wrapped }
    }

    /// The config file.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads, overlays and validates (blocking: reads the file and the admin token file).
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let bytes = self.read()?;
        let hash = bytes.as_deref().map(hash);
        Ok(Loaded { config: self.validate(bytes.as_deref())?, hash })
    }

    /// The file's bytes (`None` without a file).
    fn read(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.path.as_deref().map(config::read_file).transpose()
    }

    /// Parses `bytes` (the file's), overlays and validates.
    fn validate(&self, bytes: Option<&[u8]>) -> Result<ValidConfig, ConfigError> {
        let mut merged = match (&self.path, bytes) {
            (Some(path), Some(bytes)) => Config::from_file_bytes(path, bytes)?,
            _ => Config::default(),
        };
        self.overlay.apply(&mut merged);
        config::validate(&merged, self.wrapped).map_err(|e| match (e, bytes) {
            // Name the line of each value that failed (when the file is block-style YAML).
            (ConfigError::Invalid(mut problems), Some(bytes)) => {
                locate::locate(&String::from_utf8_lossy(bytes), &mut problems);
                ConfigError::Invalid(problems)
            }
            (e, _) => e,
        })
    }

    /// One reload attempt (blocking): `None` when `skip` is the content found (a file event
    /// for content already tried); else what was tried and the result.
    fn attempt(&self, skip: Option<&Tried>) -> Option<(Tried, Result<Loaded, ConfigError>)> {
        let bytes = match self.read() {
            Ok(b) => b,
            Err(e) => {
                let tried = Err(e.to_string());
                return (skip != Some(&tried)).then_some((tried, Err(e)));
            }
        };
        let hash = bytes.as_deref().map(hash);
        if skip == Some(&Ok(hash)) {
            return None;
        }
        Some((Ok(hash), self.validate(bytes.as_deref()).map(|config| Loaded { config, hash })))
    }
}

/// The content a reload attempt found: the file's hash, or why it could not be read.
type Tried = Result<Option<ConfigHash>, String>;

fn hash(bytes: &[u8]) -> ConfigHash {
    Sha256::digest(bytes).into()
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The file changed (or the periodic check): skipped when the content is the one last tried.
    File,
    /// SIGHUP.
    Signal,
    /// `POST /-/reload`.
    Http,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::File => "file change",
            Trigger::Signal => "SIGHUP",
            Trigger::Http => "POST /-/reload",
        }
    }
}

/// A successful reload: the settings that still need a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Keys whose new values take effect only after a restart.
    pub(crate) restart_needed: Vec<&'static str>,
}

/// A reload request, with a channel for its outcome when someone waits for it.
#[derive(Debug)]
pub(crate) struct Request {
    /// What asked.
    pub(crate) trigger: Trigger,
    /// Gets the outcome, or the reason the file was refused.
    pub(crate) reply: Option<oneshot::Sender<Result<Outcome, String>>>,
}

/// Asks the reloader for reloads and reads its status (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct ReloadHandle {
    requests: mpsc::Sender<Request>,
    status: tokio::sync::watch::Receiver<Arc<ReloadStatus>>,
}

impl ReloadHandle {
    /// A handle over the reloader's request queue and status channel.
    pub(crate) fn new(
        requests: mpsc::Sender<Request>,
        status: tokio::sync::watch::Receiver<Arc<ReloadStatus>>,
    ) -> Self {
        Self { requests, status }
    }

    /// The status now.
    pub(crate) fn status(&self) -> Arc<ReloadStatus> {
        self.status.borrow().clone()
    }

    /// Asks for a reload without waiting (SIGHUP); a full queue already holds one.
    pub(crate) fn request(&self, trigger: Trigger) {
        let _ = self.requests.try_send(Request { trigger, reply: None });
    }

    /// Reloads and waits for the outcome (`POST /-/reload`).
    pub(crate) async fn reload(&self, trigger: Trigger) -> Result<Outcome, String> {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(Request { trigger, reply: Some(reply) })
            .await
            .map_err(|_| "leakwatch is shutting down".to_owned())?;
        outcome.await.map_err(|_| "leakwatch is shutting down".to_owned())?
    }
}

/// What a reload reconfigures: the running parts built from a config (`app::App`; defined
/// here so that `reload` needs nothing above it).
pub(crate) trait Reconfigure: Send + 'static {
    /// The config in effect.
    fn config(&self) -> &ValidConfig;
    /// Applies `new` (already validated); resolves to the keys that need a restart.
    fn apply(&mut self, new: ValidConfig) -> impl Future<Output = Vec<&'static str>> + Send;
    /// Stops what outlives the task tracker (the log readers' threads) at shutdown.
    fn stop(self) -> impl Future<Output = ()> + Send;
}

/// Serves reload requests until cancelled, then stops `running`'s log readers.
pub(crate) async fn run(
    source: ConfigSource,
    mut running: impl Reconfigure,
    mut requests: mpsc::Receiver<Request>,
    status: tokio::sync::watch::Sender<Arc<ReloadStatus>>,
    token: CancellationToken,
) {
    // The content last tried, good or bad: a file event for it is not worth another attempt.
    let mut last_tried: Tried = Ok(status.borrow().hash);
    loop {
        let request = tokio::select! {
            _ = token.cancelled() => break,
            r = requests.recv() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let trigger = request.trigger;
        let current = status.borrow().clone();
        let attempt = {
            let source = source.clone();
            let skip = (trigger == Trigger::File).then(|| last_tried.clone());
            tokio::task::spawn_blocking(move || source.attempt(skip.as_ref())).await
        };
        let (tried, loaded) = match attempt {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => (
                last_tried.clone(),
                Err(ConfigError::Invalid(vec![Problem::new("", format!("the reload task failed: {e}"))])),
            ),
        };
        last_tried = tried;
        let result = match loaded {
            Ok(loaded) => {
                let changed = plan::changed_sections(running.config(), &loaded.config);
                let restart_needed = running.apply(loaded.config).await;
                tracing::info!(trigger = trigger.as_str(), changed = ?changed, "configuration reloaded");
                status.send_replace(Arc::new(current.succeeded(loaded.hash)));
                Ok(Outcome { restart_needed })
            }
            Err(e) => {
                let reason = error_text(&source, &e);
                tracing::error!(
                    trigger = trigger.as_str(),
                    "configuration reload failed, keeping the running configuration: {reason}"
                );
                status.send_replace(Arc::new(current.failed()));
                Err(reason)
            }
        };
        if let Some(reply) = request.reply {
            let _ = reply.send(result);
        }
    }
    running.stop().await;
}

/// The error with the file named (read and syntax errors name it already).
fn error_text(source: &ConfigSource, e: &ConfigError) -> String {
    match (e, source.path()) {
        (ConfigError::Invalid(problems), Some(path)) => {
            format!("{}: {}", path.display(), problem::join(problems, "; "))
        }
        (ConfigError::Invalid(problems), None) => problem::join(problems, "; "),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_event_for_content_already_tried_is_skipped_and_problems_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("leakwatch-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, "interval: 2s\n").unwrap();
        let source = ConfigSource::new(Some(path.clone()), Arc::new(()), false);
        let (tried, result) = source.attempt(None).expect("a first attempt");
        assert_eq!(result.unwrap().config.sampler.interval, std::time::Duration::from_secs(2));
        assert!(source.attempt(Some(&tried)).is_none(), "the same content again");
        // Flags still win over the file.
        #[derive(Debug)]
        struct OneSecond;
        impl Overlay for OneSecond {
            fn apply(&self, config: &mut Config) {
                config.interval = Some(std::time::Duration::from_secs(1));
            }
        }
        let flagged = ConfigSource::new(Some(path.clone()), Arc::new(OneSecond), false);
        assert_eq!(flagged.load().unwrap().config.sampler.interval, std::time::Duration::from_secs(1));

        std::fs::write(&path, "interval: 2s\ntarget:\n  max_processes: 0\n").unwrap();
        let (bad, result) = source.attempt(Some(&tried)).expect("new content is tried");
        let e = error_text(&source, &result.unwrap_err());
        assert!(e.contains("config.yaml: target.max_processes: must be 1..=10000, got 0 (line 3)"), "{e}");
        assert!(source.attempt(Some(&bad)).is_none(), "the same bad content is not tried twice");

        std::fs::remove_file(&path).unwrap();
        let (gone, result) = source.attempt(Some(&bad)).expect("a missing file is a failure");
        assert!(error_text(&source, &result.unwrap_err()).contains("config.yaml"));
        assert!(source.attempt(Some(&gone)).is_none(), "the same read error is not retried");
        std::fs::remove_dir(&dir).unwrap();
    }
}
