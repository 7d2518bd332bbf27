//! Turns a parsed [`Config`] into a [`ValidConfig`], reporting every problem by key path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::RegexBuilder;

use super::problem::Problem;
use super::*;
use crate::cleanup::CleanupSettings;
use crate::logs::follow::LogSourceSpec;
use crate::logs::ring::{RingLimits, MIN_LINE_BYTES};
use crate::logs::SourceKind;
use crate::roots::{Roots, DEFAULT_PROCFS, DEFAULT_SYSFS};
use crate::sample::conns::{ConnSettings, MethodChoice, PeerSpec, DEFAULT_CONN_MAX_TRACKED};
use crate::sample::settings::{SamplerSection, Selector};
use crate::sample::tasks::{TaskSettings, DEFAULT_TASK_MAX_TRACKED};
use crate::sample::tier::{TierSettings, DEFAULT_EXPENSIVE_EVERY, DEFAULT_PSS_RSS_CHANGE};
use crate::sample::DEFAULT_STALE_AFTER;

/// Longest accepted `target.cmdline_regex`.
pub(crate) const MAX_REGEX_LEN: usize = 1024;
/// Compiled-size cap for user regexes, so a pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Most log sources (each adds a ring, a thread and a dozen series).
pub(crate) const MAX_LOG_SOURCES: usize = 64;
/// Source names that `leakwatch run` uses for the wrapped command's streams.
pub(crate) const RESERVED_SOURCE_NAMES: [&str; 2] = ["stdout", "stderr"];

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Where to serve.
    pub listen: SocketAddr,
    /// What the sampler runs with (interval, roots, target, PSS, tiers, sockets, tasks).
    pub sampler: SamplerSection,
    /// Log sources in order: the configured files, then `stdout` and `stderr` in `run` mode.
    pub logs: Vec<LogSourceSpec>,
    /// Alert rules.
    pub alerts: crate::alert::rules::AlertRules,
    /// Where to push alerts, if anywhere.
    pub(crate) alertmanager: Option<crate::alert::push::Target>,
    /// The admin token file; `None` disables the admin endpoints.
    pub(crate) admin_token_file: Option<PathBuf>,
    /// When leakwatch trims its own structures.
    pub(crate) cleanup: CleanupSettings,
    /// The console's history caps and page size.
    pub(crate) console: crate::history::ConsoleSettings,
    /// The web config (TLS, basic auth, headers, rate limit), from `--web.config.file`.
    pub(crate) web: Option<std::sync::Arc<crate::web::WebConfig>>,
    /// `logs.basic_auth_users`: who may read the log endpoints (`None`: the web config decides).
    pub(crate) logs_basic_auth_users: Option<crate::web::Users>,
    /// `logs.allowed_dirs` (empty: each source's own directory; see [`crate::logs::guard`]).
    pub(crate) logs_allowed_dirs: Vec<PathBuf>,
    /// `web_external_url` without a trailing `/` (`None`: derived from the instance).
    pub(crate) external_url: Option<String>,
}

/// `HOST:PORT` as a socket address: an IP address as it is, a host name resolved (the first
/// address found; `localhost` from /etc/hosts).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    const LIKE: &str = "is not HOST:PORT like 0.0.0.0:10171, [::1]:10171 or localhost:10171";
    let (host, port) = text.rsplit_once(':').ok_or(LIKE)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(LIKE.into());
    }
    match std::net::ToSocketAddrs::to_socket_addrs(text) {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{LIKE}: {host} has no address")),
        Err(e) => Err(format!("{LIKE}: cannot resolve {host}: {e}")),
    }
}

