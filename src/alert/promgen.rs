//! Prometheus rule generation from the same [`AlertRules`] the engine evaluates: a rule file
//! (`promtool check rules`-clean) and a prometheus-operator `PrometheusRule` manifest with the
//! same groups. Each level of a rule becomes one alerting rule with a `severity` label, the same
//! `for`, and PromQL that computes the same condition from the exported metrics:
//!
//! - threshold: `RATIO > level`, or, while the alert is already pending or firing (its `ALERTS`
//!   series from the previous evaluation), `RATIO > level − hysteresis`;
//! - prediction: the same judgement as the engine, on the figures the detector exports
//!   (`leakwatch_trend_time_to_limit_seconds` under `horizon + for`, and the peaks projected `for`
//!   ahead above the floor), with the engine's hysteresis through `ALERTS`;
//! - OOM kill: `sum without(detection) (increase(leakwatch_target_oom_kills_total[window])) > 0`
//!   (leakwatch's own count, which survives the cgroup a container restart replaces);
//! - target down: `leakwatch_target_up == 0` for the rule's `for`;
//! - leakwatch itself: `up{JOB} == 0` (down), `absent(up{JOB})` (absent), and
//!   `leakwatch_config_last_reload_successful == 0` (a config reload failed).
//!
//! No expression aggregates away `namespace`, `pod`, `container` or `instance`: every alert keeps
//! the labels of the series it fired on.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metric_names::{
    CONFIG_LAST_RELOAD_SUCCESSFUL, TARGET_OOM_KILLS_TOTAL, TARGET_UP, TREND_TIME_TO_LIMIT_SECONDS,
};
use std::time::Duration;

use super::rules::{
    self, prom_duration, AlertRules, PredictionLevel, Resource, Severity, OOM_ALERT, TARGET_DOWN_ALERT,
};

/// Where `runbook_url` points by default (the anchor is appended): the project's runbook,
/// docs/runbook.md. Override it with `--runbook-base` for a published copy.
pub(crate) const DEFAULT_RUNBOOK_BASE: &str = rules::DEFAULT_RUNBOOK_BASE;
/// The default selector of leakwatch's own scrape job for `up`: a plain scrape config's job, or a
/// prometheus-operator PodMonitor/ServiceMonitor job (`namespace/name`).
pub(crate) const DEFAULT_JOB_SELECTOR: &str = "job=~\".*leakwatch.*\"";
/// Alert: leakwatch's scrape fails.
pub(crate) const DOWN_ALERT: &str = "LeakwatchDown";
/// Alert: no leakwatch series at all.
pub(crate) const ABSENT_ALERT: &str = "LeakwatchAbsent";
/// Alert: the last config reload failed.
pub(crate) const RELOAD_ALERT: &str = "LeakwatchConfigReloadFailed";
/// The PrometheusRule's default name.
pub(crate) const DEFAULT_CRD_NAME: &str = "leakwatch";

/// Generation settings (selectors live here, in one place, like a mixin's `_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Label matchers added to every metric selector, e.g. `job="leakwatch"`; empty for none.
    pub selector: String,
    /// The runbook URL before `#anchor`.
    pub runbook_base: String,
    /// Label matchers selecting leakwatch's scrape job in `up`, e.g. `job="leakwatch"`.
    pub job_selector: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            selector: String::new(),
            runbook_base: DEFAULT_RUNBOOK_BASE.to_owned(),
            job_selector: DEFAULT_JOB_SELECTOR.to_owned(),
        }
    }
}

/// A rule file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleFile {
    /// Rule groups.
    pub groups: Vec<Group>,
}

/// One rule group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Alerting rules.
    pub rules: Vec<AlertingRule>,
}

