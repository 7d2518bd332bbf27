//! Alert rules as data, with the built-in defaults. The same values drive the in-process engine
//! and the generated Prometheus rules ([`super::promgen`]): each measured ratio knows how to read
//! itself from a [`Snapshot`] *and* how to compute itself in PromQL from the exported metrics.
//!
//! Three kinds of rule:
//! - **threshold** rules over a `Ratio` (levels per severity, `for`, hysteresis);
//! - **prediction** rules over a [`Resource`] with a limit (the leak detector's time to the limit
//!   under a horizon, AND the ratio above a floor: the node-mixin `NodeFilesystemSpaceFillingUp` shape);
//! - the **OOM kill** rule (the kernel's counter went up).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::history::WindowLimits;
use super::leak;
use crate::metric_names::{
    CGROUP_PIDS, CGROUP_PIDS_MAX, FD_UTILIZATION_RATIO, HOST_MEMORY_AVAILABLE_BYTES, HOST_MEMORY_TOTAL_BYTES,
    LOG_BUFFER_BYTES, LOG_BUFFER_MAX_BYTES, MEMORY_LIMIT_BYTES, MEMORY_USED_BYTES, MEMORY_UTILIZATION_RATIO,
    PEER_UTILIZATION_RATIO, PROCESS_MAX_FDS, PROCESS_OPEN_FDS, TREND_FDS_SLOPE_PER_SECOND,
    TREND_MEMORY_SLOPE_BYTES_PER_SECOND, TREND_PIDS_SLOPE_PER_SECOND,
};
use crate::snapshot::Snapshot;

/// Alert severity, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    #[cfg(test)]
    /// Every severity, lowest first.
    pub(crate) const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Label pairs of one alert instance (bounded: `target`, `basis`, `source`, `peer`).
pub(crate) type Labels = Vec<(&'static str, String)>;

/// A measured ratio (0..=1, higher is worse) that threshold rules can watch. A new ratio
/// (e.g. a peer group's connection utilization) is one variant here: its snapshot reading, its
/// PromQL and its texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Ratio {
    /// The target's memory on the OOM killer's basis (`leakwatch_memory_utilization_ratio`).
    MemoryUtilization,
    /// The worst process's open file descriptors against its soft limit (`leakwatch_fd_utilization_ratio`).
    FdUtilization,
    /// Each peer group's connections against its limit, e.g. a database pool
    /// (`leakwatch_peer_utilization_ratio`).
    PeerUtilization,
    /// Tasks in the target's cgroup against `pids.max` (only when a limit is set).
    PidsUtilization,
    /// Each log source's buffer: bytes held against `max_bytes`.
    LogBufferFill,
    /// The host's memory in use: 1 − MemAvailable / MemTotal.
    HostMemoryUtilization,
}

/// One measured value of a ratio, with the labels that identify it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reading {
    /// Identifying labels.
    pub(crate) labels: Labels,
    /// The ratio.
    pub(crate) value: f64,
}

impl Ratio {
    /// Every ratio.
    pub(crate) const ALL: [Ratio; 6] = [
        Ratio::MemoryUtilization,
        Ratio::FdUtilization,
        Ratio::PeerUtilization,
        Ratio::PidsUtilization,
        Ratio::LogBufferFill,
        Ratio::HostMemoryUtilization,
    ];

