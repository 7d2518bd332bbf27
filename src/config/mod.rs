//! Configuration: an optional YAML file, overridden by flags and `LEAKWATCH_*` environment
//! variables (clap reads both), checked by [`validate`] into a [`ValidConfig`].
//!
//! Precedence: flag > environment variable > config file > built-in default.

pub(crate) mod alerts;
pub(crate) mod locate;
pub(crate) mod problem;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::{units, yaml_guard};

pub use crate::sample::settings::Selector;
pub(crate) use alerts::AlertsConfig;
pub use validate::{validate, ValidConfig};

/// Default listen address. 10171: the exporter range 9100–9999 of Prometheus's
/// default-port-allocations page is exhausted; new exporters take ports above 10000.
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:10171";
/// Default sampling interval.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Default cap on the processes of one target group.
pub const DEFAULT_MAX_PROCESSES: usize = 64;
/// Default RSS above which PSS is not read (`smaps_rollup` cost grows with the mapping count).
pub const DEFAULT_PSS_MAX_RSS: u64 = 8 << 30;
/// Default time budget for one pass's `smaps_rollup` reads.
pub const DEFAULT_PSS_TIME_BUDGET: Duration = Duration::from_millis(100);
/// Default cap on the lines held per log source.
pub const DEFAULT_LOG_MAX_LINES: usize = 10_000;
/// Default cap on the text bytes held per log source.
pub(crate) const DEFAULT_LOG_MAX_BYTES: u64 = 8 << 20;
/// Default length at which a log line is cut.
pub(crate) const DEFAULT_LOG_MAX_LINE_BYTES: u64 = 64 << 10;
/// Default cap on live subscribers per log source.
pub(crate) const DEFAULT_LOG_MAX_SUBSCRIBERS: usize = 64;
/// Most peer groups.
pub(crate) const MAX_PEERS: usize = 32;
/// The largest config file accepted.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The config file, as written. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `host:port` to serve on, e.g. `127.0.0.1:10171` or `[::]:10171`. Default `0.0.0.0:10171`.
    pub(crate) listen: Option<String>,
    /// Sampling interval, e.g. `5s`. Default 5 s; 100 ms to 1 h.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) interval: Option<Duration>,
    /// procfs mount point (like node_exporter's `--path.procfs`). Default `/proc`.
    pub(crate) procfs_root: Option<PathBuf>,
    /// sysfs mount point (the cgroup filesystem is `<sysfs_root>/fs/cgroup`). Default `/sys`.
    pub(crate) sysfs_root: Option<PathBuf>,
    /// What to watch.
    pub(crate) target: TargetConfig,
    /// Proportional set size reads.
    pub(crate) pss: PssConfig,
    /// Tiered sampling: how often the expensive figures are read.
    pub(crate) sampling: SamplingConfig,
    /// Log sources and their buffers.
    pub(crate) logs: LogsConfig,
    /// Sockets: how to read the tables, peer groups, socket ages.
    pub(crate) connections: ConnectionsConfig,
    /// Child processes: their ages.
    pub(crate) tasks: TasksConfig,
    /// Alert rules (the built-in ones when absent).
    pub(crate) alerts: AlertsConfig,
    /// The admin endpoints (`POST /admin/cleanup`, `POST /-/reload`).
    pub(crate) admin: AdminConfig,
    /// When leakwatch trims its own structures.
    pub(crate) cleanup: CleanupConfig,
    /// The web console at `/` and its history.
    pub(crate) console: ConsoleConfig,
    /// The exporter-toolkit web config file (TLS, basic auth); from `--web.config.file` only.
    #[serde(skip)]
    pub(crate) web_config_file: Option<PathBuf>,
    /// The URL under which leakwatch is reached, e.g. `http://leakwatch.example:10171`; pushed
    /// alerts' `generatorURL` is this + `/alerts`. Default `http://INSTANCE` (see docs/alerts.md).
    /// Also `--web.external-url`.
    pub(crate) web_external_url: Option<String>,
}