/// Checks every value; `wrapped` is true in `leakwatch run` mode, where the wrapped command is
/// the target and no other selector may be given.
pub fn validate(config: &Config, wrapped: bool) -> Result<ValidConfig, ConfigError> {
    let mut problems = Vec::new();
    let listen_text = config.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_address(listen_text).unwrap_or_else(|problem| {
        problems.push(Problem::new("listen", format!("{listen_text:?} {problem}")));
        SocketAddr::from(([0, 0, 0, 0], 0))
    });
    let interval = config.interval.unwrap_or(DEFAULT_INTERVAL);
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&interval) {
        problems.push(Problem::new(
            "interval",
            format!("must be 100ms..=1h, got {}", humantime::format_duration(interval)),
        ));
    }
    let t = &config.target;
    let selector = selector(t, wrapped, &mut problems);
    if let Some(name) = &t.name {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            problems.push(Problem::new("target.name", format!("must be 1..=64 printable characters, got {name:?}")));
        }
    }
    let max_processes = t.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES);
    if !(1..=10_000).contains(&max_processes) {
        problems.push(Problem::new("target.max_processes", format!("must be 1..=10000, got {max_processes}")));
    }
    let pss_time_budget = config.pss.time_budget.unwrap_or(DEFAULT_PSS_TIME_BUDGET);
    if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&pss_time_budget) {
        problems.push(Problem::new(
            "pss.time_budget",
            format!("must be 1ms..=10s, got {}", humantime::format_duration(pss_time_budget)),
        ));
    }
    let tiers = tiers(&config.sampling, &mut problems);
    let logs = log_sources(&config.logs, wrapped, &mut problems);
    let conns = connections(&config.connections, &mut problems);
    let tasks = TaskSettings {
        stale_after: stale_after("tasks.stale_after", config.tasks.stale_after, &mut problems),
        max_tracked: max_tracked(
            "tasks.max_tracked",
            config.tasks.max_tracked,
            DEFAULT_TASK_MAX_TRACKED,
            &mut problems,
        ),
    };
    let alerts = super::alerts::validate(&config.alerts, &mut problems);
    let alertmanager = super::alerts::validate_alertmanager(&config.alerts.alertmanager, &mut problems);
    if let Some(file) = &config.admin.token_file {
        if let Err(e) = crate::token::read_token(file) {
            problems.push(Problem::new("admin.token_file", e.to_string()));
        }
    }
    let cleanup = cleanup(&config.cleanup, &mut problems);
    let external_url = config.web_external_url.as_deref().map(|url| {
        let absolute = ["http://", "https://"].iter().any(|p| url.strip_prefix(p).is_some_and(|r| !r.is_empty()));
        if !absolute || url.chars().any(char::is_whitespace) {
            problems.push(Problem::new("web_external_url", format!("must be an absolute http(s):// URL, got {url:?}")));
        }
        url.trim_end_matches('/').to_owned()
    });
    let console = console(&config.console, &mut problems);
    let web = config.web_config_file.as_deref().and_then(|path| {
        crate::web::WebConfig::load(path)
            .map(std::sync::Arc::new)
            .inspect_err(|e| problems.push(Problem::new("--web.config.file", e.to_string())))
            .ok()
    });
    let logs_basic_auth_users = match &config.logs.basic_auth_users {
        Some(map) if map.is_empty() => {
            problems.push(Problem::new(
                "logs.basic_auth_users",
                "lists no user (omit the key to let the web config protect the log endpoints)",
            ));
            None
        }
        Some(map) => crate::web::Users::parse("logs.basic_auth_users", map).unwrap_or_else(|(key_path, message)| {
            problems.push(Problem::new(key_path, message));
            None
        }),
        None => None,
    };
    let logs_allowed_dirs = config.logs.allowed_dirs.clone().unwrap_or_default();
    for dir in logs_allowed_dirs.iter().filter(|d| !d.is_absolute()) {
        problems.push(Problem::new("logs.allowed_dirs", format!("{} is not an absolute path", dir.display())));
    }
    if problems.is_empty() {
        Ok(ValidConfig {
            listen,
            sampler: SamplerSection {
                interval,
                roots: Roots::new(
                    config.procfs_root.clone().unwrap_or_else(|| DEFAULT_PROCFS.into()),
                    config.sysfs_root.clone().unwrap_or_else(|| DEFAULT_SYSFS.into()),
                ),
                selector,
                target_name: t.name.clone(),
                max_processes,
                pss_max_rss: config.pss.max_rss.unwrap_or(DEFAULT_PSS_MAX_RSS),
                pss_time_budget,
                tiers,
                conns,
                tasks,
            },
            logs,
            alerts,
            alertmanager,
            admin_token_file: config.admin.token_file.clone(),
            cleanup,
            console,
            web,
            logs_basic_auth_users,
            logs_allowed_dirs,
            external_url,
        })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

fn tiers(c: &SamplingConfig, problems: &mut Vec<Problem>) -> TierSettings {
    let expensive_every = c.expensive_every.unwrap_or(DEFAULT_EXPENSIVE_EVERY);
    if !(1..=1000).contains(&expensive_every) {
        problems
            .push(Problem::new("sampling.expensive_every", format!("must be 1..=1000 passes, got {expensive_every}")));
    }
    let pss_rss_change = c.pss_rss_change.unwrap_or(DEFAULT_PSS_RSS_CHANGE);
    if !(0.0..=1.0).contains(&pss_rss_change) {
        problems
            .push(Problem::new("sampling.pss_rss_change", format!("must be a fraction 0..=1, got {pss_rss_change}")));
    }
    TierSettings { expensive_every, pss_rss_change }
}

fn log_sources(logs: &LogsConfig, wrapped: bool, problems: &mut Vec<Problem>) -> Vec<LogSourceSpec> {
    let defaults = LogCaps {
        max_lines: logs.max_lines,
        max_bytes: logs.max_bytes,
        max_line_bytes: logs.max_line_bytes,
        max_subscribers: logs.max_subscribers,
    };
    let default_limits = ring_limits("logs", &defaults, None, problems);
    if logs.sources.len() > MAX_LOG_SOURCES {
        problems.push(Problem::new(
            "logs.sources",
            format!("at most {MAX_LOG_SOURCES} sources, got {}", logs.sources.len()),
        ));
    }
    let mut out: Vec<LogSourceSpec> = Vec::new();
    for (i, s) in logs.sources.iter().enumerate() {
        let key = format!("logs.sources[{i}]");
        if !valid_source_name(&s.name) {
            problems.push(Problem::new(
                format!("{key}.name"),
                format!("must match [A-Za-z0-9_.-]{{1,64}}, got {:?}", s.name),
            ));
        } else if RESERVED_SOURCE_NAMES.contains(&s.name.as_str()) {
            problems.push(Problem::new(
                format!("{key}.name"),
                format!("{:?} is reserved for the wrapped command's stream", s.name),
            ));
        } else if out.iter().any(|o| o.name == s.name) {
            problems.push(Problem::new(format!("{key}.name"), format!("{:?} is used by another source", s.name)));
        }
        if s.path.is_empty() || !s.path.starts_with('/') {
            problems.push(Problem::new(
                format!("{key}.path"),
                format!("must be an absolute path or glob, got {:?}", s.path),
            ));
        } else if let Err(e) = glob::Pattern::new(&s.path) {
            problems.push(Problem::new(format!("{key}.path"), format!("not a valid glob: {e}")));
        }
        let caps = LogCaps {
            max_lines: s.max_lines,
            max_bytes: s.max_bytes,
            max_line_bytes: s.max_line_bytes,
            max_subscribers: s.max_subscribers,
        };
        let limits = ring_limits(&key, &caps, Some(&defaults), problems);
        out.push(LogSourceSpec { name: s.name.clone(), kind: SourceKind::File { pattern: s.path.clone() }, limits });
    }
    if wrapped {
        for (name, kind) in [("stdout", SourceKind::Stdout), ("stderr", SourceKind::Stderr)] {
            out.push(LogSourceSpec { name: name.to_owned(), kind, limits: default_limits });
        }
    }
    out
}

/// The four caps of a source (or the defaults), as written.
struct LogCaps {
    max_lines: Option<usize>,
    max_bytes: Option<u64>,
    max_line_bytes: Option<u64>,
    max_subscribers: Option<usize>,
}

/// The caps of a source: its own values, else the `logs:` defaults, else the built-in ones.
fn ring_limits(key: &str, own: &LogCaps, defaults: Option<&LogCaps>, problems: &mut Vec<Problem>) -> RingLimits {
    let max_lines = own.max_lines.or(defaults.and_then(|d| d.max_lines)).unwrap_or(DEFAULT_LOG_MAX_LINES);
    let max_bytes = own.max_bytes.or(defaults.and_then(|d| d.max_bytes)).unwrap_or(DEFAULT_LOG_MAX_BYTES);
    // Unset, the line cap follows a small buffer down rather than failing validation.
    let max_line_bytes = own
        .max_line_bytes
        .or(defaults.and_then(|d| d.max_line_bytes))
        .unwrap_or(DEFAULT_LOG_MAX_LINE_BYTES.min(max_bytes));
    let max_subscribers =
        own.max_subscribers.or(defaults.and_then(|d| d.max_subscribers)).unwrap_or(DEFAULT_LOG_MAX_SUBSCRIBERS);
    // Only values written under this key are reported here (defaults are checked once, under `logs`).
    if own.max_lines.is_some() && !(1..=10_000_000).contains(&max_lines) {
        problems.push(Problem::new(format!("{key}.max_lines"), format!("must be 1..=10000000, got {max_lines}")));
    }
    if own.max_bytes.is_some() && !(4 << 10..=1 << 30).contains(&max_bytes) {
        problems.push(Problem::new(
            format!("{key}.max_bytes"),
            format!("must be 4KiB..=1GiB (4096..=1073741824), got {max_bytes}"),
        ));
    }
    if (own.max_line_bytes.is_some() || own.max_bytes.is_some())
        && !(MIN_LINE_BYTES as u64..=max_bytes).contains(&max_line_bytes)
    {
        problems.push(Problem::new(
            format!("{key}.max_line_bytes"),
            format!("must be {MIN_LINE_BYTES}..=max_bytes ({max_bytes}), got {max_line_bytes}"),
        ));
    }
    if own.max_subscribers.is_some() && !(1..=10_000).contains(&max_subscribers) {
        problems
            .push(Problem::new(format!("{key}.max_subscribers"), format!("must be 1..=10000, got {max_subscribers}")));
    }
    RingLimits {
        max_lines,
        max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        max_line_bytes: usize::try_from(max_line_bytes).unwrap_or(usize::MAX),
        max_subscribers,
    }
}

fn cleanup(c: &CleanupConfig, problems: &mut Vec<Problem>) -> CleanupSettings {
    let d = CleanupSettings::default();
    let duration = |key: &str, value: Option<Duration>, default: Duration, problems: &mut Vec<Problem>| {
        let v = value.unwrap_or(default);
        if !(Duration::from_secs(1)..=Duration::from_secs(86400)).contains(&v) {
            problems.push(Problem::new(key, format!("must be 1s..=24h, got {}", humantime::format_duration(v))));
        }
        v
    };
    let interval = duration("cleanup.interval", c.interval, d.interval, problems);
    let memory_cooldown = duration("cleanup.memory_cooldown", c.memory_cooldown, d.memory_cooldown, problems);
    let memory_threshold = c.memory_threshold.unwrap_or(d.memory_threshold);
    if !(1 << 20..=1 << 40).contains(&memory_threshold) {
        problems.push(Problem::new(
            "cleanup.memory_threshold",
            format!("must be 1MiB..=1TiB (1048576..=1099511627776), got {memory_threshold}"),
        ));
    }
    CleanupSettings { interval, memory_threshold, memory_cooldown }
}

fn console(c: &super::ConsoleConfig, problems: &mut Vec<Problem>) -> crate::history::ConsoleSettings {
    use crate::history::{ConsoleSettings, HistorySettings, MAX_LOG_LINES, MAX_MAX_POINTS, MAX_RETENTION};
    let d = ConsoleSettings::default();
    let retention = c.history_retention.unwrap_or(d.history.retention);
    if !(Duration::from_secs(60)..=MAX_RETENTION).contains(&retention) {
        problems.push(Problem::new(
            "console.history_retention",
            format!("must be 1m..=24h, got {}", humantime::format_duration(retention)),
        ));
    }
    let max_points = c.history_max_points.unwrap_or(d.history.max_points);
    if !(10..=MAX_MAX_POINTS).contains(&max_points) {
        problems.push(Problem::new(
            "console.history_max_points",
            format!("must be 10..={MAX_MAX_POINTS}, got {max_points}"),
        ));
    }
    let max_log_lines = c.max_log_lines.unwrap_or(d.max_log_lines);
    if !(10..=MAX_LOG_LINES).contains(&max_log_lines) {
        problems
            .push(Problem::new("console.max_log_lines", format!("must be 10..={MAX_LOG_LINES}, got {max_log_lines}")));
    }
    ConsoleSettings { history: HistorySettings { retention, max_points }, max_log_lines }
}

fn stale_after(key: &str, value: Option<Duration>, problems: &mut Vec<Problem>) -> Duration {
    let d = value.unwrap_or(DEFAULT_STALE_AFTER);
    if !(Duration::from_secs(1)..=Duration::from_secs(30 * 86400)).contains(&d) {
        problems.push(Problem::new(key, format!("must be 1s..=30d, got {}", humantime::format_duration(d))));
    }
    d
}

fn max_tracked(key: &str, value: Option<usize>, default: usize, problems: &mut Vec<Problem>) -> usize {
    let n = value.unwrap_or(default);
    if !(1..=1_000_000).contains(&n) {
        problems.push(Problem::new(key, format!("must be 1..=1000000, got {n}")));
    }
    n
}

fn connections(c: &ConnectionsConfig, problems: &mut Vec<Problem>) -> ConnSettings {
    let method = match c.method.as_deref() {
        None | Some("auto") => MethodChoice::Auto,
        Some("proc_net") => MethodChoice::ProcNet,
        Some(other) => {
            problems.push(Problem::new("connections.method", format!("must be auto or proc_net, got {other:?}")));
            MethodChoice::Auto
        }
    };
    if c.peers.len() > MAX_PEERS {
        problems
            .push(Problem::new("connections.peers", format!("at most {MAX_PEERS} peer groups, got {}", c.peers.len())));
    }
    let mut peers: Vec<PeerSpec> = Vec::new();
    for (i, p) in c.peers.iter().enumerate() {
        let key = format!("connections.peers[{i}]");
        if !valid_source_name(&p.name) {
            problems.push(Problem::new(
                format!("{key}.name"),
                format!("must match [A-Za-z0-9_.-]{{1,64}}, got {:?}", p.name),
            ));
        } else if peers.iter().any(|o| o.name == p.name) {
            problems.push(Problem::new(format!("{key}.name"), format!("{:?} is used by another peer group", p.name)));
        }
        let remote_port = match p.remote_port {
            Some(port @ 1..=65535) => port as u16,
            Some(port) => {
                problems.push(Problem::new(format!("{key}.remote_port"), format!("must be 1..=65535, got {port}")));
                0
            }
            None => {
                problems.push(Problem::new(
                    format!("{key}.remote_port"),
                    "required (the port the connections go to, e.g. 5432)",
                ));
                0
            }
        };
        let remote_address = p.remote_address.as_ref().and_then(|a| match a.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(ip.to_canonical()),
            Err(_) => {
                problems.push(Problem::new(format!("{key}.remote_address"), format!("{a:?} is not an IP address")));
                None
            }
        });
        let limit = match p.limit {
            Some(l @ 1..=1_000_000) => l,
            Some(l) => {
                problems.push(Problem::new(format!("{key}.limit"), format!("must be 1..=1000000, got {l}")));
                1
            }
            None => {
                problems.push(Problem::new(format!("{key}.limit"), "required (e.g. the pool size)"));
                1
            }
        };
        peers.push(PeerSpec { name: p.name.clone(), remote_port, remote_address, limit });
    }
    ConnSettings {
        method,
        peers,
        stale_after: stale_after("connections.stale_after", c.stale_after, problems),
        max_tracked: max_tracked("connections.max_tracked", c.max_tracked, DEFAULT_CONN_MAX_TRACKED, problems),
    }
}