    /// The alert name a rule over this ratio gets unless it names one.
    pub(crate) fn default_alert(self) -> &'static str {
        match self {
            Self::MemoryUtilization => "LeakwatchMemoryUtilizationHigh",
            Self::FdUtilization => "LeakwatchFdUtilizationHigh",
            Self::PeerUtilization => "LeakwatchPeerConnectionsHigh",
            Self::PidsUtilization => "LeakwatchPidsUtilizationHigh",
            Self::LogBufferFill => "LeakwatchLogBufferFull",
            Self::HostMemoryUtilization => "LeakwatchHostMemoryUtilizationHigh",
        }
    }

    /// The current values in a snapshot (none when the figures are absent).
    pub(crate) fn readings(self, s: &Snapshot) -> Vec<Reading> {
        let target = || ("target", s.target.name.clone());
        match self {
            Self::MemoryUtilization => s
                .target
                .utilization
                .iter()
                .filter(|u| u.limit > 0)
                .map(|u| Reading { labels: vec![target(), ("basis", u.basis.as_str().to_owned())], value: u.ratio() })
                .collect(),
            Self::FdUtilization => s
                .target
                .fds
                .as_ref()
                .and_then(|f| f.utilization)
                .map(|value| Reading { labels: vec![target()], value })
                .into_iter()
                .collect(),
            Self::PeerUtilization => s
                .target
                .sockets
                .iter()
                .flat_map(|sockets| &sockets.peers)
                .map(|p| Reading { labels: vec![target(), ("peer", p.name.clone())], value: p.utilization })
                .collect(),
            Self::PidsUtilization => s
                .target
                .pids
                .and_then(|p| ratio(p.current?, p.max?))
                .map(|value| Reading { labels: vec![target()], value })
                .into_iter()
                .collect(),
            Self::LogBufferFill => s
                .logs
                .iter()
                .filter_map(|l| {
                    let value = ratio(l.ring.counted_bytes() as u64, l.limits.max_bytes as u64)?;
                    Some(Reading { labels: vec![("source", l.name.clone())], value })
                })
                .collect(),
            Self::HostMemoryUtilization => s
                .host
                .memory
                .and_then(|m| Some(1.0 - ratio(m.available?, m.total)?))
                .map(|value| Reading { labels: Vec::new(), value })
                .into_iter()
                .collect(),
        }
    }

    /// The PromQL that computes the same ratio from the exported metrics.
    pub(crate) fn promql(self, sel: &str) -> String {
        match self {
            Self::MemoryUtilization => format!("{MEMORY_UTILIZATION_RATIO}{sel}"),
            Self::FdUtilization => format!("{FD_UTILIZATION_RATIO}{sel}"),
            Self::PeerUtilization => format!("{PEER_UTILIZATION_RATIO}{sel}"),
            Self::PidsUtilization => format!("{CGROUP_PIDS}{sel} / {CGROUP_PIDS_MAX}{sel}"),
            Self::LogBufferFill => format!("{LOG_BUFFER_BYTES}{sel} / {LOG_BUFFER_MAX_BYTES}{sel}"),
            Self::HostMemoryUtilization => {
                format!("1 - {HOST_MEMORY_AVAILABLE_BYTES}{sel} / {HOST_MEMORY_TOTAL_BYTES}{sel}")
            }
        }
    }

    /// Summary and description templates for a level (Prometheus template syntax; the engine
    /// renders the same text, see [`render_template`]).
    pub(crate) fn texts(self, level: f64) -> (String, String) {
        let pct = percent(level);
        match self {
            Self::MemoryUtilization => (
                format!("{{{{ $labels.target }}}} uses more than {pct} of its memory limit."),
                format!(
                    "The memory of {{{{ $labels.target }}}} ({{{{ $labels.basis }}}}) is at {{{{ printf \"%.2f\" $value }}}} \
                     of its limit (alert level {level}); the OOM killer acts at 1.00."
                ),
            ),
            Self::FdUtilization => (
                format!("{{{{ $labels.target }}}} uses more than {pct} of its file descriptor limit."),
                format!(
                    "{{{{ $labels.target }}}} has {{{{ printf \"%.2f\" $value }}}} of its soft RLIMIT_NOFILE open \
                     (alert level {level}); at 1.00 opening files and sockets fails with EMFILE."
                ),
            ),
            Self::PeerUtilization => (
                format!("{{{{ $labels.target }}}} holds more than {pct} of its {{{{ $labels.peer }}}} connection limit."),
                format!(
                    "{{{{ $labels.target }}}} has {{{{ printf \"%.2f\" $value }}}} of the connections its peer group \
                     {{{{ $labels.peer }}}} allows (alert level {level}); at 1.00 a pool of that size is exhausted and \
                     callers wait or fail."
                ),
            ),
            Self::PidsUtilization => (
                format!("The cgroup of {{{{ $labels.target }}}} holds more than {pct} of its pids.max tasks."),
                format!(
                    "Tasks (processes and threads) in the cgroup of {{{{ $labels.target }}}} are at \
                     {{{{ printf \"%.2f\" $value }}}} of pids.max (alert level {level}); at 1.00 fork and \
                     thread creation fail with EAGAIN."
                ),
            ),
            Self::LogBufferFill => (
                format!("Log buffer {{{{ $labels.source }}}} is more than {pct} full."),
                format!(
                    "The in-memory buffer of log source {{{{ $labels.source }}}} holds {{{{ printf \"%.2f\" $value }}}} \
                     of its max_bytes (alert level {level}); beyond it the oldest lines are evicted."
                ),
            ),
            Self::HostMemoryUtilization => (
                format!("More than {pct} of the host's memory is in use."),
                format!(
                    "The host has {{{{ printf \"%.2f\" $value }}}} of MemTotal in use (1 - MemAvailable / MemTotal; \
                     alert level {level})."
                ),
            ),
        }
    }
}