/// `cleanup:` — leakwatch trims its own structures on an interval, when its own RSS passes a
/// threshold, and on `POST /admin/cleanup`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CleanupConfig {
    /// Time between cleanups. Default `5m`; 1s..=24h.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) interval: Option<Duration>,
    /// A sampling pass that finds leakwatch's own RSS above this starts a cleanup, e.g.
    /// `256MiB`. Default 256 MiB; 1MiB..=1TiB.
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) memory_threshold: Option<u64>,
    /// Least time between two memory-triggered cleanups. Default `1m`; 1s..=24h.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) memory_cooldown: Option<Duration>,
}

/// `console:` — the web console at `/` and the history behind its charts (`GET /api/history`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConsoleConfig {
    /// Time the history covers. Default `1h`; 1m..=24h.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) history_retention: Option<Duration>,
    /// Most points the history keeps (one per sampling interval). Default 3600; 10..=86400.
    pub(crate) history_max_points: Option<usize>,
    /// Most log lines the console page keeps. Default 1000; 10..=20000.
    pub(crate) max_log_lines: Option<usize>,
}

/// `admin:` — the admin endpoints exist only with a token file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AdminConfig {
    /// A file holding the bearer token (e.g. a mounted Secret), read on every admin request;
    /// at least 16 printable bytes. Without it the admin endpoints answer 404.
    pub(crate) token_file: Option<PathBuf>,
}

/// `connections:` — the target's sockets.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ConnectionsConfig {
    /// `auto` (sock_diag when leakwatch shares the target's network namespace, else
    /// `/proc/PID/net`) or `proc_net`. Default `auto`.
    pub(crate) method: Option<String>,
    /// A held socket (not listening) first seen longer ago than this is stale. Default `1h`;
    /// 1s..=30d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) stale_after: Option<Duration>,
    /// Cap on the sockets whose first-seen time is kept. Default 65536; 1..=1000000.
    pub(crate) max_tracked: Option<usize>,
    /// Peer groups: connections to a remote port (and optionally address) against a limit.
    pub(crate) peers: Vec<PeerConfig>,
}

/// One entry of `connections.peers`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PeerConfig {
    /// `[A-Za-z0-9_.-]{1,64}`, unique; the `peer` label.
    pub(crate) name: String,
    /// The remote TCP port, 1..=65535.
    pub(crate) remote_port: Option<u32>,
    /// Only connections to this IP address (optional).
    pub(crate) remote_address: Option<String>,
    /// The connection limit (e.g. the pool size), 1..=1000000.
    pub(crate) limit: Option<u64>,
}

/// `tasks:` — the target's child processes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TasksConfig {
    /// A descendant that started longer ago than this is stale. Default `1h`; 1s..=30d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) stale_after: Option<Duration>,
    /// Cap on the descendants whose first-seen time is kept. Default 4096; 1..=1000000.
    pub(crate) max_tracked: Option<usize>,
}

/// `target:` — at most one selector; none means leakwatch watches itself.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TargetConfig {
    /// The `target` label value, 1..=64 printable characters. Default: the process name, the
    /// wrapped command's name, a pid's command name (`comm`; `pid-N` when it does not exist), a
    /// pidfile's stem, `leakwatch` for itself, else `target`.
    pub(crate) name: Option<String>,
    /// A fixed pid (positive); when it exits, or is reused by another process, the target is gone.
    pub(crate) pid: Option<i32>,
    /// A file holding the pid, re-read every interval.
    pub(crate) pidfile: Option<PathBuf>,
    /// Match `comm` exactly: 1..=15 bytes, as the kernel truncates it.
    pub(crate) process_name: Option<String>,
    /// Match the command line (arguments joined by spaces) with a Rust `regex`; at most 1024
    /// characters.
    pub(crate) cmdline_regex: Option<String>,
    /// At most this many matching processes are sampled (lowest pids first). Default 64; 1..=10000.
    pub(crate) max_processes: Option<usize>,
}

