//! Process lifecycle: binds, builds the running parts (`App::build`), spawns their tasks, the
//! reloader and the server, handles SIGTERM/SIGINT (forwarded to the wrapped command in `run`
//! mode) and SIGHUP (reload), and shuts down within a grace period. The only module that spawns
//! long-lived tasks (the Alertmanager push is restarted on the same tracker).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{child, App, Start};
use crate::info::StaticInfo;
use crate::logs::capture::Capture;
use crate::reload::{self, ConfigSource, Loaded, ReloadHandle, ReloadStatus, Trigger};
use crate::snapshot::Snapshot;

/// How long the wrapped command's output may stay open after it exits (`run` mode).
pub(crate) const GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How long tasks get to finish once shutdown starts (the HTTP drain is
/// [`crate::http::SHUTDOWN_GRACE`] of it); then leakwatch exits anyway, and `main` does not wait
/// for blocking work still running (a reload stuck in a file system): SIGTERM to exit stays
/// under 2 s.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why leakwatch could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The wrapped command could not be started.
    #[error(transparent)]
    Spawn(#[from] child::SpawnError),
    /// Installing a signal handler failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// Runs leakwatch until a signal (or, with `wrapped`, until the wrapped command exits), reloading
/// `loaded`'s configuration from `source` on SIGHUP, `POST /-/reload` and file changes.
/// Returns the process exit code: 0, or the wrapped command's code (128 + signal if it was killed).
pub async fn run(
    loaded: Loaded,
    source: ConfigSource,
    wrapped: Option<Vec<OsString>>,
    info: StaticInfo,
) -> Result<i32, RunError> {
    let config = loaded.config;
    let listener =
        crate::http::bind(config.listen).await.map_err(|source| RunError::Bind { addr: config.listen, source })?;
    let local = listener.local_addr().unwrap_or(config.listen);
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (reload_tx, reload_rx) = mpsc::channel(8);
    let (status_tx, status_rx) = watch::channel(Arc::new(ReloadStatus::started(loaded.hash)));
    let reloads = ReloadHandle::new(reload_tx.clone(), status_rx);
    let start = Start {
        config_file: source.path(),
        command: wrapped.as_deref(),
        info,
        local,
        reloads: reloads.clone(),
        tracker: tracker.clone(),
        token: token.clone(),
    };
    let built = App::build(&config, start)?;
    for task in built.tasks {
        tracker.spawn(task);
    }
    if let Some(path) = source.path() {
        tracker.spawn(reload::watch::run(path.to_path_buf(), reload_tx, token.child_token()));
    }
    // Also stops the log readers on shutdown.
    tracker.spawn(reload::run(source, built.app, reload_rx, status_tx, token.child_token()));
    tracker.spawn(crate::http::serve(listener, built.server, token.child_token()));
    tracker.close();

    let mut last_snapshot = built.snapshots;
    let (mut child, captures) = match built.child {
        Some(c) => (Some((c.process, c.pid)), c.captures),
        None => (None, Vec::new()),
    };
    let code = match child.as_mut() {
        Some((child, pid)) => loop {
            tokio::select! {
                status = child.wait() => break child_ended(status, *pid, &mut last_snapshot).await,
                _ = sigterm.recv() => forward(child, rustix::process::Signal::TERM),
                _ = sigint.recv() => forward(child, rustix::process::Signal::INT),
                _ = sighup.recv() => reload_on_sighup(&reloads),
            }
        },
        None => loop {
            tokio::select! {
                _ = sigterm.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    break 0;
                }
                _ = sigint.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    break 0;
                }
                _ = sighup.recv() => reload_on_sighup(&reloads),
            }
        },
    };
    // Everything the wrapped command wrote is forwarded and stored before leakwatch exits.
    if !captures.is_empty() {
        let drained = tokio::task::spawn_blocking(move || captures.into_iter().for_each(Capture::wait));
        if tokio::time::timeout(GRACE_PERIOD, drained).await.is_err() {
            tracing::warn!("the wrapped command's output is still open (a background process?); not waiting longer");
        }
    }
    token.cancel();
    if tokio::time::timeout(STOP_TIMEOUT, tracker.wait()).await.is_err() {
        tracing::warn!("tasks did not stop within {STOP_TIMEOUT:?}; exiting anyway");
    }
    Ok(code)
}

/// SIGHUP reloads the configuration (it is not forwarded to the wrapped command).
fn reload_on_sighup(reloads: &ReloadHandle) {
    tracing::info!("SIGHUP: reloading the configuration");
    reloads.request(Trigger::Signal);
}

fn forward(child: &tokio::process::Child, signal: rustix::process::Signal) {
    let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) else { return };
    tracing::info!(?signal, pid = pid.as_raw_nonzero().get(), "forwarding signal to the wrapped command");
    if let Err(e) = rustix::process::kill_process(pid, signal) {
        tracing::warn!("could not forward {signal:?}: {e}");
    }
}

/// Logs how the wrapped command ended. Killed by SIGKILL, it says whether leakwatch counted an
/// OOM kill of it: the exit watcher read the cgroup's counter at the exit and woke a sampling
/// pass, whose OOM report names the pid (awaited briefly). Returns the exit code.
async fn child_ended(
    status: std::io::Result<ExitStatus>,
    pid: i32,
    snapshots: &mut watch::Receiver<Arc<Snapshot>>,
) -> i32 {
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("waiting for the wrapped command failed: {e}");
            return 1;
        }
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => tracing::info!(code, "wrapped command exited"),
        (None, Some(signal)) => {
            let oom_killed = signal == rustix::process::Signal::KILL.as_raw() && oom_report_for(pid, snapshots).await;
            let kills_total = snapshots.borrow().oom.kills_total;
            tracing::warn!(signal, oom_killed, oom_kills_total = kills_total, "wrapped command killed by a signal");
        }
        _ => tracing::warn!("wrapped command ended without a code or signal"),
    }
    exit_code(status)
}

/// Waits up to 2 s for a snapshot with an OOM report naming `pid`.
async fn oom_report_for(pid: i32, snapshots: &mut watch::Receiver<Arc<Snapshot>>) -> bool {
    let found = |s: &Snapshot| s.oom.reports.iter().any(|r| r.pids.contains(&pid));
    let wait = async {
        loop {
            if found(&snapshots.borrow_and_update()) {
                return true;
            }
            if snapshots.changed().await.is_err() {
                return false;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), wait).await.unwrap_or(false)
}

/// The shell convention: the exit code, or 128 + the signal number that killed it.
pub(crate) fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