/// A resource with a limit whose growth the leak detector follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// The target's memory on the utilization basis, against its limit.
    Memory,
    /// The target's open file descriptors, against the soft limit.
    Fds,
    /// Tasks in the target's cgroup, against `pids.max`.
    Pids,
}

/// One observation of a resource.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Usage {
    /// Identifying labels.
    pub(crate) labels: Labels,
    /// What is used.
    pub(crate) used: f64,
    /// The limit.
    pub(crate) limit: f64,
    /// A key that changes when the series changes meaning (another basis, a restarted
    /// target): the history then starts over.
    pub(crate) series: String,
}

impl Resource {
    /// Every resource.
    pub(crate) const ALL: [Resource; 3] = [Resource::Memory, Resource::Fds, Resource::Pids];

    /// Label value and config name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Fds => "fds",
            Self::Pids => "pids",
        }
    }

    /// The prediction alert's name.
    pub fn alert(self) -> &'static str {
        match self {
            Self::Memory => "LeakwatchMemoryFillingUp",
            Self::Fds => "LeakwatchFdsFillingUp",
            Self::Pids => "LeakwatchPidsFillingUp",
        }
    }

    /// The current usage in a snapshot.
    pub(crate) fn usage(self, s: &Snapshot) -> Option<Usage> {
        let t = &s.target;
        let labels = vec![("target", t.name.clone())];
        let (used, limit, series) = match self {
            Self::Memory => {
                let u = t.utilization?;
                (u.used, u.limit, format!("{}/{}", u.basis.as_str(), t.changes))
            }
            Self::Fds => {
                let m = t.memory?;
                (m.open_fds?, m.max_fds?, t.changes.to_string())
            }
            Self::Pids => {
                let p = t.pids?;
                (p.current?, p.max?, t.changes.to_string())
            }
        };
        let labels = match self {
            Self::Memory => {
                let mut l = labels;
                l.push(("basis", t.utilization?.basis.as_str().to_owned()));
                l
            }
            _ => labels,
        };
        (limit > 0).then_some(Usage { labels, used: used as f64, limit: limit as f64, series })
    }

    /// The PromQL of (used, limit).
    pub(crate) fn promql(self, sel: &str) -> (String, String) {
        match self {
            Self::Memory => (format!("{MEMORY_USED_BYTES}{sel}"), format!("{MEMORY_LIMIT_BYTES}{sel}")),
            Self::Fds => (format!("{PROCESS_OPEN_FDS}{sel}"), format!("{PROCESS_MAX_FDS}{sel}")),
            Self::Pids => (format!("{CGROUP_PIDS}{sel}"), format!("{CGROUP_PIDS_MAX}{sel}")),
        }
    }

    /// The detector's exported slope of this resource, as PromQL.
    pub(crate) fn slope_promql(self, sel: &str) -> String {
        match self {
            Self::Memory => format!("{TREND_MEMORY_SLOPE_BYTES_PER_SECOND}{sel}"),
            Self::Fds => format!("{TREND_FDS_SLOPE_PER_SECOND}{sel}"),
            Self::Pids => format!("{TREND_PIDS_SLOPE_PER_SECOND}{sel}"),
        }
    }

    /// The ratio used/limit as PromQL (the alert's value).
    pub(crate) fn ratio_promql(self, sel: &str) -> String {
        match self {
            Self::Memory => Ratio::MemoryUtilization.promql(sel),
            // The same used ÷ limit the detector follows (the group's descriptors, summed).
            Self::Fds => format!("{PROCESS_OPEN_FDS}{sel} / {PROCESS_MAX_FDS}{sel}"),
            Self::Pids => Ratio::PidsUtilization.promql(sel),
        }
    }

    /// Summary and description for a prediction level.
    pub(crate) fn texts(self, horizon: Duration, min_ratio: f64, for_: Duration, window: Duration) -> (String, String) {
        let (what, limit) = match self {
            Self::Memory => ("memory", "its memory limit"),
            Self::Fds => ("open file descriptors", "its file descriptor limit"),
            Self::Pids => ("tasks", "pids.max"),
        };
        let horizon = prom_duration(horizon);
        // The detector judges the window's newest part down to `MIN_BLOCKS` blocks and, once
        // growing, a longer scale of up to `LONG_BLOCKS` blocks (see `leak`).
        let scale = |blocks: usize| prom_duration(window * blocks as u32 / leak::BLOCKS as u32);
        let (shortest, longest) = (scale(leak::MIN_BLOCKS), scale(leak::LONG_BLOCKS));
        let window = prom_duration(window);
        let for_ = prom_duration(for_);
        (
            format!("The {what} of {{{{ $labels.target }}}} will reach {limit} within {horizon}."),
            format!(
                "The {what} of {{{{ $labels.target }}}} ({{{{ printf \"%.2f\" $value }}}} of {limit}) grew \
                 significantly over the last {shortest} to {longest} (the {window} window or its newest part, and \
                 once growing a longer scale of up to {longest}), its peaks heading above {min_ratio} within {for_}; at that \
                 rate they reach {limit} within {horizon}."
            ),
        )
    }
}

