//! `alerts:` — the alert rules as written, and their validation into [`AlertRules`].
//!
//! ```yaml
//! alerts:
//!   rules:                      # replaces the built-in threshold rules when given
//!     - ratio: memory_utilization
//!       levels: { info: 0.7, warning: 0.8, critical: 0.9 }
//!       for: 15m
//!       hysteresis: 0.05
//!   prediction:
//!     resources: [memory, fds, pids]
//!     retention: 1h
//!     max_samples: 240
//!     min_fill: 0.5
//!     for: 1h
//!     hysteresis: 0.05
//!     warning: { horizon: 1h, min_ratio: 0.6 }
//!     critical: { horizon: 20m, min_ratio: 0.8, for: 10m }
//!   oom_kill: { enabled: true, window: 15m }
//!   target_down: { enabled: true, for: 2m }
//!   runbook_base_url: https://github.com/leakwatch/leakwatch/blob/main/docs/runbook.md   # + "#alertname"
//!   history: { max_transitions: 1000, retention: 24h, resolved_retention: 15m }
//!   alertmanager: { url: http://alertmanager:9093, timeout: 5s, resend_interval: 1m }   # optional
//!                                 # (https:// URLs too, trusting ca_file, else the system bundle)
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::problem::Problem;
use crate::alert::history::WindowLimits;
use crate::alert::push;
use crate::alert::rules::{
    self, AlertRules, HistoryLimits, OomRule, PredictionLevel, PredictionRules, Ratio, Resource, Severity,
    TargetDownRule, ThresholdRule,
};
use crate::units;

/// Most threshold rules.
pub(crate) const MAX_RULES: usize = 64;
/// The largest sample history per resource.
pub(crate) const MAX_SAMPLES: usize = 10_000;
/// The largest transition history.
pub(crate) const MAX_TRANSITIONS: usize = 100_000;

/// `alerts:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AlertsConfig {
    /// Threshold rules; when given, they replace the built-in ones (one per ratio).
    pub(crate) rules: Option<Vec<RuleConfig>>,
    /// The prediction (leak) rules.
    pub(crate) prediction: PredictionConfig,
    /// The OOM kill rule.
    pub(crate) oom_kill: OomKillConfig,
    /// The target-down rule.
    pub(crate) target_down: TargetDownConfig,
    /// Absolute `http(s)://` URL of the runbook; each alert's `runbook_url` is this + `#alertname`.
    /// Default: the project's runbook, docs/runbook.md on GitHub. Also `--runbook-base-url`.
    pub(crate) runbook_base_url: Option<String>,
    /// The transition history.
    pub(crate) history: HistoryConfig,
    /// Optional push to an Alertmanager.
    pub(crate) alertmanager: AlertmanagerConfig,
}

/// `alerts.alertmanager`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AlertmanagerConfig {
    /// `http[s]://host[:port][/prefix]`; alerts are pushed to `<url>/api/v2/alerts`. Unset: no push.
    pub(crate) url: Option<String>,
    /// CA certificates (PEM) trusted for an `https://` URL; checked at each (re)load, used from
    /// when the push (re)starts. Default: the system CA bundle (`SSL_CERT_FILE`, else
    /// `/etc/ssl/certs/ca-certificates.crt`, ...).
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// Limit on one push. Default `5s`; 100ms..=1m.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) timeout: Option<Duration>,
    /// Firing alerts are sent again after this long. Default `1m`; 1s..=1h.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) resend_interval: Option<Duration>,
}