/// `[A-Za-z0-9_.-]{1,64}`, and not `.` or `..` (the name is a URL path segment).
pub(crate) fn valid_source_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name != "."
        && name != ".."
}

fn selector(t: &TargetConfig, wrapped: bool, problems: &mut Vec<Problem>) -> Selector {
    let given: Vec<&str> = [
        t.pid.map(|_| "target.pid"),
        t.pidfile.as_ref().map(|_| "target.pidfile"),
        t.process_name.as_ref().map(|_| "target.process_name"),
        t.cmdline_regex.as_ref().map(|_| "target.cmdline_regex"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if wrapped {
        if !given.is_empty() {
            problems.push(Problem::new(given.join(", "), "`leakwatch run` watches the wrapped command; remove it"));
        }
        return Selector::Wrapped;
    }
    if given.len() > 1 {
        problems.push(Problem::new("target", format!("give at most one of {}", given.join(", "))));
        return Selector::Own;
    }
    if let Some(pid) = t.pid {
        if pid <= 0 {
            problems.push(Problem::new("target.pid", format!("must be a positive pid, got {pid}")));
        }
        return Selector::Pid(pid);
    }
    if let Some(path) = &t.pidfile {
        return Selector::Pidfile(path.clone());
    }
    if let Some(name) = &t.process_name {
        if name.is_empty() || name.len() > 15 {
            problems.push(Problem::new(
                "target.process_name",
                format!(
                    "the kernel keeps at most 15 bytes of a process name, got {} ({name:?}); \
                 use target.cmdline_regex for longer names",
                    name.len()
                ),
            ));
        }
        return Selector::ProcessName(name.clone());
    }
    if let Some(pattern) = &t.cmdline_regex {
        if pattern.len() > MAX_REGEX_LEN {
            problems.push(Problem::new(
                "target.cmdline_regex",
                format!("at most {MAX_REGEX_LEN} characters, got {}", pattern.len()),
            ));
            return Selector::Own;
        }
        match RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT).build() {
            Ok(re) => return Selector::CmdlineRegex(re),
            Err(e) => problems.push(Problem::new("target.cmdline_regex", format!("{e}"))),
        }
    }
    Selector::Own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str, wrapped: bool) -> String {
        let c = Config::from_yaml(yaml.as_bytes()).unwrap();
        validate(&c, wrapped).unwrap_err().to_string()
    }

    #[test]
    fn log_users_and_the_web_config_are_checked() {
        let hash = "$2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq";
        let c = Config::from_yaml(format!("logs:\n  basic_auth_users:\n    reader: {hash}\n").as_bytes()).unwrap();
        let users = validate(&c, false).unwrap().logs_basic_auth_users.unwrap();
        assert_eq!(users.names().collect::<Vec<_>>(), ["reader"]);
        let err = problems("logs:\n  basic_auth_users:\n    eve: doe\n", false);
        assert!(err.contains("logs.basic_auth_users.eve: not a bcrypt hash") && !err.contains("doe"), "{err}");
        let err = problems("logs:\n  basic_auth_users: {}\n", false);
        assert!(err.contains("logs.basic_auth_users: lists no user"), "{err}");
        let c = Config { web_config_file: Some("/nonexistent/web.yml".into()), ..Default::default() };
        let err = validate(&c, false).unwrap_err().to_string();
        assert!(err.contains("--web.config.file: /nonexistent/web.yml"), "{err}");
        assert!(Config::from_yaml(b"web_config_file: /x\n").is_err(), "the web config is a flag, not a file key");
    }

    #[test]
    fn the_external_url_is_absolute_and_loses_its_trailing_slash() {
        let c = Config::from_yaml(b"web_external_url: https://lw.example/app/\n").unwrap();
        assert_eq!(validate(&c, false).unwrap().external_url.as_deref(), Some("https://lw.example/app"));
        let err = problems("web_external_url: lw.example\n", false);
        assert!(err.contains("web_external_url: must be an absolute http(s):// URL"), "{err}");
        assert_eq!(validate(&Config::default(), false).unwrap().external_url, None);
    }

    #[test]
    fn defaults_watch_leakwatch_itself() {
        let v = validate(&Config::default(), false).unwrap();
        assert!(matches!(v.sampler.selector, Selector::Own));
        assert_eq!(v.sampler.interval, DEFAULT_INTERVAL);
        assert_eq!(v.listen.port(), 10171);
        let local = validate(&Config { listen: Some("localhost:10193".into()), ..Config::default() }, false).unwrap();
        assert!(local.listen.ip().is_loopback() && local.listen.port() == 10193, "{}", local.listen);
        for bad in ["localhost", "localhost:http", ":10171"] {
            let e = validate(&Config { listen: Some(bad.into()), ..Config::default() }, false).unwrap_err().to_string();
            assert!(e.contains("listen:") && e.contains("HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_problem_is_listed_by_key() {
        let e =
            problems("interval: 0s\nlisten: nowhere\ntarget:\n  max_processes: 0\npss:\n  time_budget: 1h\n", false);
        for key in ["interval:", "listen:", "target.max_processes:", "pss.time_budget:"] {
            assert!(e.contains(key), "{key} missing in {e}");
        }
    }

    #[test]
    fn cleanup_values_are_range_checked_by_key() {
        let v = validate(&Config::default(), false).unwrap();
        assert_eq!(v.cleanup, CleanupSettings::default());
        let e = problems("cleanup:\n  interval: 500ms\n  memory_threshold: 1KiB\n  memory_cooldown: 2d\n", false);
        assert!(e.contains("cleanup.interval: must be 1s..=24h, got 500ms"), "{e}");
        assert!(e.contains("cleanup.memory_threshold: must be 1MiB..=1TiB"), "{e}");
        assert!(e.contains("got 1024"), "{e}");
        assert!(e.contains("cleanup.memory_cooldown: must be 1s..=24h, got 2days"), "{e}");
        let yaml = "cleanup:\n  interval: 2s\n  memory_threshold: 1MiB\n  memory_cooldown: 1s\n";
        let v = validate(&Config::from_yaml(yaml.as_bytes()).unwrap(), false).unwrap();
        assert_eq!(v.cleanup.interval, Duration::from_secs(2));
        assert_eq!(v.cleanup.memory_threshold, 1 << 20);
    }

    #[test]
    fn console_values_are_range_checked_by_key() {
        let e =
            problems("console:\n  history_retention: 30s\n  history_max_points: 100000\n  max_log_lines: 5\n", false);
        assert!(e.contains("console.history_retention: must be 1m..=24h, got 30s"), "{e}");
        assert!(e.contains("console.history_max_points: must be 10..=86400, got 100000"), "{e}");
        assert!(e.contains("console.max_log_lines: must be 10..=20000, got 5"), "{e}");
        let yaml = "console:\n  history_retention: 10m\n  history_max_points: 600\n  max_log_lines: 200\n";
        let v = validate(&Config::from_yaml(yaml.as_bytes()).unwrap(), false).unwrap();
        assert_eq!(v.console.history.retention, Duration::from_secs(600));
        assert_eq!((v.console.history.max_points, v.console.max_log_lines), (600, 200));
    }

    #[test]
    fn log_sources_get_defaults_overrides_and_run_mode_streams() {
        let yaml = "logs:\n  max_lines: 100\n  sources:\n    - name: app\n      path: /var/log/app.log\n    - name: web.1\n      path: /var/log/web/*.log\n      max_bytes: 1MiB\n";
        let v = validate(&Config::from_yaml(yaml.as_bytes()).unwrap(), true).unwrap();
        let names: Vec<&str> = v.logs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["app", "web.1", "stdout", "stderr"]);
        assert_eq!(v.logs[0].limits.max_lines, 100);
        assert_eq!(v.logs[0].limits.max_bytes, DEFAULT_LOG_MAX_BYTES as usize);
        assert_eq!(v.logs[1].limits.max_bytes, 1 << 20);
        assert_eq!(v.logs[1].kind, SourceKind::File { pattern: "/var/log/web/*.log".into() });
        assert_eq!(v.logs[2].kind, SourceKind::Stdout);
        assert!(validate(&Config::default(), false).unwrap().logs.is_empty());
    }

    #[test]
    fn bad_log_sources_are_named_by_key() {
        let yaml = "logs:\n  max_bytes: 1KiB\n  sources:\n    - name: app\n      path: relative.log\n    - name: app\n      path: /a\n    - name: 'no/slash'\n      path: /b\n    - name: stdout\n      path: /c\n    - name: big\n      path: /d\n      max_lines: 0\n      max_subscribers: 0\n      max_bytes: 2GiB\n    - name: cut\n      path: /e\n      max_bytes: 8KiB\n      max_line_bytes: 16KiB\n    - name: bad-glob\n      path: '/f/[x'\n";
        let e = problems(yaml, false);
        for needle in [
            "logs.max_bytes: must be 4KiB..=1GiB",
            "logs.sources[0].path: must be an absolute path",
            "logs.sources[1].name: \"app\" is used by another source",
            "logs.sources[2].name: must match",
            "logs.sources[3].name: \"stdout\" is reserved",
            "logs.sources[4].max_lines: must be 1..=10000000, got 0",
            "logs.sources[4].max_subscribers",
            "logs.sources[4].max_bytes",
            "logs.sources[5].max_line_bytes: must be 64..=max_bytes (8192), got 16384",
            "logs.sources[6].path: not a valid glob",
        ] {
            assert!(e.contains(needle), "{needle:?} missing in {e}");
        }
        assert!(!valid_source_name("..") && !valid_source_name(&"a".repeat(65)) && valid_source_name("a-b_c.d"));
    }

    #[test]
    fn peer_groups_and_ages_are_checked_by_key() {
        let yaml = "connections:\n  method: magic\n  stale_after: 0s\n  max_tracked: 0\n  peers:\n    - name: pg\n      remote_port: 70000\n      limit: 0\n    - name: pg\n      remote_address: nowhere\n    - name: ''\n      remote_port: 1\n      limit: 1\ntasks:\n  stale_after: 40d\n  max_tracked: 2000000\n";
        let e = problems(yaml, false);
        for needle in [
            "connections.method: must be auto or proc_net",
            "connections.stale_after: must be 1s..=30d",
            "connections.max_tracked: must be 1..=1000000, got 0",
            "connections.peers[0].remote_port: must be 1..=65535, got 70000",
            "connections.peers[0].limit: must be 1..=1000000, got 0",
            "connections.peers[1].name: \"pg\" is used by another peer group",
            "connections.peers[1].remote_port: required",
            "connections.peers[1].remote_address: \"nowhere\" is not an IP address",
            "connections.peers[1].limit: required",
            "connections.peers[2].name: must match",
            "tasks.stale_after: must be 1s..=30d",
            "tasks.max_tracked: must be 1..=1000000",
        ] {
            assert!(e.contains(needle), "{needle:?} missing in {e}");
        }
        let ok = "connections:\n  peers:\n    - name: postgres\n      remote_port: 5432\n      remote_address: '::ffff:10.0.0.5'\n      limit: 20\n";
        let v = validate(&Config::from_yaml(ok.as_bytes()).unwrap(), false).unwrap();
        assert_eq!(v.sampler.conns.peers[0].remote_address, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(v.sampler.conns.stale_after, DEFAULT_STALE_AFTER);
        assert_eq!(v.sampler.tasks.max_tracked, DEFAULT_TASK_MAX_TRACKED);
    }

    #[test]
    fn selectors_conflict_and_are_checked() {
        assert!(problems("target:\n  pid: 1\n  process_name: x\n", false).contains("at most one"));
        assert!(problems("target:\n  pid: 1\n", true).contains("leakwatch run"));
        assert!(problems("target:\n  pid: -4\n", false).contains("positive"));
        assert!(problems("target:\n  process_name: a-very-long-process-name\n", false).contains("15 bytes"));
        assert!(problems("target:\n  cmdline_regex: '(unclosed'\n", false).contains("cmdline_regex"));
        let long = format!("target:\n  cmdline_regex: '{}'\n", "a".repeat(2000));
        assert!(problems(&long, false).contains("at most 1024"));
    }
}