/// A threshold rule over one ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    /// The alert name (one name, one series of severity tiers).
    pub(crate) name: String,
    /// What is measured.
    pub(crate) ratio: Ratio,
    /// (severity, level) pairs, levels increasing with severity; active while the ratio is above the level.
    pub levels: Vec<(Severity, f64)>,
    /// How long the condition must hold before the alert fires.
    pub(crate) for_: Duration,
    /// Once active, an alert clears only at or below `level − hysteresis`.
    pub(crate) hysteresis: f64,
}

/// One severity tier of the prediction rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PredictionLevel {
    /// The severity.
    pub(crate) severity: Severity,
    /// Fires when the limit is predicted within this time.
    pub(crate) horizon: Duration,
    /// ... and the peaks are projected above this share of the limit `for` from now.
    pub(crate) min_ratio: f64,
    /// How long the prediction must hold before it fires; `None`: the rules' `for`.
    pub(crate) for_: Option<Duration>,
}

/// The prediction rules (one alert per resource, with severity tiers).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRules {
    /// The resources followed.
    pub resources: Vec<Resource>,
    /// The sample history per resource.
    pub(crate) window: WindowLimits,
    /// How long the prediction must hold before the alert fires. The condition looks
    /// `horizon + for` ahead, so that after holding for `for` it fires when the limit is
    /// `horizon` away (a steady leak is caught `horizon` before the limit, not at it).
    pub(crate) for_: Duration,
    /// Tiers, increasing severity (shorter horizons).
    pub(crate) levels: Vec<PredictionLevel>,
    /// The ratio floor clears only at or below `min_ratio − hysteresis`.
    pub(crate) hysteresis: f64,
}