/// `pss:` — limits on reading `/proc/PID/smaps_rollup`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PssConfig {
    /// Skip PSS for a process whose RSS is above this. Default `8GiB`.
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) max_rss: Option<u64>,
    /// After a pass whose reads took longer than this, skip PSS for 1, 2, 4 … 64 passes.
    /// Default `100ms`; 1ms..=10s.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) time_budget: Option<Duration>,
}

/// `sampling:` — cheap figures (status, statm, cgroup files, meminfo, PSI, the descriptor count)
/// are read every pass; expensive ones (the descriptor walk, the socket tables, PSS, the process
/// scan for descendants) every `expensive_every` passes, and in between only when a cheap figure
/// says they changed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SamplingConfig {
    /// Passes between two full reads of the expensive figures. Default 12 (60 s at the default
    /// 5 s interval); 1..=1000, 1 reads everything every pass.
    pub(crate) expensive_every: Option<u32>,
    /// Re-read PSS between full passes when RSS moved by more than this fraction. Default 0.05;
    /// 0..=1.
    pub(crate) pss_rss_change: Option<f64>,
}

/// `logs:` — per-source buffer defaults and the sources. In `leakwatch run` mode the sources
/// `stdout` and `stderr` (the wrapped command's streams) are added with the defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogsConfig {
    /// Most lines held per source. Default 10000; 1..=10000000.
    pub(crate) max_lines: Option<usize>,
    /// Most memory held per source (text + 16 bytes per line), e.g. `8MiB`. Default 8 MiB; 4KiB..=1GiB.
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) max_bytes: Option<u64>,
    /// Longer lines are cut (with a marker), e.g. `64KiB`. Default 64 KiB; 64..=max_bytes.
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) max_line_bytes: Option<u64>,
    /// Most live subscribers per source. Default 64; 1..=10000.
    pub(crate) max_subscribers: Option<usize>,
    /// The file sources, at most 64.
    pub(crate) sources: Vec<LogSourceConfig>,
    /// Absolute directories a source's file may resolve into (symlinks followed), e.g.
    /// `[/var/log]` for Kubernetes' `/var/log/containers` links into `/var/log/pods`. Default:
    /// each source's own directory (of its path, or of a glob's fixed part) and below.
    pub(crate) allowed_dirs: Option<Vec<PathBuf>>,
    /// User name → bcrypt hash: when set, the log endpoints (`/logs`, `/logs/{source}`,
    /// `/logs/{source}/stream`) require one of these users instead of the web config's.
    pub(crate) basic_auth_users: Option<BTreeMap<String, String>>,
}

/// One entry of `logs.sources`: a file followed across rotation. The four caps override the
/// `logs:` defaults for this source.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSourceConfig {
    /// `[A-Za-z0-9_.-]{1,64}`, unique, not `.` or `..`; `stdout` and `stderr` are reserved. The
    /// `source` label and the URL segment.
    pub(crate) name: String,
    /// An absolute path or glob (a glob follows its newest matching file).
    pub(crate) path: String,
    /// See [`LogsConfig::max_lines`].
    pub(crate) max_lines: Option<usize>,
    /// See [`LogsConfig::max_bytes`].
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) max_bytes: Option<u64>,
    /// See [`LogsConfig::max_line_bytes`].
    #[serde(deserialize_with = "units::de_bytes")]
    pub(crate) max_line_bytes: Option<u64>,
    /// See [`LogsConfig::max_subscribers`].
    pub(crate) max_subscribers: Option<usize>,
}

/// A config problem, reported with exit code 64.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is over `MAX_CONFIG_BYTES`.
    #[error("{path}: larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The config file.
        path: PathBuf,
    },
    /// YAML syntax, an unknown key or a wrong type; the message names the line and column.
    #[error("{path}: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// One or more values are out of range or contradict each other.
    #[error("invalid configuration:\n  {}", problem::join(.0, "\n  "))]
    Invalid(Vec<problem::Problem>),
}