/// One alerting rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertingRule {
    /// Alert name.
    pub(crate) alert: String,
    /// PromQL condition.
    pub(crate) expr: String,
    /// How long it must hold; absent for "at once".
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub(crate) for_: Option<String>,
    /// `severity`.
    pub(crate) labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook_url`.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: &'a RuleFile,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    labels: BTreeMap<&'static str, &'static str>,
}

/// A YAML or serialization failure (not expected for these plain structures).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the rules as YAML: {0}")]
pub struct GenerateError(String);

/// The rule groups for `rules`.
pub fn rule_file(rules: &AlertRules, opts: &Options) -> RuleFile {
    let sel = if opts.selector.is_empty() { String::new() } else { format!("{{{}}}", opts.selector) };
    let mut groups = Vec::new();
    let thresholds: Vec<AlertingRule> = rules
        .thresholds
        .iter()
        .flat_map(|rule| {
            let ratio = paren(&rule.ratio.promql(&sel));
            rule.levels.iter().map(move |&(severity, level)| {
                let start = format!("{ratio} > {level}");
                let expr = with_hysteresis(
                    &start,
                    &ratio,
                    rules::clear_level(level, rule.hysteresis),
                    level,
                    &rule.name,
                    severity,
                );
                let (summary, description) = rule.ratio.texts(level);
                alerting(&rule.name, expr, Some(rule.for_), severity, summary, description, opts)
            })
        })
        .collect();
    if !thresholds.is_empty() {
        groups.push(Group { name: "leakwatch-utilization".to_owned(), rules: thresholds });
    }
    let p = &rules.prediction;
    let sel = sel.as_str();
    let predictions: Vec<AlertingRule> = p
        .resources
        .iter()
        .flat_map(|&resource| {
            p.levels.iter().map(move |level| {
                let for_ = p.for_of(level);
                let expr = prediction_expr(resource, level, for_, p.hysteresis, &opts.selector, sel);
                let (summary, description) = resource.texts(level.horizon, level.min_ratio, for_, p.window.retention);
                alerting(resource.alert(), expr, Some(for_), level.severity, summary, description, opts)
            })
        })
        .collect();
    if !predictions.is_empty() {
        groups.push(Group { name: "leakwatch-prediction".to_owned(), rules: predictions });
    }
    let mut target = Vec::new();
    if let Some(oom) = rules.oom_kill {
        let expr = format!(
            "sum without(detection) (increase({TARGET_OOM_KILLS_TOTAL}{sel}[{}])) > 0",
            prom_duration(oom.window)
        );
        let (summary, description) = rules::oom_texts();
        target.push(alerting(OOM_ALERT, expr, None, Severity::Critical, summary, description, opts));
    }
    if let Some(down) = rules.target_down {
        let expr = format!("{TARGET_UP}{sel} == 0");
        let (summary, description) = rules::target_down_texts();
        target.push(alerting(TARGET_DOWN_ALERT, expr, Some(down.for_), Severity::Warning, summary, description, opts));
    }
    if !target.is_empty() {
        groups.push(Group { name: "leakwatch-oom".to_owned(), rules: target });
    }
    groups.push(Group { name: "leakwatch-self".to_owned(), rules: self_rules(sel, opts) });
    RuleFile { groups }
}

/// leakwatch's own failure modes: its scrape fails, it is absent, a config reload failed.
fn self_rules(sel: &str, opts: &Options) -> Vec<AlertingRule> {
    let job = format!("{{{}}}", opts.job_selector);
    let minutes = |m: u64| Some(Duration::from_secs(m * 60));
    vec![
        alerting(
            DOWN_ALERT,
            format!("up{job} == 0"),
            minutes(5),
            Severity::Critical,
            "leakwatch on {{ $labels.instance }} cannot be scraped.".to_owned(),
            "Prometheus has failed to scrape leakwatch ({{ $labels.job }}, {{ $labels.instance }}) for 5 minutes: \
             the pod's memory is not watched and its alerts cannot fire."
                .to_owned(),
            opts,
        ),
        alerting(
            ABSENT_ALERT,
            format!("absent(up{job})"),
            minutes(10),
            Severity::Critical,
            "No leakwatch target is scraped.".to_owned(),
            format!(
                "Prometheus has had no `up` series for {} for 10 minutes: leakwatch is not deployed, or its \
                 PodMonitor/scrape config no longer finds it.",
                opts.job_selector.replace('"', "'")
            ),
            opts,
        ),
        alerting(
            RELOAD_ALERT,
            format!("{CONFIG_LAST_RELOAD_SUCCESSFUL}{sel} == 0"),
            minutes(5),
            Severity::Warning,
            "leakwatch on {{ $labels.instance }} failed to reload its configuration.".to_owned(),
            "The last configuration reload of leakwatch ({{ $labels.instance }}) failed; it keeps running with \
             the previous configuration. Its log says which key is wrong."
                .to_owned(),
            opts,
        ),
    ]
}

/// The rule file as YAML, with a header saying where it comes from.
pub fn rules_yaml(rules: &AlertRules, opts: &Options) -> Result<String, GenerateError> {
    let body = yaml_serde::to_string(&rule_file(rules, opts)).map_err(|e| GenerateError(e.to_string()))?;
    Ok(format!("{}{body}", header("prometheus-rules")))
}

/// The PrometheusRule manifest as YAML.
pub fn prometheus_rule_yaml(rules: &AlertRules, opts: &Options, name: &str) -> Result<String, GenerateError> {
    let file = rule_file(rules, opts);
    let manifest = Manifest {
        api_version: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: Metadata {
            name,
            labels: BTreeMap::from([
                ("app.kubernetes.io/name", "leakwatch"),
                ("app.kubernetes.io/component", "alerting"),
            ]),
        },
        spec: &file,
    };
    let body = yaml_serde::to_string(&manifest).map_err(|e| GenerateError(e.to_string()))?;
    Ok(format!("{}{body}", header("prometheus-rule-crd")))
}

fn header(command: &str) -> String {
    format!(
        "# Generated by `leakwatch generate {command}` from leakwatch's alert rules; do not edit.\n\
         # Regenerate (and re-bless the test) with: LEAKWATCH_BLESS=1 cargo test --test integration alerts_rules\n"
    )
}

/// A prediction tier in PromQL, on the detector's own figures: the current ratio (the alert's
/// value) AND the time until the peaks reach the limit under `horizon + for` AND the peaks
/// projected `for` ahead above `min_ratio` (`ttl − for < (1 − min_ratio) × limit / slope`);
/// while the alert is pending or firing, the time may be up to [`rules::TTL_HYSTERESIS`] times
/// as long and the floor `hysteresis` lower.
fn prediction_expr(
    resource: Resource,
    level: &PredictionLevel,
    for_: Duration,
    hysteresis: f64,
    matchers: &str,
    sel: &str,
) -> String {
    let ratio = paren(&resource.ratio_promql(sel));
    let (_, limit) = resource.promql(sel);
    let slope = resource.slope_promql(sel);
    let ttl_sel = if matchers.is_empty() {
        format!("{{resource=\"{}\"}}", resource.as_str())
    } else {
        format!("{{resource=\"{}\", {matchers}}}", resource.as_str())
    };
    let ttl = format!("{TREND_TIME_TO_LIMIT_SECONDS}{ttl_sel}");
    let lookahead = (level.horizon + for_).as_secs_f64();
    let for_s = for_.as_secs();
    let condition = |lookahead: f64, min: f64| {
        format!(
            "{ttl} < {lookahead}\nand ignoring(resource)\n{ttl} - {for_s}\n  < ignoring(resource) {} * {limit} / {slope}",
            rules::clear_level(1.0, min)
        )
    };
    let start = condition(lookahead, level.min_ratio);
    let stay = condition((lookahead * rules::TTL_HYSTERESIS).round(), rules::clear_level(level.min_ratio, hysteresis));
    format!(
        "{ratio}\nand ignoring(resource)\n(\n  {}\n  or\n  (\n    {}\n    and ignoring(resource, alertname, alertstate, severity)\n    ALERTS{{alertname=\"{}\", severity=\"{}\"}}\n  )\n)",
        indent(&start),
        indent(&indent(&stay)),
        resource.alert(),
        level.severity.as_str()
    )
}

/// `start`, or while the alert is already pending or firing, `ratio > clear`.
fn with_hysteresis(start: &str, ratio: &str, clear: f64, level: f64, alert: &str, severity: Severity) -> String {
    if clear >= level {
        return start.to_owned();
    }
    format!(
        "{start}\nor\n(\n  {ratio} > {clear}\n  and ignoring(alertname, alertstate, severity)\n  ALERTS{{alertname=\"{alert}\", severity=\"{}\"}}\n)",
        severity.as_str()
    )
}

fn alerting(
    alert: &str,
    expr: String,
    for_: Option<std::time::Duration>,
    severity: Severity,
    summary: String,
    description: String,
    opts: &Options,
) -> AlertingRule {
    AlertingRule {
        alert: alert.to_owned(),
        expr,
        for_: for_.filter(|d| !d.is_zero()).map(prom_duration),
        labels: BTreeMap::from([("severity".to_owned(), severity.as_str().to_owned())]),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            ("description".to_owned(), description),
            ("runbook_url".to_owned(), format!("{}#{}", opts.runbook_base, rules::runbook_anchor(alert))),
        ]),
    }
}

/// Parenthesizes an expression with operators.
fn paren(expr: &str) -> String {
    if expr.contains(' ') {
        format!("({expr})")
    } else {
        expr.to_owned()
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_is_one_rule_with_the_same_values_as_the_engine() {
        let rules = rules::defaults();
        let file = rule_file(&rules, &Options::default());
        let utilization = &file.groups[0].rules;
        let levels: usize = rules.thresholds.iter().map(|r| r.levels.len()).sum();
        assert_eq!(utilization.len(), levels);
        let warning = utilization
            .iter()
            .find(|r| r.alert == "LeakwatchMemoryUtilizationHigh" && r.labels["severity"] == "warning")
            .unwrap();
        assert!(warning.expr.starts_with("leakwatch_memory_utilization_ratio > 0.8\nor\n"), "{}", warning.expr);
        assert!(warning.expr.contains("> 0.75\n"), "{}", warning.expr);
        assert_eq!(warning.for_.as_deref(), Some("15m"));
        assert_eq!(
            warning.annotations["runbook_url"],
            "https://github.com/leakwatch/leakwatch/blob/main/docs/runbook.md#leakwatchmemoryutilizationhigh"
        );
        let prediction = &file.groups[1].rules[0];
        assert_eq!(prediction.for_.as_deref(), Some("1h"));
        assert!(prediction.expr.contains("leakwatch_trend_time_to_limit_seconds{resource=\"memory\"} < 7200\n"));
        assert!(prediction.expr.contains("< 9000\n"), "{}", prediction.expr);
        assert!(
            prediction.expr.contains(
                "- 3600\n    < ignoring(resource) 0.4 * leakwatch_memory_limit_bytes / \
                 leakwatch_trend_memory_slope_bytes_per_second"
            ),
            "{}",
            prediction.expr
        );
        let critical = &file.groups[1].rules[1];
        assert_eq!(critical.for_.as_deref(), Some("10m"));
        assert!(critical.expr.contains("} < 1800\n"), "{}", critical.expr);
        let oom = &file.groups[2].rules[0];
        assert_eq!(oom.for_, None);
        assert_eq!(oom.expr, "sum without(detection) (increase(leakwatch_target_oom_kills_total[15m])) > 0");
        let down = &file.groups[2].rules[1];
        assert_eq!((down.expr.as_str(), down.for_.as_deref()), ("leakwatch_target_up == 0", Some("2m")));
        let own: Vec<&str> = file.groups[3].rules.iter().map(|r| r.expr.as_str()).collect();
        assert_eq!(
            own,
            [
                "up{job=~\".*leakwatch.*\"} == 0",
                "absent(up{job=~\".*leakwatch.*\"})",
                "leakwatch_config_last_reload_successful == 0"
            ]
        );
    }

    #[test]
    fn the_selector_goes_on_every_metric() {
        let opts = Options { selector: "job=\"lw\"".into(), ..Options::default() };
        let metric = regex::Regex::new(r"leakwatch_[a-z_]+(\{[^}]*\})?").unwrap();
        let mut seen = 0;
        for group in rule_file(&rules::defaults(), &opts).groups {
            for rule in group.rules {
                for m in metric.captures_iter(&rule.expr) {
                    let matchers = m.get(1).map_or("", |g| g.as_str());
                    assert!(matchers.ends_with("job=\"lw\"}"), "{}", rule.expr);
                    seen += 1;
                }
            }
        }
        assert!(seen > 20);
    }
}
