//! Process lifecycle: binds, starts the sampler, the alert engine and the server, handles SIGTERM/SIGINT (forwarded
//! to the wrapped command in `run` mode) and shuts down within a grace period. The only module
//! that spawns long-lived tasks.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::{self, AlertState, Engine};
use crate::config::{Selector, ValidConfig};
use crate::http::admin::AdminToken;
use crate::http::AppState;
use crate::logs::capture::Capture;
use crate::logs::tail::TailThread;
use crate::logs::{LogSource, LogSources, SourceKind};
use crate::metrics::StaticInfo;
use crate::sample::target::TargetSpec;
use crate::sample::{self, Sampler, SamplerSettings};
use crate::snapshot::Snapshot;
use crate::web::SharedUsers;

/// How long tasks get to finish after shutdown starts.
pub const GRACE_PERIOD: Duration = Duration::from_secs(10);

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

/// Runs leakwatch until a signal (or, with `wrapped`, until the wrapped command exits).
/// Returns the process exit code: 0, or the wrapped command's code (128 + signal if it was killed).
pub async fn run(config: ValidConfig, wrapped: Option<Vec<OsString>>, info: StaticInfo) -> Result<i32, RunError> {
    let listener =
        crate::http::bind(config.listen).await.map_err(|source| RunError::Bind { addr: config.listen, source })?;
    let local = listener.local_addr().unwrap_or(config.listen);
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    let sources: Vec<Arc<LogSource>> =
        config.logs.iter().map(|s| Arc::new(LogSource::new(s.name.clone(), s.kind.clone(), s.limits))).collect();
    let mut captures = Vec::new();
    let mut child = match &wrapped {
        Some(command) => {
            let (stdout, stderr) = capture_streams(&sources, &mut captures);
            Some(spawn(command, stdout, stderr)?)
        }
        None => None,
    };
    let spec = match (&config.selector, &child) {
        (_, Some(c)) => TargetSpec::Child(c.id().map(|p| p as i32).unwrap_or(0)),
        (Selector::Own | Selector::Wrapped, None) => TargetSpec::Own,
        (Selector::Pid(p), None) => TargetSpec::Pid(*p),
        (Selector::Pidfile(f), None) => TargetSpec::Pidfile(f.clone()),
        (Selector::ProcessName(n), None) => TargetSpec::ProcessName(n.clone()),
        (Selector::CmdlineRegex(r), None) => TargetSpec::CmdlineRegex(r.clone()),
    };
    let target_name =
        config.target_name.clone().unwrap_or_else(|| default_target_name(&config.selector, wrapped.as_deref()));
    tracing::info!(%local, target = %target_name, watching = %spec.describe(), interval = ?config.interval, "leakwatch listening");

    let tails: Vec<TailThread> = sources
        .iter()
        .filter(|s| matches!(s.kind, SourceKind::File { .. }))
        .filter_map(|s| {
            TailThread::start(s.clone())
                .inspect_err(|e| tracing::error!(source = %s.name, "cannot start following the source: {e}"))
                .ok()
        })
        .collect();
    let logs = Arc::new(LogSources::new(sources));
    let sampler = Sampler::new(SamplerSettings {
        roots: config.roots.clone(),
        spec,
        target_name: target_name.clone(),
        max_processes: config.max_processes,
        pss_max_rss: config.pss_max_rss,
        pss_time_budget: config.pss_time_budget,
        logs: logs.clone(),
        conns: config.conns.clone(),
        tasks: config.tasks,
    });
    let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(&target_name)));
    let (alert_tx, alert_rx) = watch::channel(Arc::new(AlertState::default()));
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(sample::run(sampler, config.interval, tx, token.child_token()));
    tracker.spawn(alert::run(Engine::new(config.alerts.clone()), rx.clone(), alert_tx, token.child_token()));
    if let Some(target) = config.alertmanager.clone() {
        tracing::info!(alertmanager = %target.authority, path = %target.path, "pushing alerts to Alertmanager");
        tracker.spawn(alert::push::run(target, alert_rx.clone(), token.child_token()));
    }
    // A config reload replaces the log endpoints' users through this handle.
    let log_users = SharedUsers::new(config.logs_basic_auth_users.clone());
    log_web_config(&config);
    let state = AppState::new(rx, info, logs, token.child_token())
        .with_alerts(alert_rx)
        .with_admin(AdminToken::new(config.admin_token_file.clone()))
        .with_web(config.web.clone(), log_users);
    tracker.spawn(crate::http::serve(listener, state, token.child_token()));
    let stop_tails = token.child_token();
    tracker.spawn(async move {
        stop_tails.cancelled().await;
        // Joining threads blocks: do it off the runtime thread.
        let _ = tokio::task::spawn_blocking(move || tails.into_iter().for_each(TailThread::stop)).await;
    });
    tracker.close();

    let code = match child.as_mut() {
        Some(child) => loop {
            tokio::select! {
                status = child.wait() => break status.map(exit_code).unwrap_or(1),
                _ = sigterm.recv() => forward(child, rustix::process::Signal::TERM),
                _ = sigint.recv() => forward(child, rustix::process::Signal::INT),
            }
        },
        None => {
            tokio::select! {
                _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
            }
            0
        }
    };
    // Everything the wrapped command wrote is forwarded and stored before leakwatch exits.
    if !captures.is_empty() {
        let drained = tokio::task::spawn_blocking(move || captures.into_iter().for_each(Capture::wait));
        if tokio::time::timeout(GRACE_PERIOD, drained).await.is_err() {
            tracing::warn!("the wrapped command's output is still open (a background process?); not waiting longer");
        }
    }
    token.cancel();
    if tokio::time::timeout(GRACE_PERIOD, tracker.wait()).await.is_err() {
        tracing::warn!("tasks did not stop within {GRACE_PERIOD:?}; exiting anyway");
    }
    Ok(code)
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

/// The shell convention: the exit code, or 128 + the signal number that killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

fn default_target_name(selector: &Selector, wrapped: Option<&[OsString]>) -> String {
    match (selector, wrapped.and_then(|w| w.first())) {
        (_, Some(program)) => Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()),
        (Selector::Own, None) => Some("leakwatch".to_owned()),
        (Selector::ProcessName(n), None) => Some(n.clone()),
        _ => None,
    }
    .unwrap_or_else(|| "target".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(default_target_name(&Selector::Own, None), "leakwatch");
        assert_eq!(default_target_name(&Selector::ProcessName("nginx".into()), None), "nginx");
        assert_eq!(default_target_name(&Selector::Wrapped, Some(&["/usr/bin/python3".into()])), "python3");
        assert_eq!(default_target_name(&Selector::Pid(4), None), "target");
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
