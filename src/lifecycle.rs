//! Process lifecycle: binds, starts the sampler, the alert engine, the history, the reloader and
//! the server, handles SIGTERM/SIGINT (forwarded to the wrapped command in `run` mode) and SIGHUP
//! (reload), and shuts down within a grace period. The only module that spawns long-lived tasks (the
//! reloader restarts the Alertmanager push on the same tracker).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::{self, AlertState, Engine};
use crate::cleanup::{self, Cleaner};
use crate::config::ValidConfig;
use crate::history::{self, SharedHistory};
use crate::http::admin::AdminToken;
use crate::http::AppState;
use crate::logs::capture::Capture;
use crate::logs::{LogSource, LogSources, SourceKind};
use crate::metrics::StaticInfo;
use crate::reload::apply::{Followers, Push, Wrapped};
use crate::reload::{self, ConfigSource, Loaded, ReloadHandle, ReloadStatus, Running, Trigger};
use crate::sample::{self, Sampler};
use crate::snapshot::Snapshot;
use crate::web::SharedUsers;

/// How long the wrapped command's output may stay open after it exits (`run` mode).
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);
/// How long tasks get to finish once shutdown starts (the HTTP drain is
/// [`crate::http::SHUTDOWN_GRACE`] of it); then leakwatch exits anyway, and `main` does not wait
/// for blocking work still running (a reload stuck in a file system): SIGTERM to exit stays
/// under 2 s.
pub const STOP_TIMEOUT: Duration = Duration::from_millis(1500);

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
    #[error("cannot start {command:?}: {source}")]
    Spawn {
        /// The command.
        command: OsString,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
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

    // Which files the log readers may open (shared; a reload replaces it).
    let paths = crate::logs::guard::SharedPolicy::new(reload::apply::path_policy(&config, source.path()));
    let sources: Vec<Arc<LogSource>> = config
        .logs
        .iter()
        .map(|s| Arc::new(LogSource::new(s.name.clone(), s.kind.clone(), s.limits).with_paths(paths.clone())))
        .collect();
    let mut captures = Vec::new();
    let mut child = match &wrapped {
        Some(command) => {
            let (stdout, stderr) = capture_streams(&sources, &mut captures);
            Some(spawn(command, stdout, stderr)?)
        }
        None => None,
    };
    let run_mode = Wrapped {
        pid: child.as_ref().map(|c| c.id().map(|p| p as i32).unwrap_or(0)),
        program: wrapped.as_ref().and_then(|w| w.first().cloned()),
    };
    let child_pid = run_mode.pid;
    let logs = Arc::new(LogSources::new(sources));
    let sampling = run_mode.sampler_config(&config, logs.clone());
    let target_name = sampling.settings.target_name.clone();
    tracing::info!(%local, target = %target_name, watching = %sampling.settings.spec.describe(), interval = ?config.interval, "leakwatch listening");
    let followers = Followers::start(logs.clone(), paths);

    let (alert_tx, alert_rx) = watch::channel(Arc::new(AlertState::default()));
    let sampler = Sampler::new(sampling.settings.clone()).with_trends(alert_rx.clone());
    let (sampler_tx, sampler_rx) = watch::channel(Arc::new(sampling));
    let (rules_tx, rules_rx) = watch::channel(Arc::new(config.alerts.clone()));
    let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(&target_name)));
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (sampler_trims, sampler_inbox) = cleanup::trim_channel();
    let (engine_trims, engine_inbox) = cleanup::trim_channel();
    tracker.spawn(sample::run(sampler, sampler_rx, tx, sampler_inbox, token.child_token()));
    let engine = Engine::new(config.alerts.clone());
    tracker.spawn(alert::run(engine, rx.clone(), rules_rx, alert_tx, engine_inbox, token.child_token()));
    let identity = alert::push::Identity::new(
        &info,
        config.external_url.as_deref(),
        local,
        std::env::var("POD_IP").ok().as_deref(),
        hostname().as_deref(),
    );
    let mut push = Push::new(alert_rx.clone(), identity, tracker.clone(), token.child_token());
    push.set(config.alertmanager.clone());
    let admin = AdminToken::new(config.admin_token_file.clone());
    let (cleaner, cleanup) = Cleaner::new(config.cleanup);

    let (reload_tx, reload_rx) = mpsc::channel(8);
    let (status_tx, status_rx) = watch::channel(Arc::new(ReloadStatus::started(loaded.hash)));
    let reloads = ReloadHandle::new(reload_tx.clone(), status_rx);
    if let Some(path) = source.path() {
        tracker.spawn(reload::watch::run(path.to_path_buf(), reload_tx, token.child_token()));
    }
    // A config reload replaces the log endpoints' users through this handle.
    let log_users = SharedUsers::new(config.logs_basic_auth_users.clone());
    log_web_config(&config);
    let (console, interval) = (config.console, config.interval);
    let history = SharedHistory::new(console.history);
    tracker.spawn(history::run(history.clone(), rx.clone(), alert_rx.clone(), token.child_token()));
    let config_web = config.web.clone();
    let running = Running {
        config,
        wrapped: run_mode,
        followers: Some(followers),
        sampler: sampler_tx,
        rules: rules_tx,
        push,
        admin: admin.clone(),
        cleanup: cleanup.clone(),
        log_users: log_users.clone(),
    };
    // Also stops the log readers on shutdown.
    tracker.spawn(reload::run(source, running, reload_rx, status_tx, token.child_token()));

    let mut last_snapshot = rx.clone();
    let state = AppState::new(rx.clone(), info, logs.clone(), token.child_token())
        .with_alerts(alert_rx)
        .with_admin(admin)
        .with_web(config_web, log_users)
        .with_reload(reloads.clone())
        .with_cleanup(cleanup)
        .with_console(history.clone(), console, interval);
    let cleaner = cleaner
        .trim_directly(logs)
        .trim_directly(Arc::new(history))
        .trim_directly(state.metrics_cache())
        .ask("sampler", sampler_trims)
        .ask("alert_engine", engine_trims);
    tracker.spawn(cleanup::run(cleaner, rx, token.child_token()));
    tracker.spawn(crate::http::serve(listener, state, token.child_token()));
    tracker.close();

    let code = match child.as_mut() {
        Some(child) => loop {
            tokio::select! {
                status = child.wait() => break child_ended(status, child_pid, &mut last_snapshot).await,
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

/// The kernel's host name (the pod name in Kubernetes), for the `instance` label's fallback.
fn hostname() -> Option<String> {
    let path = crate::roots::Roots::default().proc_file("sys/kernel/hostname");
    std::fs::read_to_string(path).ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
}

/// SIGHUP reloads the configuration (it is not forwarded to the wrapped command).
fn reload_on_sighup(reloads: &ReloadHandle) {
    tracing::info!("SIGHUP: reloading the configuration");
    reloads.request(Trigger::Signal);
}

/// Says what the web config turned on, and what of it leakwatch serves differently.
fn log_web_config(config: &ValidConfig) {
    if let Some(web) = &config.web {
        let users = web.users.as_ref().map_or(0, |u| u.names().count());
        tracing::info!(file = %web.path.display(), tls = web.tls.is_some(), basic_auth_users = users, "web config loaded");
        for warning in &web.warnings {
            tracing::warn!(file = %web.path.display(), "{warning}");
        }
    }
    if let Some(users) = &config.logs_basic_auth_users {
        tracing::info!(users = users.names().count(), "log endpoints protected by logs.basic_auth_users");
        if config.web.as_ref().is_none_or(|w| w.tls.is_none()) {
            tracing::warn!("logs.basic_auth_users without TLS: passwords cross the network in clear");
        }
    }
}

/// Pipes for the wrapped command's stdout and stderr, read by capture threads into the `stdout`
/// and `stderr` sources (inherited streams when a source is missing or a pipe cannot be made).
fn capture_streams(sources: &[Arc<LogSource>], captures: &mut Vec<Capture>) -> (Stdio, Stdio) {
    let mut pipe = |kind: SourceKind, forward: Box<dyn std::io::Write + Send>| {
        let source = sources.iter().find(|s| s.kind == kind)?;
        Capture::start(source.clone(), forward)
            .inspect_err(|e| tracing::error!(source = %source.name, "cannot capture the stream: {e}"))
            .ok()
            .map(|(stdio, capture)| {
                captures.push(capture);
                stdio
            })
    };
    let stdout = pipe(SourceKind::Stdout, Box::new(std::io::stdout())).unwrap_or_else(Stdio::inherit);
    let stderr = pipe(SourceKind::Stderr, Box::new(std::io::stderr())).unwrap_or_else(Stdio::inherit);
    (stdout, stderr)
}

fn spawn(command: &[OsString], stdout: Stdio, stderr: Stdio) -> Result<tokio::process::Child, RunError> {
    let (program, args) = command.split_first().ok_or_else(|| RunError::Spawn {
        command: OsString::new(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
    })?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| RunError::Spawn { command: program.clone(), source })?;
    tracing::info!(pid = child.id(), command = ?program, "started wrapped command");
    Ok(child)
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
    pid: Option<i32>,
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
async fn oom_report_for(pid: Option<i32>, snapshots: &mut watch::Receiver<Arc<Snapshot>>) -> bool {
    let Some(pid) = pid else { return false };
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
pub fn exit_code(status: ExitStatus) -> i32 {
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