impl PredictionRules {
    /// The `for` of a tier: its own, else the rules'.
    pub(crate) fn for_of(&self, level: &PredictionLevel) -> Duration {
        level.for_.unwrap_or(self.for_)
    }
}

/// The OOM kill rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OomRule {
    /// Fires (critical, at once) when the counter rose within this window, and stays firing
    /// until the window has passed without a new kill.
    pub(crate) window: Duration,
}

/// Caps of the alert transition history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistoryLimits {
    /// Most transitions kept.
    pub(crate) max_transitions: usize,
    /// Transitions older than this are dropped.
    pub(crate) retention: Duration,
    /// A resolved alert stays listed under `GET /alerts` this long.
    pub(crate) resolved_retention: Duration,
}

/// Every rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Threshold rules.
    pub thresholds: Vec<ThresholdRule>,
    /// Prediction rules.
    pub prediction: PredictionRules,
    /// The OOM kill rule, unless disabled.
    pub oom_kill: Option<OomRule>,
    /// The target-down rule, unless disabled.
    pub target_down: Option<TargetDownRule>,
    /// History caps.
    pub(crate) history: HistoryLimits,
    /// Absolute URL of the runbook (the alert's anchor is appended after `#`).
    pub runbook_base: String,
}

/// `LeakwatchTargetDown`: the configured target has had no process for `for_`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetDownRule {
    /// How long the target must be gone.
    pub(crate) for_: Duration,
}

/// The alert name of the target-down rule.
pub(crate) const TARGET_DOWN_ALERT: &str = "LeakwatchTargetDown";
/// Default `for` of the target-down rule.
pub(crate) const DEFAULT_TARGET_DOWN_FOR: Duration = Duration::from_secs(120);
/// Where `runbook_url` points by default: the project's runbook, docs/runbook.md.
pub const DEFAULT_RUNBOOK_BASE: &str = "https://github.com/leakwatch/leakwatch/blob/main/docs/runbook.md";
/// Why an alert ended because the target vanished (`reason` in `/alerts/history`).
pub(crate) const REASON_TARGET_GONE: &str = "target_gone";

/// The alert name of the OOM kill rule.
pub(crate) const OOM_ALERT: &str = "LeakwatchOomKill";
/// Default threshold levels.
pub(crate) const DEFAULT_LEVELS: [(Severity, f64); 3] =
    [(Severity::Info, 0.70), (Severity::Warning, 0.80), (Severity::Critical, 0.90)];
/// Default `for` of threshold (utilization) rules.
pub(crate) const DEFAULT_THRESHOLD_FOR: Duration = Duration::from_secs(15 * 60);
/// Default hysteresis margin (in ratio units).
pub(crate) const DEFAULT_HYSTERESIS: f64 = 0.05;
/// A log ring is meant to fill up and evict: by default its fill is only worth an `info` near full.
pub(crate) const DEFAULT_LOG_BUFFER_LEVELS: [(Severity, f64); 1] = [(Severity::Info, 0.95)];
/// Default `for` of prediction rules.
pub(crate) const DEFAULT_PREDICTION_FOR: Duration = Duration::from_secs(3600);
/// Default prediction tiers: warning when the limit is 1 h away and the peaks above 60 %;
/// critical (the fast path, with a 10 min `for`) when it is 20 min away and above 80 %.
pub(crate) const DEFAULT_PREDICTION_LEVELS: [PredictionLevel; 2] = [
    PredictionLevel { severity: Severity::Warning, horizon: Duration::from_secs(3600), min_ratio: 0.6, for_: None },
    PredictionLevel {
        severity: Severity::Critical,
        horizon: Duration::from_secs(20 * 60),
        min_ratio: 0.8,
        for_: Some(Duration::from_secs(10 * 60)),
    },
];
/// Once a prediction alert is active, it holds while the time to the limit is below this
/// multiple of its lookahead (`horizon + for`).
pub(crate) const TTL_HYSTERESIS: f64 = 1.25;
/// Default leak window: 1 h of history, at most 240 samples (one per 15 s), judged from half full.
pub const DEFAULT_WINDOW: WindowLimits =
    WindowLimits { retention: Duration::from_secs(3600), max_samples: 240, min_fill: 0.5 };