/// Default push timeout.
pub(crate) const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default resend interval of firing alerts (Prometheus's `--rules.alert.resend-delay`).
pub(crate) const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// Validates `alerts.alertmanager`: `None` when no URL is set.
pub(crate) fn validate_alertmanager(c: &AlertmanagerConfig, problems: &mut Vec<Problem>) -> Option<push::Target> {
    let key = "alerts.alertmanager";
    let timeout = c.timeout.unwrap_or(DEFAULT_PUSH_TIMEOUT);
    if !(Duration::from_millis(100)..=MINUTE).contains(&timeout) {
        problems.push(Problem::new(
            format!("{key}.timeout"),
            format!("must be 100ms..=1m, got {}", humantime::format_duration(timeout)),
        ));
    }
    let resend_interval = c.resend_interval.unwrap_or(DEFAULT_RESEND_INTERVAL);
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&resend_interval) {
        problems.push(Problem::new(
            format!("{key}.resend_interval"),
            format!("must be 1s..=1h, got {}", humantime::format_duration(resend_interval)),
        ));
    }
    let Some(url) = c.url.as_deref() else {
        if c.ca_file.is_some() {
            problems.push(Problem::new(format!("{key}.ca_file"), format!("needs {key}.url")));
        }
        return None;
    };
    let url = match crate::http_client::Url::parse(url) {
        Ok(url) => url,
        Err(e) => {
            problems.push(Problem::new(format!("{key}.url"), format!("{url:?}: {e}")));
            return None;
        }
    };
    if !url.https && c.ca_file.is_some() {
        problems.push(Problem::new(format!("{key}.ca_file"), format!("needs an https:// {key}.url")));
        return None;
    }
    let target = push::Target { url, ca_file: c.ca_file.clone(), timeout, resend_interval };
    // Build the client now, so that an unreadable CA file is a problem of the config.
    match target.client() {
        Ok(_) => Some(target),
        Err(e) => {
            let at = if c.ca_file.is_some() { "ca_file" } else { "url" };
            problems.push(Problem::new(format!("{key}.{at}"), e));
            None
        }
    }
}

/// One entry of `alerts.rules`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleConfig {
    /// What is measured: `memory_utilization`, `fd_utilization`, `peer_utilization`, `pids_utilization`,
    /// `log_buffer_fill`, `host_memory_utilization`.
    #[schemars(with = "String")]
    pub(crate) ratio: Ratio,
    /// The alert name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters, unique. Default per ratio,
    /// e.g. `LeakwatchMemoryUtilizationHigh`.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Levels per severity (any subset, increasing with severity, in (0, 1]).
    /// Default `{info: 0.7, warning: 0.8, critical: 0.9}` (log buffers: `{info: 0.95}`).
    #[serde(default)]
    pub(crate) levels: Option<LevelsConfig>,
    /// How long the ratio must stay above a level before that level fires. Default `15m`; 0s..=1d.
    #[serde(default, rename = "for", deserialize_with = "units::de_duration")]
    pub(crate) for_: Option<Duration>,
    /// An active alert clears only at or below level − hysteresis. Default 0.05; 0..=0.5, below the
    /// lowest level.
    #[serde(default)]
    pub(crate) hysteresis: Option<f64>,
}

/// Levels by severity.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LevelsConfig {
    /// `info` level.
    pub(crate) info: Option<f64>,
    /// `warning` level.
    pub(crate) warning: Option<f64>,
    /// `critical` level.
    pub(crate) critical: Option<f64>,
}

/// `alerts.prediction`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PredictionConfig {
    /// Resources followed: `memory`, `fds`, `pids`, each at most once. Default all three; `[]` turns
    /// prediction off.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) resources: Option<Vec<Resource>>,
    /// History kept per resource. Default `1h`; 1m..=7d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) retention: Option<Duration>,
    /// Most samples kept per resource (spaced at least retention / max_samples; 24 bytes each).
    /// Default 240; 16..=10000.
    pub(crate) max_samples: Option<usize>,
    /// Share of the retention the history must cover before judging (the detector also needs 6 of
    /// its 12 blocks: half the retention). Default 0.5; 0.1..=1.
    pub(crate) min_fill: Option<f64>,
    /// How long a prediction must hold before it fires. Default `1h`; 0s..=1d.
    #[serde(rename = "for", deserialize_with = "units::de_duration")]
    pub(crate) for_: Option<Duration>,
    /// The ratio floor clears only at or below min_ratio − hysteresis. Default 0.05; 0..=0.5.
    pub(crate) hysteresis: Option<f64>,
    /// The warning tier. Default `{horizon: 1h, min_ratio: 0.6}`.
    pub(crate) warning: Option<PredictionLevelConfig>,
    /// The critical tier. Default `{horizon: 20m, min_ratio: 0.8, for: 10m}`.
    pub(crate) critical: Option<PredictionLevelConfig>,
}