/// The bytes of a config file, at most [`MAX_CONFIG_BYTES`]; a regular file only (a FIFO or a
/// directory at the path is refused without blocking, see [`crate::fsread`]).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use crate::fsread::FileError;
    crate::fsread::read_capped(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        FileError::TooLarge { path, .. } => ConfigError::TooLarge { path },
        FileError::Io { path, source } => ConfigError::Read { path, source },
        e @ FileError::NotRegular { .. } => {
            let problem = e.to_string();
            let problem = problem.split_once(": ").map_or(problem.clone(), |(_, p)| p.to_owned());
            ConfigError::Read { path: path.to_path_buf(), source: std::io::Error::other(problem) }
        }
    })
}

/// Values laid over the config file: the command line's flags and their `LEAKWATCH_*`
/// variables, a partial config applied in one place (at start and on every reload).
pub trait Overlay: std::fmt::Debug + Send + Sync {
    /// Sets in `config` every value the overlay holds (log sources are added after the file's).
    fn apply(&self, config: &mut Config);
}

/// No values: the file (or the defaults) as it is.
impl Overlay for () {
    fn apply(&self, _: &mut Config) {}
}

impl Config {
    /// Parses the bytes read from `path` ([`read_file`]); errors name the file. An empty file
    /// (or one that holds only comments) is refused: `{}` asks for the default config.
    pub(crate) fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Config, ConfigError> {
        Self::from_yaml(bytes).map_err(|message| ConfigError::Syntax { path: path.to_path_buf(), message })
    }

    /// Parses YAML text; the error names the line and column (and the key, when unknown).
    pub fn from_yaml(bytes: &[u8]) -> Result<Config, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        // Before yaml_serde builds anything: depth, node and alias caps (linear in the bytes).
        match yaml_guard::check(bytes)? {
            // A file truncated by an editor's save must not silently mean "all defaults".
            yaml_guard::Root::Empty => {
                return Err("the file holds no YAML document (empty, or only comments) at line 1; \
                            write `{}` for all defaults"
                    .into())
            }
            yaml_guard::Root::Other => {
                return Err("the top level is not a mapping of keys (a truncated file?) at line 1; \
                            write `{}` for all defaults"
                    .into())
            }
            yaml_guard::Root::Mapping | yaml_guard::Root::Unknown => {}
        }
        yaml_serde::from_str(text).map_err(|e| crate::redact::quoted_text(&syntax_message(text, &e)))
    }
}

/// The parser's message with a line: yaml_serde leaves out a position at line 1 column 1 (the
/// top-level mapping, where a duplicate top-level key or a wrong document type is reported), and a
/// duplicate key is reported at the start of its mapping; this names the duplicate's own line.
fn syntax_message(text: &str, e: &yaml_serde::Error) -> String {
    let message = e.to_string();
    let Some(location) = e.location() else {
        if message.contains("more than one document") {
            let at = match second_document_line(text) {
                Some(line) => format!("line {line}"),
                // Flow content that ends a document mid-line (`{}x`): somewhere after the first.
                None => format!("or after line {}", first_content_line(text)),
            };
            return format!("the file holds more than one YAML document (the second starts at {at}); give one");
        }
        return format!("{message} (at an unknown line)");
    };
    let duplicate = message.split_once("duplicate field `").and_then(|(_, rest)| rest.split('`').next());
    if let Some(line) = duplicate.and_then(|key| second_key_line(text, key, location.line(), location.column())) {
        let message = message.split(" at line ").next().unwrap_or(&message);
        return format!("{message} at line {line}");
    }
    if message.contains(" at line ") {
        message
    } else {
        format!("{message} at line {} column {}", location.line(), location.column())
    }
}