/// Default OOM kill window.
pub(crate) const DEFAULT_OOM_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Default cap on kept transitions.
pub(crate) const DEFAULT_MAX_TRANSITIONS: usize = 1000;
/// Default transition retention.
pub(crate) const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default time a resolved alert stays listed.
pub(crate) const DEFAULT_RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The default threshold rule for a ratio.
pub(crate) fn default_threshold(ratio: Ratio) -> ThresholdRule {
    let levels = match ratio {
        Ratio::LogBufferFill => DEFAULT_LOG_BUFFER_LEVELS.to_vec(),
        _ => DEFAULT_LEVELS.to_vec(),
    };
    ThresholdRule {
        name: ratio.default_alert().to_owned(),
        ratio,
        levels,
        for_: DEFAULT_THRESHOLD_FOR,
        hysteresis: DEFAULT_HYSTERESIS,
    }
}

/// The built-in rules.
pub fn defaults() -> AlertRules {
    AlertRules {
        thresholds: Ratio::ALL.into_iter().map(default_threshold).collect(),
        prediction: PredictionRules {
            resources: Resource::ALL.to_vec(),
            window: DEFAULT_WINDOW,
            for_: DEFAULT_PREDICTION_FOR,
            levels: DEFAULT_PREDICTION_LEVELS.to_vec(),
            hysteresis: DEFAULT_HYSTERESIS,
        },
        oom_kill: Some(OomRule { window: DEFAULT_OOM_WINDOW }),
        target_down: Some(TargetDownRule { for_: DEFAULT_TARGET_DOWN_FOR }),
        history: HistoryLimits {
            max_transitions: DEFAULT_MAX_TRANSITIONS,
            retention: DEFAULT_HISTORY_RETENTION,
            resolved_retention: DEFAULT_RESOLVED_RETENTION,
        },
        runbook_base: DEFAULT_RUNBOOK_BASE.to_owned(),
    }
}

/// `level − margin`, rounded to 6 decimals so that the engine and the generated PromQL use the
/// same number (0.8 − 0.05 is 0.75, not 0.7500000000000001).
pub(crate) fn clear_level(level: f64, margin: f64) -> f64 {
    ((level - margin) * 1e6).round() / 1e6
}

/// The OOM rule's texts.
pub(crate) fn oom_texts() -> (String, String) {
    (
        "{{ $labels.target }} was killed by the OOM killer.".to_owned(),
        "leakwatch counted {{ printf \"%.2f\" $value }} OOM kills of {{ $labels.target }} in the alert window \
         (its own count, kept across container restarts and cgroup changes): the cgroup reached its memory \
         limit and a process was killed. GET /oom on leakwatch shows what preceded each kill."
            .to_owned(),
    )
}

/// The target-down rule's texts.
pub(crate) fn target_down_texts() -> (String, String) {
    (
        "leakwatch finds no process of {{ $labels.target }}.".to_owned(),
        "The configured target {{ $labels.target }} has had no process for the rule's `for`: it exited, \
         was OOM-killed or is restarting (crash loop?). Its memory alerts ended with reason target_gone."
            .to_owned(),
    )
}

/// The absolute runbook URL of an alert.
pub(crate) fn runbook_url(base: &str, alert: &str) -> String {
    format!("{base}#{}", runbook_anchor(alert))
}

