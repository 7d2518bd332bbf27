//! The generated alert files: the committed `alerts/*.yaml` must equal what
//! `leakwatch generate` prints for the built-in rules (re-bless with `LEAKWATCH_BLESS=1`), pass
//! `promtool check rules`, and the `promtool test rules` unit tests in `alerts/tests/` must pass.
//! A missing promtool fails these tests (see `promtool.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::promtool::promtool;
use crate::support::{binary, TempDir};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `leakwatch ARGS` and returns its stdout; fails on a non-zero exit.
fn leakwatch(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).env_remove("LEAKWATCH_CONFIG").output().expect("run leakwatch");
    assert!(out.status.success(), "leakwatch {args:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Compares a committed file with the generator's output, or rewrites it with `LEAKWATCH_BLESS=1`.
fn golden(file: &str, generated: &str) {
    let path = repo().join(file);
    if std::env::var_os("LEAKWATCH_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if committed != generated {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        panic!(
            "{file} differs from the generator's output (first at line {line}); regenerate with \
             `LEAKWATCH_BLESS=1 cargo test --test integration alerts_rules` and commit it"
        );
    }
}

#[test]
fn the_committed_rule_file_is_what_the_generator_prints() {
    golden("alerts/leakwatch-rules.yaml", &leakwatch(&["generate", "prometheus-rules"]));
}

#[test]
fn the_committed_prometheusrule_is_what_the_generator_prints() {
    golden("alerts/leakwatch-prometheusrule.yaml", &leakwatch(&["generate", "prometheus-rule-crd"]));
}

fn check_rules(path: &Path) {
    let promtool = promtool();
    let out = Command::new(&promtool).args(["check", "rules"]).arg(path).output().expect("run promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.contains("SUCCESS"), "promtool check rules {}:\n{report}", path.display());
}

#[test]
fn promtool_check_rules_passes_on_both_generated_files() {
    let dir = TempDir::new("rules");
    let rules = dir.path().join("rules.yaml");
    leakwatch(&["generate", "prometheus-rules", "--selector", "job=\"leakwatch\"", "-o", rules.to_str().unwrap()]);
    check_rules(&rules);
    check_rules(&repo().join("alerts/leakwatch-rules.yaml"));
    check_rules(&repo().join("alerts/leakwatch-recording-rules.yaml"));
    // The manifest's `spec` is a rule file: cut it out and check it the same way.
    let manifest = leakwatch(&["generate", "prometheus-rule-crd", "--name", "app-leakwatch"]);
    assert!(manifest.contains("kind: PrometheusRule") && manifest.contains("name: app-leakwatch"), "{manifest}");
    let spec: String = manifest
        .lines()
        .skip_while(|l| *l != "spec:")
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    assert!(spec.starts_with("groups:"), "{spec}");
    let spec_file = dir.path().join("spec.yaml");
    std::fs::write(&spec_file, &spec).unwrap();
    check_rules(&spec_file);
    assert!(manifest.ends_with(&spec.lines().map(|l| format!("  {l}\n")).collect::<String>()));
}

#[test]
fn promtool_unit_tests_prove_each_alert_fires_and_resolves() {
    let tests: Vec<PathBuf> = std::fs::read_dir(repo().join("alerts/tests"))
        .expect("alerts/tests")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    assert!(tests.len() >= 2, "{tests:?}");
    // Every alert of the rule file has a unit test.
    let rules = std::fs::read_to_string(repo().join("alerts/leakwatch-rules.yaml")).unwrap();
    let all_tests: String = tests.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(all_tests.contains(&format!("alertname: {alert}\n")), "no promtool test for {alert}");
    }
    let out = Command::new(promtool()).args(["test", "rules"]).args(&tests).output().expect("run promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !report.contains("FAILED"), "promtool test rules:\n{report}");
}

#[test]
fn every_alert_has_a_runbook_entry_where_its_runbook_url_points() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let rules = std::fs::read_to_string(repo().join("alerts/leakwatch-rules.yaml")).unwrap();
    let runbook = readme.split("\n## Runbook\n").nth(1).expect("a Runbook section in README.md");
    let mut alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    alerts.dedup();
    assert!(alerts.len() >= 9, "{alerts:?}");
    for alert in alerts {
        assert!(runbook.contains(&format!("\n### {alert}\n")), "README runbook has no `### {alert}`");
        let url =
            format!("runbook_url: {}#{}\n", leakwatch::alert::rules::DEFAULT_RUNBOOK_BASE, alert.to_ascii_lowercase());
        assert!(rules.contains(&url), "{alert}: no {url:?}");
    }
}

