//! Turns a parsed [`Config`] into a [`ValidConfig`], reporting every problem by key path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::{Regex, RegexBuilder};

use super::*;
use crate::roots::{Roots, DEFAULT_PROCFS, DEFAULT_SYSFS};

/// Longest accepted `target.cmdline_regex`.
pub const MAX_REGEX_LEN: usize = 1024;
/// Compiled-size cap for user regexes, so a pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How the target is chosen, after validation.
#[derive(Debug, Clone)]
pub enum Selector {
    /// leakwatch itself.
    Own,
    /// A fixed pid.
    Pid(i32),
    /// A pidfile.
    Pidfile(PathBuf),
    /// `comm` equality.
    ProcessName(String),
    /// Command-line regex.
    CmdlineRegex(Regex),
    /// The command started by `leakwatch run`.
    Wrapped,
}

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    /// Where to serve.
    pub listen: SocketAddr,
    /// Sampling interval.
    pub interval: Duration,
    /// procfs and sysfs roots.
    pub roots: Roots,
    /// Target selection.
    pub selector: Selector,
    /// Explicit `target` label value, if configured.
    pub target_name: Option<String>,
    /// Cap on sampled processes per group.
    pub max_processes: usize,
    /// PSS RSS ceiling, bytes.
    pub pss_max_rss: u64,
    /// PSS time budget.
    pub pss_time_budget: Duration,
}

/// Checks every value; `wrapped` is true in `leakwatch run` mode, where the wrapped command is
/// the target and no other selector may be given.
pub fn validate(config: &Config, wrapped: bool) -> Result<ValidConfig, ConfigError> {
    let mut problems = Vec::new();
    let listen_text = config.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problems.push(format!("listen: {listen_text:?} is not an address like 0.0.0.0:10171 or [::1]:10171"));
        SocketAddr::from(([0, 0, 0, 0], 0))
    });
    let interval = config.interval.unwrap_or(DEFAULT_INTERVAL);
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&interval) {
        problems.push(format!("interval: must be 100ms..=1h, got {}", humantime::format_duration(interval)));
    }
    let t = &config.target;
    let selector = selector(t, wrapped, &mut problems);
    if let Some(name) = &t.name {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            problems.push(format!("target.name: must be 1..=64 printable characters, got {name:?}"));
        }
    }
    let max_processes = t.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES);
    if !(1..=10_000).contains(&max_processes) {
        problems.push(format!("target.max_processes: must be 1..=10000, got {max_processes}"));
    }
    let pss_time_budget = config.pss.time_budget.unwrap_or(DEFAULT_PSS_TIME_BUDGET);
    if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&pss_time_budget) {
        problems
            .push(format!("pss.time_budget: must be 1ms..=10s, got {}", humantime::format_duration(pss_time_budget)));
    }
    if problems.is_empty() {
        Ok(ValidConfig {
            listen,
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
        })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

fn selector(t: &TargetConfig, wrapped: bool, problems: &mut Vec<String>) -> Selector {
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
            problems.push(format!("{}: `leakwatch run` watches the wrapped command; remove it", given.join(", ")));
        }
        return Selector::Wrapped;
    }
    if given.len() > 1 {
        problems.push(format!("target: give at most one of {}", given.join(", ")));
        return Selector::Own;
    }
    if let Some(pid) = t.pid {
        if pid <= 0 {
            problems.push(format!("target.pid: must be a positive pid, got {pid}"));
        }
        return Selector::Pid(pid);
    }
    if let Some(path) = &t.pidfile {
        return Selector::Pidfile(path.clone());
    }
    if let Some(name) = &t.process_name {
        if name.is_empty() || name.len() > 15 {
            problems.push(format!(
                "target.process_name: the kernel keeps at most 15 bytes of a process name, got {} ({name:?}); \
                 use target.cmdline_regex for longer names",
                name.len()
            ));
        }
        return Selector::ProcessName(name.clone());
    }
    if let Some(pattern) = &t.cmdline_regex {
        if pattern.len() > MAX_REGEX_LEN {
            problems.push(format!("target.cmdline_regex: at most {MAX_REGEX_LEN} characters, got {}", pattern.len()));
            return Selector::Own;
        }
        match RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT).build() {
            Ok(re) => return Selector::CmdlineRegex(re),
            Err(e) => problems.push(format!("target.cmdline_regex: {e}")),
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
    fn defaults_watch_leakwatch_itself() {
        let v = validate(&Config::default(), false).unwrap();
        assert!(matches!(v.selector, Selector::Own));
        assert_eq!(v.interval, DEFAULT_INTERVAL);
        assert_eq!(v.listen.port(), 10171);
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