/// The docs/runbook.md anchor of an alert's runbook entry (GitHub's heading anchors: lower case).
pub(crate) fn runbook_anchor(alert: &str) -> String {
    alert.to_ascii_lowercase()
}

/// Renders the two template forms the rule texts use, `{{ $labels.NAME }}` and
/// `{{ printf "%.2f" $value }}`, as Prometheus would. An unknown label renders empty.
pub(crate) fn render_template(template: &str, labels: &Labels, value: f64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = rest[start + 2..start + len].trim();
        if let Some(name) = inner.strip_prefix("$labels.") {
            if let Some((_, v)) = labels.iter().find(|(k, _)| *k == name) {
                out.push_str(v);
            }
        } else if inner == "printf \"%.2f\" $value" {
            out.push_str(&format!("{value:.2}"));
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// A duration as Prometheus writes it: `15m`, `1h`, `1h30m`, `90s`, `500ms`.
pub(crate) fn prom_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let mut s = (ms / 1000) as u64;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= size {
            out.push_str(&format!("{}{unit}", s / size));
            s %= size;
        }
    }
    out
}

fn ratio(used: u64, limit: u64) -> Option<f64> {
    (limit > 0).then(|| used as f64 / limit as f64)
}

fn percent(level: f64) -> String {
    let p = (level * 1e4).round() / 100.0;
    format!("{p} %")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_labels_and_values_as_prometheus_does() {
        let labels = vec![("target", "app".to_owned()), ("basis", "host_rss".to_owned())];
        let (summary, description) = Ratio::MemoryUtilization.texts(0.8);
        assert_eq!(render_template(&summary, &labels, 0.8312), "app uses more than 80 % of its memory limit.");
        assert!(render_template(&description, &labels, 0.8312).contains("app (host_rss) is at 0.83 of its limit"));
        assert_eq!(render_template("{{ $labels.nope }}x{{ unknown }}", &labels, 1.0), "x{{ unknown }}");
        assert_eq!(render_template("open {{ never closed", &labels, 1.0), "open {{ never closed");
    }

    #[test]
    fn prediction_texts_name_the_scales_the_detector_judges() {
        let (_, description) = Resource::Memory.texts(
            Duration::from_secs(3600),
            0.6,
            Duration::from_secs(3600),
            Duration::from_secs(7200),
        );
        assert!(
            description.contains("over the last 1h to 6h (the 2h window or its newest part, and once growing a longer scale of up to 6h)"),
            "{description}"
        );
    }

    #[test]
    fn durations_are_written_the_prometheus_way() {
        assert_eq!(prom_duration(Duration::from_secs(900)), "15m");
        assert_eq!(prom_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(prom_duration(Duration::from_secs(86_400 + 1)), "1d1s");
        assert_eq!(prom_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(prom_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn clear_levels_are_exact_decimals() {
        assert_eq!(clear_level(0.8, 0.05), 0.75);
        assert_eq!(clear_level(0.7, 0.05), 0.65);
        assert_eq!(format!("{}", clear_level(0.9, 0.05)), "0.85");
    }

    #[test]
    fn defaults_follow_the_conventions() {
        let d = defaults();
        let memory = &d.thresholds[0];
        assert_eq!(memory.levels, DEFAULT_LEVELS.to_vec());
        assert_eq!(memory.for_, Duration::from_secs(900));
        assert_eq!(d.prediction.for_, Duration::from_secs(3600));
        assert_eq!(d.prediction.levels[0].horizon, Duration::from_secs(3600));
        assert_eq!(d.prediction.levels[1].horizon, Duration::from_secs(1200));
        assert_eq!(d.prediction.for_of(&d.prediction.levels[0]), Duration::from_secs(3600));
        assert_eq!(d.prediction.for_of(&d.prediction.levels[1]), Duration::from_secs(600));
        let names: Vec<&str> = d.thresholds.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), Ratio::ALL.len());
    }
}