#[test]
fn generate_uses_the_rules_of_the_config_file_and_rejects_bad_ones() {
    let dir = TempDir::new("rules-config");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(
        &config,
        "alerts:\n  rules:\n    - ratio: memory_utilization\n      name: AppMemoryHigh\n      levels: {warning: 0.75}\n      for: 5m\n",
    )
    .unwrap();
    let text = leakwatch(&["--config", config.to_str().unwrap(), "generate", "prometheus-rules"]);
    assert!(text.contains("- alert: AppMemoryHigh\n") && text.contains("leakwatch_memory_utilization_ratio > 0.75\n"));
    assert!(text.contains("for: 5m") && !text.contains("LeakwatchFdUtilizationHigh"), "{text}");

    std::fs::write(
        &config,
        "alerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {info: 0.9, warning: 0.8}\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["--config", config.to_str().unwrap(), "generate", "prometheus-rules"])
        .output()
        .expect("run leakwatch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("alerts.rules[0].levels: must increase with severity"), "{stderr}");
}

/// A series' value at t seconds.
type Shape = fn(f64) -> f64;

/// When `predict_linear(x[1h], 7200) > limit` with `for: 1h`, evaluated every minute, first
/// fires on samples `(t, value)` — the least-squares reimplementation the leak corpus
/// (`src/alert/leak_corpus.rs`) compares the detector with.
fn baseline_fires(samples: &[(f64, f64)], limit: f64) -> Option<f64> {
    let mut since = None;
    let end = samples.last()?.0;
    let mut t = 0.0;
    while t <= end {
        let window: Vec<(f64, f64)> = samples.iter().copied().filter(|&(s, _)| s >= t - 3600.0 && s <= t).collect();
        let holds =
            leakwatch::alert::leak::least_squares(&window, t).is_some_and(|(slope, at)| at + slope * 7200.0 > limit);
        since = if holds { since.or(Some(t)) } else { None };
        if since.is_some_and(|s| t - s >= 3600.0) {
            return Some(t);
        }
        t += 60.0;
    }
    None
}

#[test]
fn the_corpus_baseline_fires_when_promtool_does() {
    let dir = TempDir::new("baseline");
    std::fs::write(
        dir.path().join("rules.yaml"),
        "groups:\n- name: baseline\n  rules:\n  - alert: Baseline\n    expr: predict_linear(x[1h], 7200) > 1000\n    for: 1h\n",
    )
    .unwrap();
    // Three series at 15 s for 4 h: a noisy leak, a leak under a 7 min sawtooth, a late start.
    let series: [(&str, Shape); 3] = [
        ("leak", |t| 300.0 + 0.05 * t + 8.0 * (t / 97.0).sin()),
        ("sawtooth", |t| 300.0 + 0.04 * t + 120.0 * (t / 420.0).fract()),
        ("late", |t| 350.0 + 0.09 * (t - 5400.0).max(0.0) + 5.0 * (t / 61.0).cos()),
    ];
    let mut tests = String::from("rule_files:\n  - rules.yaml\nevaluation_interval: 1m\ntests:\n");
    for (name, f) in &series {
        let samples: Vec<(f64, f64)> =
            (0..=960).map(|i| (i as f64 * 15.0, (f(i as f64 * 15.0) * 1000.0).round() / 1000.0)).collect();
        let fires = baseline_fires(&samples, 1000.0).expect("the baseline fires");
        let minutes = (fires / 60.0) as u64;
        let values: Vec<String> = samples.iter().map(|s| s.1.to_string()).collect();
        tests.push_str(&format!(
            "  - interval: 15s\n    input_series:\n      - series: 'x{{s=\"{name}\"}}'\n        values: '{}'\n    alert_rule_test:\n      - eval_time: {}m\n        alertname: Baseline\n        exp_alerts: []\n      - eval_time: {minutes}m\n        alertname: Baseline\n        exp_alerts:\n          - exp_labels: {{ s: {name} }}\n",
            values.join(" "),
            minutes - 1
        ));
    }
    std::fs::write(dir.path().join("baseline.test.yaml"), tests).unwrap();
    let out = Command::new(promtool())
        .current_dir(dir.path())
        .args(["test", "rules", "baseline.test.yaml"])
        .output()
        .expect("run promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !report.contains("FAILED"), "promtool test rules:\n{report}");
}