/// Where a second YAML document starts: a `---` or `...` line after content, or the first line
/// indented less than the first key (which ends the first document's mapping).
fn second_document_line(text: &str) -> Option<usize> {
    let mut first_indent = None;
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        match first_indent {
            None if body.starts_with("---") => {}
            None => first_indent = Some(indent),
            Some(_) if line.starts_with("---") || line.starts_with("...") => return Some(i + 1),
            Some(first) if indent < first => return Some(i + 1),
            Some(_) => {}
        }
    }
    None
}

/// The 1-based line of the first line that is neither blank nor a comment (1 if none).
fn first_content_line(text: &str) -> usize {
    text.lines().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).map_or(1, |i| i + 1)
}

/// The 1-based line of the second `key:` at `column` (the mapping's indentation) from `from_line`
/// on, stopping where the mapping ends (a line indented less).
fn second_key_line(text: &str, key: &str, from_line: usize, column: usize) -> Option<usize> {
    let indent = column.saturating_sub(1);
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(from_line.saturating_sub(1)) {
        let body = line.trim_start_matches([' ', '-']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let at = line.len() - body.len();
        if at < indent {
            break;
        }
        let name = body.split(':').next().unwrap_or("").trim().trim_matches(['"', '\'']);
        if at == indent && name == key {
            seen += 1;
            if seen == 2 {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let c = Config::from_yaml(
            b"listen: 127.0.0.1:9999\ninterval: 2s\ntarget:\n  process_name: nginx\n  max_processes: 8\npss:\n  max_rss: 2GiB\n  time_budget: 50ms\n",
        )
        .unwrap();
        assert_eq!(c.interval, Some(Duration::from_secs(2)));
        assert_eq!(c.target.process_name.as_deref(), Some("nginx"));
        assert_eq!(c.pss.max_rss, Some(2 << 30));
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = Config::from_yaml(b"interval: 5s\ntarget:\n  pidd: 3\n").unwrap_err();
        assert!(err.contains("pidd") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let err = Config::from_yaml(b"interval: [\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
        let err = Config::from_yaml(b"target:\n  pid: abc\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = Config::from_yaml(b"interval: 5\n").unwrap_err();
        assert!(err.contains("duration"), "{err}");
    }

    #[test]
    fn the_logs_section_parses_with_units_and_overrides() {
        let c = Config::from_yaml(
            b"logs:\n  max_lines: 500\n  max_bytes: 8MiB\n  sources:\n    - name: app\n      path: /var/log/app.log\n      max_line_bytes: 16KiB\n",
        )
        .unwrap();
        assert_eq!(c.logs.max_lines, Some(500));
        assert_eq!(c.logs.max_bytes, Some(8 << 20));
        assert_eq!(c.logs.sources[0].name, "app");
        assert_eq!(c.logs.sources[0].max_line_bytes, Some(16 << 10));
        let err = Config::from_yaml(b"logs:\n  sources:\n    - name: a\n      pth: /x\n").unwrap_err();
        assert!(err.contains("pth") && err.contains("line 4"), "{err}");
    }

    #[test]
    fn the_connections_and_tasks_sections_parse() {
        let c = Config::from_yaml(
            b"connections:\n  stale_after: 10m\n  peers:\n    - name: postgres\n      remote_port: 5432\n      limit: 20\ntasks:\n  stale_after: 2s\n",
        )
        .unwrap();
        assert_eq!(c.connections.stale_after, Some(Duration::from_secs(600)));
        assert_eq!(c.connections.peers[0].remote_port, Some(5432));
        assert_eq!(c.tasks.stale_after, Some(Duration::from_secs(2)));
        let err = Config::from_yaml(b"connections:\n  peers:\n    - name: a\n      port: 1\n").unwrap_err();
        assert!(err.contains("port") && err.contains("line 4"), "{err}");
    }

    #[test]
    fn the_sampling_section_parses_and_is_validated() {
        let c = Config::from_yaml(b"sampling:\n  expensive_every: 3\n  pss_rss_change: 0.2\n").unwrap();
        let v = validate(&c, false).unwrap();
        assert_eq!((v.sampler.tiers.expensive_every, v.sampler.tiers.pss_rss_change), (3, 0.2));
        let v = validate(&Config::default(), false).unwrap();
        assert_eq!(v.sampler.tiers, crate::sample::tier::TierSettings::default());
        let c = Config::from_yaml(b"sampling:\n  expensive_every: 0\n  pss_rss_change: 1.5\n").unwrap();
        let Err(ConfigError::Invalid(problems)) = validate(&c, false) else { panic!("accepted") };
        assert!(
            problems
                .iter()
                .any(|p| p.key_path == "sampling.expensive_every" && p.message.starts_with("must be 1..=1000")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.key_path == "sampling.pss_rss_change" && p.message.starts_with("must be a fraction")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_cleanup_section_parses_with_units() {
        let c = Config::from_yaml(b"cleanup:\n  interval: 30s\n  memory_threshold: 64MiB\n  memory_cooldown: 2m\n")
            .unwrap();
        assert_eq!(c.cleanup.interval, Some(Duration::from_secs(30)));
        assert_eq!(c.cleanup.memory_threshold, Some(64 << 20));
        assert_eq!(c.cleanup.memory_cooldown, Some(Duration::from_secs(120)));
        let err = Config::from_yaml(b"cleanup:\n  interval: 30s\n  threshold: 1\n").unwrap_err();
        assert!(err.contains("threshold") && err.contains("line 3"), "{err}");
        let err = Config::from_yaml(b"cleanup:\n  memory_threshold: lots\n").unwrap_err();
        assert!(err.contains("byte size") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn fuzz_findings_name_their_line() {
        // A bad unit value was reported with no line (the error was raised after deserializing).
        let err = Config::from_yaml(b"listen: 127.0.0.1:1024\ninterval: 100ms max_rss\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = Config::from_yaml(b"pss:\n  time_budget: 1s\n  max_rss: -5\n").unwrap_err();
        assert!(err.contains("negative") && err.contains("line 3"), "{err}");
        // A duplicate top-level key: no position at all; a nested one: the mapping's start.
        let err = Config::from_yaml(b"listen: a\ninterval: 1s\nlisten: b\n").unwrap_err();
        assert!(err.contains("duplicate field `listen`") && err.ends_with("at line 3"), "{err}");
        let err = Config::from_yaml(b"pss:\n  max_rss: 1\n  # c\n  max_rss: 2\ntasks: {}\n").unwrap_err();
        assert!(err.ends_with("at line 4"), "{err}");
        // A document that is not a mapping.
        let err = Config::from_yaml(b"_\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = Config::from_yaml(b"- ").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        // A first line indented by one space: two documents, reported with no position at all.
        let err = Config::from_yaml(b" listen: 127.0.0.1:1024\ninterval: 100ms\n").unwrap_err();
        assert!(err.contains("more than one YAML document") && err.contains("line 2"), "{err}");
        let err = Config::from_yaml(b"---\nlisten: a\n---\ninterval: 1s\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        let err = Config::from_yaml(b"# c\n{}_").unwrap_err();
        assert!(err.contains("at or after line 2"), "{err}");
    }

    #[test]
    fn empty_and_non_utf8_files() {
        // An editor that truncates before writing must not turn a reload into "all defaults".
        for empty in [&b""[..], b"\n", b"# only comments\n\n"] {
            let err = Config::from_yaml(empty).unwrap_err();
            assert!(err.contains("no YAML document") && err.contains("write `{}`"), "{err}");
        }
        for other in [&b"logs"[..], b"- a\n", b"~\n", b"---\n"] {
            assert!(Config::from_yaml(other).unwrap_err().contains("not a mapping"));
        }
        assert_eq!(Config::from_yaml(b"{}\n").unwrap(), Config::default());
        assert_eq!(Config::from_yaml(b"# all defaults\n{}\n").unwrap(), Config::default());
        assert!(Config::from_yaml(b"\xff\xfe").is_err());
    }
}
