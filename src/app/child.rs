//! The command `leakwatch run` wraps: started with its stdout and stderr piped into the `stdout`
//! and `stderr` log sources.

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;

use crate::logs::capture::Capture;
use crate::logs::{LogSource, SourceKind};

/// The wrapped command could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {command:?}: {source}")]
pub struct SpawnError {
    /// The command.
    pub(crate) command: OsString,
    /// The OS error.
    #[source]
    pub(crate) source: std::io::Error,
}

/// The running wrapped command and the threads capturing its output.
pub(crate) struct Child {
    /// The process.
    pub(crate) process: tokio::process::Child,
    /// Its pid (0 if it was already reaped).
    pub(crate) pid: i32,
    /// The capture threads of its stdout and stderr (none for an inherited stream).
    pub(crate) captures: Vec<Capture>,
}

/// Starts `command` with its output captured into the `stdout` and `stderr` sources of
/// `sources`.
pub(crate) fn start(command: &[OsString], sources: &[Arc<LogSource>]) -> Result<Child, SpawnError> {
    let mut captures = Vec::new();
    let (stdout, stderr) = capture_streams(sources, &mut captures);
    let process = spawn(command, stdout, stderr)?;
    let pid = process.id().map(|p| p as i32).unwrap_or(0);
    Ok(Child { process, pid, captures })
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

fn spawn(command: &[OsString], stdout: Stdio, stderr: Stdio) -> Result<tokio::process::Child, SpawnError> {
    let (program, args) = command.split_first().ok_or_else(|| SpawnError {
        command: OsString::new(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
    })?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|source| SpawnError { command: program.clone(), source })?;
    tracing::info!(pid = child.id(), command = ?program, "started wrapped command");
    Ok(child)
}