/// One prediction tier.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PredictionLevelConfig {
    /// Fire when the limit is predicted within this time: 1m..=7d, critical shorter than warning.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) horizon: Option<Duration>,
    /// ... and the peaks are projected above this share of the limit `for` from now: [0, 1),
    /// critical not below warning.
    pub(crate) min_ratio: Option<f64>,
    /// This tier's `for` (default: `alerts.prediction.for` for warning, `10m` for critical); 0s..=1d.
    #[serde(rename = "for", deserialize_with = "units::de_duration")]
    pub(crate) for_: Option<Duration>,
    /// `false` removes the tier.
    pub(crate) enabled: Option<bool>,
}

/// `alerts.oom_kill`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OomKillConfig {
    /// Default true.
    pub(crate) enabled: Option<bool>,
    /// The alert fires on a kill and stays firing this long after the last one. Default `15m`; 1m..=1d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) window: Option<Duration>,
}

/// `alerts.target_down`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TargetDownConfig {
    /// Default true.
    pub(crate) enabled: Option<bool>,
    /// The target must have had no process this long. Default `2m`; 1s..=1d.
    #[serde(rename = "for", deserialize_with = "units::de_duration")]
    pub(crate) for_: Option<Duration>,
}

/// `alerts.history`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HistoryConfig {
    /// Most transitions kept (`GET /alerts/history`). Default 1000; 1..=100000.
    pub(crate) max_transitions: Option<usize>,
    /// Transitions older than this are dropped. Default `24h`; 1m..=30d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) retention: Option<Duration>,
    /// A resolved alert stays listed under `GET /alerts` this long. Default `15m`; 0s..=1d.
    #[serde(deserialize_with = "units::de_duration")]
    pub(crate) resolved_retention: Option<Duration>,
}

const DAY: Duration = Duration::from_secs(86_400);
const MINUTE: Duration = Duration::from_secs(60);

/// Validates `alerts:`, adding every problem (by key path) to `problems`.
pub(crate) fn validate(c: &AlertsConfig, problems: &mut Vec<Problem>) -> AlertRules {
    let d = rules::defaults();
    let thresholds = match &c.rules {
        None => d.thresholds,
        Some(list) => {
            if list.len() > MAX_RULES {
                problems.push(Problem::new("alerts.rules", format!("at most {MAX_RULES} rules, got {}", list.len())));
            }
            let mut out: Vec<ThresholdRule> = Vec::new();
            for (i, r) in list.iter().enumerate() {
                let rule = threshold(&format!("alerts.rules[{i}]"), r, problems);
                if out.iter().any(|o| o.name == rule.name) {
                    problems.push(Problem::new(
                        format!("alerts.rules[{i}].name"),
                        format!("{:?} is used by another rule", rule.name),
                    ));
                }
                out.push(rule);
            }
            out
        }
    };
    AlertRules {
        thresholds,
        prediction: prediction(&c.prediction, d.prediction, problems),
        oom_kill: oom(&c.oom_kill, problems),
        target_down: target_down(&c.target_down, problems),
        history: history(&c.history, d.history, problems),
        runbook_base: runbook_base(c.runbook_base_url.as_deref(), problems),
    }
}

fn target_down(c: &TargetDownConfig, problems: &mut Vec<Problem>) -> Option<TargetDownRule> {
    let for_ = c.for_.unwrap_or(rules::DEFAULT_TARGET_DOWN_FOR);
    if !(Duration::from_secs(1)..=DAY).contains(&for_) {
        problems.push(Problem::new(
            "alerts.target_down.for",
            format!("must be 1s..=1d, got {}", humantime::format_duration(for_)),
        ));
    }
    (c.enabled != Some(false)).then_some(TargetDownRule { for_ })
}

