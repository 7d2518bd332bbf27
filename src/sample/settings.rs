//! The sampler's part of the validated config ([`SamplerSection`]) and the one conversion from it
//! to what the sampling loop runs with ([`SamplerConfig::new`]), at start and on every reload.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::conns::ConnSettings;
use super::target::TargetSpec;
use super::tasks::TaskSettings;
use super::tier::TierSettings;
use super::{SamplerConfig, SamplerSettings};
use crate::logs::LogSources;
use crate::roots::Roots;

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

/// The validated values the sampler runs with: `interval`, the procfs and sysfs roots, `target`,
/// `pss`, `sampling`, `connections` and `tasks` (filled by `config::validate`).
#[derive(Debug, Clone)]
pub struct SamplerSection {
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
    /// Which figures each pass reads.
    pub tiers: TierSettings,
    /// Socket sampling.
    pub conns: ConnSettings,
    /// Child-process sampling.
    pub tasks: TaskSettings,
}

/// What `leakwatch run` fixes for the whole run: the wrapped command's pid and program.
#[derive(Debug, Clone, Default)]
pub struct RunMode {
    /// The child's pid, in `run` mode.
    pub pid: Option<i32>,
    /// The program's path, in `run` mode.
    pub program: Option<OsString>,
}

impl SamplerConfig {
    /// What the sampling loop runs with for `section`, in `run_mode`, copying the figures of
    /// `logs` into each snapshot.
    pub fn new(section: &SamplerSection, run_mode: &RunMode, logs: Arc<LogSources>) -> Self {
        let spec = match (&section.selector, run_mode.pid) {
            (_, Some(pid)) => TargetSpec::Child(pid),
            (Selector::Own | Selector::Wrapped, None) => TargetSpec::Own,
            (Selector::Pid(p), None) => TargetSpec::Pid(*p),
            (Selector::Pidfile(f), None) => TargetSpec::Pidfile(f.clone()),
            (Selector::ProcessName(n), None) => TargetSpec::ProcessName(n.clone()),
            (Selector::CmdlineRegex(r), None) => TargetSpec::CmdlineRegex(r.clone()),
        };
        let target_name = section
            .target_name
            .clone()
            .unwrap_or_else(|| run_mode.default_target_name(&section.selector, &section.roots));
        let settings = SamplerSettings {
            roots: section.roots.clone(),
            spec,
            target_name,
            max_processes: section.max_processes,
            pss_max_rss: section.pss_max_rss,
            pss_time_budget: section.pss_time_budget,
            tiers: section.tiers,
            logs,
            conns: section.conns.clone(),
            tasks: section.tasks,
        };
        SamplerConfig { settings, interval: section.interval }
    }
}

impl RunMode {
    /// The `target` label without `target.name`: the wrapped command's name, the process name,
    /// a `--pid`'s command name (`comm`, or `pid-N` when there is no such process), a pidfile's
    /// stem (`/run/nginx.pid`: `nginx`), `leakwatch` for itself, else `target`.
    fn default_target_name(&self, selector: &Selector, roots: &Roots) -> String {
        match (selector, &self.program) {
            (_, Some(program)) => Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()),
            (Selector::Own, None) => Some("leakwatch".to_owned()),
            (Selector::ProcessName(n), None) => Some(n.clone()),
            (Selector::Pid(pid), None) => Some(
                std::fs::read_to_string(roots.pid(*pid).join("comm"))
                    .ok()
                    .map(|comm| comm.trim().to_owned())
                    .filter(|comm| !comm.is_empty() && comm.chars().all(|c| !c.is_control()))
                    .unwrap_or_else(|| format!("pid-{pid}")),
            ),
            (Selector::Pidfile(f), None) => f.file_stem().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        }
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "target".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        let dir = std::env::temp_dir().join(format!("leakwatch-names-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("4")).unwrap();
        std::fs::write(dir.join("4/comm"), "nginx: worker\n").unwrap();
        let roots = Roots::new(&dir, "/nonexistent-sys");
        let own = RunMode::default();
        assert_eq!(own.default_target_name(&Selector::Own, &roots), "leakwatch");
        assert_eq!(own.default_target_name(&Selector::ProcessName("nginx".into()), &roots), "nginx");
        assert_eq!(own.default_target_name(&Selector::Pid(4), &roots), "nginx: worker", "the pid's comm");
        assert_eq!(own.default_target_name(&Selector::Pid(5), &roots), "pid-5", "no such process");
        assert_eq!(own.default_target_name(&Selector::Pidfile("/run/app.pid".into()), &roots), "app");
        let run = RunMode { pid: Some(7), program: Some("/usr/bin/python3".into()) };
        assert_eq!(run.default_target_name(&Selector::Wrapped, &roots), "python3");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