fn runbook_base(url: Option<&str>, problems: &mut Vec<Problem>) -> String {
    let Some(url) = url else { return rules::DEFAULT_RUNBOOK_BASE.to_owned() };
    let absolute = ["http://", "https://"].iter().any(|p| url.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if !absolute || url.contains('#') || url.chars().any(char::is_whitespace) {
        problems.push(Problem::new(
            "alerts.runbook_base_url",
            format!("must be an absolute http(s):// URL without a #fragment, got {url:?}"),
        ));
    }
    url.to_owned()
}

fn threshold(key: &str, r: &RuleConfig, problems: &mut Vec<Problem>) -> ThresholdRule {
    let default = rules::default_threshold(r.ratio);
    let name = r.name.clone().unwrap_or(default.name);
    if !valid_alert_name(&name) {
        problems.push(Problem::new(
            format!("{key}.name"),
            format!("must match [A-Za-z_][A-Za-z0-9_]{{0,127}}, got {name:?}"),
        ));
    }
    let levels = match &r.levels {
        None => default.levels,
        Some(l) => {
            let given: Vec<(Severity, f64)> =
                [(Severity::Info, l.info), (Severity::Warning, l.warning), (Severity::Critical, l.critical)]
                    .into_iter()
                    .filter_map(|(s, v)| v.map(|v| (s, v)))
                    .collect();
            if given.is_empty() {
                problems.push(Problem::new(format!("{key}.levels"), "give at least one of info, warning, critical"));
            }
            for &(s, v) in &given {
                if !(v > 0.0 && v <= 1.0) {
                    problems.push(Problem::new(
                        format!("{key}.levels.{}", s.as_str()),
                        format!("must be in (0, 1] (a ratio, 0.8 = 80 %), got {v}"),
                    ));
                }
            }
            for pair in given.windows(2) {
                let ((s1, v1), (s2, v2)) = (pair[0], pair[1]);
                if v2 <= v1 {
                    problems.push(Problem::new(
                        format!("{key}.levels"),
                        format!(
                            "must increase with severity, but {} ({v2}) is not above {} ({v1})",
                            s2.as_str(),
                            s1.as_str()
                        ),
                    ));
                }
            }
            given
        }
    };
    let for_ = r.for_.unwrap_or(default.for_);
    if for_ > DAY {
        problems.push(Problem::new(
            format!("{key}.for"),
            format!("must be 0s..=1d, got {}", humantime::format_duration(for_)),
        ));
    }
    let hysteresis = r.hysteresis.unwrap_or(default.hysteresis);
    check_hysteresis(&format!("{key}.hysteresis"), hysteresis, problems);
    if let Some(&(s, lowest)) = levels.first() {
        if hysteresis >= lowest && lowest > 0.0 {
            problems.push(Problem::new(
                format!("{key}.hysteresis"),
                format!("must be below the lowest level ({} = {lowest}), got {hysteresis}", s.as_str()),
            ));
        }
    }
    ThresholdRule { name, ratio: r.ratio, levels, for_, hysteresis }
}

fn prediction(c: &PredictionConfig, d: PredictionRules, problems: &mut Vec<Problem>) -> PredictionRules {
    let key = "alerts.prediction";
    let resources = c.resources.clone().unwrap_or(d.resources);
    for (i, r) in resources.iter().enumerate() {
        if resources[..i].contains(r) {
            problems.push(Problem::new(format!("{key}.resources[{i}]"), format!("{} is listed twice", r.as_str())));
        }
    }
    let retention = c.retention.unwrap_or(d.window.retention);
    if !(MINUTE..=7 * DAY).contains(&retention) {
        problems.push(Problem::new(
            format!("{key}.retention"),
            format!("must be 1m..=7d, got {}", humantime::format_duration(retention)),
        ));
    }
    let max_samples = c.max_samples.unwrap_or(d.window.max_samples);
    if !(16..=MAX_SAMPLES).contains(&max_samples) {
        problems
            .push(Problem::new(format!("{key}.max_samples"), format!("must be 16..={MAX_SAMPLES}, got {max_samples}")));
    }
    let min_fill = c.min_fill.unwrap_or(d.window.min_fill);
    if !(0.1..=1.0).contains(&min_fill) {
        problems.push(Problem::new(format!("{key}.min_fill"), format!("must be 0.1..=1, got {min_fill}")));
    }
    let for_ = c.for_.unwrap_or(d.for_);
    if for_ > DAY {
        problems.push(Problem::new(
            format!("{key}.for"),
            format!("must be 0s..=1d, got {}", humantime::format_duration(for_)),
        ));
    }
    let hysteresis = c.hysteresis.unwrap_or(d.hysteresis);
    check_hysteresis(&format!("{key}.hysteresis"), hysteresis, problems);
    let mut levels = Vec::new();
    for (default, given) in d.levels.iter().zip([&c.warning, &c.critical]) {
        let sev = default.severity.as_str();
        let given = given.clone().unwrap_or_default();
        if given.enabled == Some(false) {
            continue;
        }
        let horizon = given.horizon.unwrap_or(default.horizon);
        if !(MINUTE..=7 * DAY).contains(&horizon) {
            problems.push(Problem::new(
                format!("{key}.{sev}.horizon"),
                format!("must be 1m..=7d, got {}", humantime::format_duration(horizon)),
            ));
        }
        let min_ratio = given.min_ratio.unwrap_or(default.min_ratio);
        if !(0.0..1.0).contains(&min_ratio) {
            problems
                .push(Problem::new(format!("{key}.{sev}.min_ratio"), format!("must be in [0, 1), got {min_ratio}")));
        }
        let level_for = given.for_.or(default.for_);
        if level_for.is_some_and(|f| f > DAY) {
            problems.push(Problem::new(format!("{key}.{sev}.for"), "must be 0s..=1d"));
        }
        levels.push(PredictionLevel { severity: default.severity, horizon, min_ratio, for_: level_for });
    }
    if let [warning, critical] = levels.as_slice() {
        if critical.horizon >= warning.horizon {
            problems.push(Problem::new(
                format!("{key}.critical.horizon"),
                format!(
                    "must be shorter than the warning horizon ({}), got {}",
                    humantime::format_duration(warning.horizon),
                    humantime::format_duration(critical.horizon)
                ),
            ));
        }
        if critical.min_ratio < warning.min_ratio {
            problems.push(Problem::new(
                format!("{key}.critical.min_ratio"),
                format!("must not be below the warning one ({}), got {}", warning.min_ratio, critical.min_ratio),
            ));
        }
    }
    PredictionRules { resources, window: WindowLimits { retention, max_samples, min_fill }, for_, levels, hysteresis }
}

fn oom(c: &OomKillConfig, problems: &mut Vec<Problem>) -> Option<OomRule> {
    let window = c.window.unwrap_or(rules::DEFAULT_OOM_WINDOW);
    if !(MINUTE..=DAY).contains(&window) {
        problems.push(Problem::new(
            "alerts.oom_kill.window",
            format!("must be 1m..=1d, got {}", humantime::format_duration(window)),
        ));
    }
    (c.enabled != Some(false)).then_some(OomRule { window })
}

fn history(c: &HistoryConfig, d: HistoryLimits, problems: &mut Vec<Problem>) -> HistoryLimits {
    let max_transitions = c.max_transitions.unwrap_or(d.max_transitions);
    if !(1..=MAX_TRANSITIONS).contains(&max_transitions) {
        problems.push(Problem::new(
            "alerts.history.max_transitions",
            format!("must be 1..={MAX_TRANSITIONS}, got {max_transitions}"),
        ));
    }
    let retention = c.retention.unwrap_or(d.retention);
    if !(MINUTE..=30 * DAY).contains(&retention) {
        problems.push(Problem::new(
            "alerts.history.retention",
            format!("must be 1m..=30d, got {}", humantime::format_duration(retention)),
        ));
    }
    let resolved_retention = c.resolved_retention.unwrap_or(d.resolved_retention);
    if resolved_retention > DAY {
        problems.push(Problem::new(
            "alerts.history.resolved_retention",
            format!("must be 0s..=1d, got {}", humantime::format_duration(resolved_retention)),
        ));
    }
    HistoryLimits { max_transitions, retention, resolved_retention }
}

fn check_hysteresis(key: &str, h: f64, problems: &mut Vec<Problem>) {
    if !(0.0..=0.5).contains(&h) {
        problems.push(Problem::new(key, format!("must be 0..=0.5 (in ratio units), got {h}")));
    }
}

/// Prometheus alert names: `[A-Za-z_][A-Za-z0-9_]*`, here at most 128 characters.
fn valid_alert_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn problems(yaml: &str) -> String {
        let c = Config::from_yaml(yaml.as_bytes()).unwrap();
        let mut p = Vec::new();
        validate(&c.alerts, &mut p);
        crate::config::problem::join(&p, "\n")
    }

    #[test]
    fn no_alerts_section_gives_the_defaults() {
        let mut p = Vec::new();
        assert_eq!(validate(&AlertsConfig::default(), &mut p), rules::defaults());
        assert!(p.is_empty());
    }

    #[test]
    fn rules_are_read_with_per_rule_defaults() {
        let c = Config::from_yaml(
            b"alerts:\n  rules:\n    - ratio: fd_utilization\n      levels: {warning: 0.85}\n      for: 5m\n    - ratio: memory_utilization\n      name: AppMemory\n",
        )
        .unwrap();
        let mut p = Vec::new();
        let r = validate(&c.alerts, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.thresholds.len(), 2);
        assert_eq!(r.thresholds[0].name, "LeakwatchFdUtilizationHigh");
        assert_eq!(r.thresholds[0].levels, vec![(Severity::Warning, 0.85)]);
        assert_eq!(r.thresholds[0].for_, Duration::from_secs(300));
        assert_eq!(r.thresholds[1].name, "AppMemory");
        assert_eq!(r.thresholds[1].levels, rules::DEFAULT_LEVELS.to_vec());
    }

    #[test]
    fn every_problem_is_named_by_its_key_path() {
        let e = problems(
            "alerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {info: 0.9, warning: 0.8, critical: 1.5}\n      hysteresis: 0.7\n    - ratio: memory_utilization\n      levels: {}\n  prediction:\n    max_samples: 2\n    min_fill: 0\n    retention: 1s\n    resources: [memory, memory]\n    warning: {horizon: 10m}\n    critical: {horizon: 1h, min_ratio: 1.2}\n  oom_kill: {window: 1s}\n  history: {max_transitions: 0, retention: 1s}\n",
        );
        for needle in [
            "alerts.rules[0].levels: must increase with severity, but warning (0.8) is not above info (0.9)",
            "alerts.rules[0].levels.critical: must be in (0, 1]",
            "alerts.rules[0].hysteresis: must be 0..=0.5",
            "alerts.rules[1].levels: give at least one",
            "alerts.rules[1].name: \"LeakwatchMemoryUtilizationHigh\" is used by another rule",
            "alerts.prediction.max_samples: must be 16..=10000, got 2",
            "alerts.prediction.min_fill",
            "alerts.prediction.retention",
            "alerts.prediction.resources[1]: memory is listed twice",
            "alerts.prediction.critical.horizon: must be shorter than the warning horizon",
            "alerts.prediction.critical.min_ratio: must be in [0, 1)",
            "alerts.oom_kill.window",
            "alerts.history.max_transitions",
            "alerts.history.retention",
        ] {
            assert!(e.contains(needle), "{needle:?} missing in:\n{e}");
        }
    }

    #[test]
    fn unknown_ratios_and_keys_are_syntax_errors_with_their_line() {
        let e = Config::from_yaml(b"alerts:\n  rules:\n    - ratio: disk_utilization\n").unwrap_err();
        assert!(e.contains("disk_utilization") && e.contains("memory_utilization") && e.contains("line 3"), "{e}");
        let e = Config::from_yaml(b"alerts:\n  rules:\n    - ratio: fd_utilization\n      level: {info: 0.5}\n")
            .unwrap_err();
        assert!(e.contains("level") && e.contains("line 4"), "{e}");
        let e = Config::from_yaml(b"alerts:\n  predictions: {}\n").unwrap_err();
        assert!(e.contains("predictions"), "{e}");
    }

    #[test]
    fn the_alertmanager_url_is_checked() {
        let c = Config::from_yaml(b"alerts:\n  alertmanager:\n    url: am:9093\n    resend_interval: 0s\n").unwrap();
        let mut p = Vec::new();
        assert_eq!(validate_alertmanager(&c.alerts.alertmanager, &mut p), None);
        let e = crate::config::problem::join(&p, "\n");
        assert!(e.contains("alerts.alertmanager.url") && e.contains("expected http[s]://"), "{e}");
        assert!(e.contains("alerts.alertmanager.resend_interval: must be 1s..=1h"), "{e}");
        let c = Config::from_yaml(
            b"alerts:\n  alertmanager:\n    url: https://am:9093\n    ca_file: /nonexistent/ca.pem\n",
        )
        .unwrap();
        let mut p = Vec::new();
        assert_eq!(validate_alertmanager(&c.alerts.alertmanager, &mut p), None);
        assert_eq!(p[0].key_path, "alerts.alertmanager.ca_file");
        assert!(p[0].message.starts_with("/nonexistent/ca.pem"), "{p:?}");
        let c =
            Config::from_yaml(b"alerts:\n  alertmanager:\n    url: http://am:9093\n    ca_file: /ca.pem\n").unwrap();
        let mut p = Vec::new();
        assert_eq!(validate_alertmanager(&c.alerts.alertmanager, &mut p), None);
        assert_eq!(p[0].key_path, "alerts.alertmanager.ca_file");
        assert!(p[0].message.contains("needs an https://"), "{p:?}");
        let c = Config::from_yaml(b"alerts:\n  alertmanager:\n    url: http://am:9093/am\n").unwrap();
        let mut p = Vec::new();
        let t = validate_alertmanager(&c.alerts.alertmanager, &mut p).unwrap();
        assert!(p.is_empty());
        assert_eq!((t.url.authority.as_str(), t.url.prefix.as_str()), ("am:9093", "/am"));
        assert_eq!(validate_alertmanager(&AlertmanagerConfig::default(), &mut p), None);
    }

    #[test]
    fn target_down_and_the_runbook_url_are_checked() {
        let found = problems("alerts:\n  target_down: {for: 0s}\n  runbook_base_url: README.md\n");
        assert!(found.contains("alerts.target_down.for: must be 1s..=1d"), "{found}");
        assert!(found.contains("alerts.runbook_base_url: must be an absolute http(s):// URL"), "{found}");
        let c =
            Config::from_yaml(b"alerts:\n  target_down: {enabled: false}\n  runbook_base_url: https://x.example/rb\n")
                .unwrap();
        let mut none = Vec::new();
        let r = validate(&c.alerts, &mut none);
        assert!(none.is_empty() && r.target_down.is_none(), "{none:?}");
        assert_eq!(rules::runbook_url(&r.runbook_base, "LeakwatchOomKill"), "https://x.example/rb#leakwatchoomkill");
    }

    #[test]
    fn tiers_and_the_oom_rule_can_be_turned_off() {
        let c = Config::from_yaml(
            b"alerts:\n  prediction:\n    critical: {enabled: false}\n  oom_kill: {enabled: false}\n  rules: []\n",
        )
        .unwrap();
        let mut p = Vec::new();
        let r = validate(&c.alerts, &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert!(r.thresholds.is_empty() && r.oom_kill.is_none());
        assert_eq!(r.prediction.levels.len(), 1);
    }

    #[test]
    fn each_tier_has_its_own_for() {
        let c = Config::from_yaml(b"alerts:\n  prediction:\n    for: 2h\n    critical: {for: 5m}\n").unwrap();
        let mut p = Vec::new();
        let r = validate(&c.alerts, &mut p).prediction;
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.for_of(&r.levels[0]), Duration::from_secs(7200), "warning: the rules' for");
        assert_eq!(r.for_of(&r.levels[1]), Duration::from_secs(300));
        let c = Config::from_yaml(b"alerts:\n  prediction:\n    warning: {for: 2d}\n").unwrap();
        validate(&c.alerts, &mut p);
        assert!(p.iter().any(|e| e.to_string().contains("alerts.prediction.warning.for: must be 0s..=1d")), "{p:?}");
    }
}
