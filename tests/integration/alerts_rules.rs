//! The generated alert files: the committed `alerts/*.yaml` must equal what
//! `leakwatch generate` prints for the built-in rules (re-bless with `LEAKWATCH_BLESS=1`), pass
//! `promtool check rules`, and the `promtool test rules` unit tests in `alerts/tests/` must pass.
//! A missing promtool fails these tests (see `promtool.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::promtool::promtool;
use crate::support::{binary, TempDir};
use leakwatch::metric_names as n;

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

/// GitHub's anchors of a Markdown file's headings: lower case, punctuation but `-` and `_`
/// dropped, spaces as `-` (headings inside code blocks are not headings).
pub(crate) fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').map(|l| l.trim_start_matches('#')) else { continue };
        if fenced || !heading.starts_with(' ') {
            continue;
        }
        let anchor: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        out.push(anchor);
    }
    out
}

#[test]
fn every_alert_has_a_runbook_entry_where_its_runbook_url_points() {
    let base = leakwatch::alert::rules::DEFAULT_RUNBOOK_BASE;
    assert!(base.ends_with("/blob/main/docs/runbook.md"), "the default runbook is docs/runbook.md: {base}");
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).expect("docs/runbook.md");
    let anchors = anchors(&runbook);
    let rules = std::fs::read_to_string(repo().join("alerts/leakwatch-rules.yaml")).unwrap();
    let mut alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    alerts.dedup();
    assert!(alerts.len() >= 9, "{alerts:?}");
    for alert in &alerts {
        assert!(runbook.contains(&format!("\n## {alert}\n")), "docs/runbook.md has no `## {alert}`");
    }
    // Every runbook_url of every generated file, the chart's copy included, lands on a heading.
    let mut urls = 0;
    for file in [
        "alerts/leakwatch-rules.yaml",
        "alerts/leakwatch-prometheusrule.yaml",
        "helm/leakwatch/files/leakwatch-rules.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for url in text.lines().filter_map(|l| l.trim().strip_prefix("runbook_url: ")) {
            let url = url.trim_matches(|c| c == '"' || c == '\'');
            let (page, anchor) = url.split_once('#').unwrap_or_else(|| panic!("{file}: {url} has no anchor"));
            assert_eq!(page, base, "{file}: {url} points outside the runbook");
            assert!(anchors.iter().any(|a| a == anchor), "{file}: {url}: docs/runbook.md has no heading #{anchor}");
            urls += 1;
        }
    }
    assert!(urls >= 3 * alerts.len(), "only {urls} runbook_urls found in the generated files");
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

#[test]
fn generate_writes_into_directories_it_creates_and_renders_completions_and_the_man_page() {
    let dir = TempDir::new("generate-out");
    let boards = dir.path().join("a/b");
    leakwatch(&["generate", "dashboards", "-o", boards.to_str().unwrap()]);
    let files = std::fs::read_dir(&boards).expect("the directory is created").count();
    assert_eq!(files, 3, "one file per dashboard");
    let rules = format!("{}/", dir.path().join("rules").display());
    leakwatch(&["generate", "prometheus-rules", "-o", &rules]);
    assert!(dir.path().join("rules/leakwatch-rules.yaml").is_file(), "a directory gets the usual name");
    leakwatch(&["generate", "man", "-o", dir.path().join("man/man1/").to_str().unwrap()]);
    let man = std::fs::read_to_string(dir.path().join("man/man1/leakwatch.1")).expect("the man page");
    let bash = leakwatch(&["generate", "completions", "bash"]);
    for sub in ["serve", "run", "logs", "status", "generate"] {
        assert!(man.contains(&format!("leakwatch {sub}")), "the man page lacks {sub}");
        assert!(bash.contains(sub), "the bash completions lack {sub}");
    }
}

/// The value of each exposition line whose series starts with one of `families`, by series.
fn exported(body: &str, families: &[&str]) -> Vec<(String, f64)> {
    body.lines()
        .filter(|line| families.iter().any(|f| line.starts_with(&format!("{f}{{"))))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The generated prediction rules, evaluated by promtool on the figures leakwatch exports, fire
/// and resolve when the engine's own alerts do: a memory leak of 25 %/h under a 10 % / 7 min
/// sawtooth for 160 min, then flat (its peaks stop just short of the limit). The engine judges
/// every 15 s sample; the rules see its `/metrics` once a minute (a series that leaves it is
/// marked stale, as a scrape does), so minutes within 3 of an engine transition are not compared.
#[test]
fn the_generated_prediction_rules_fire_and_resolve_when_the_engine_does() {
    use leakwatch::alert::promgen::{rule_file, Options};
    use leakwatch::alert::{rules::Resource, AlertState as State, Engine};
    use leakwatch::snapshot::{Basis, Snapshot, Utilization};
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    let mut rules = leakwatch::alert::rules::defaults();
    rules.thresholds.clear();
    rules.oom_kill = None;
    rules.target_down = None;
    rules.prediction.resources = vec![Resource::Memory];
    let mut file = rule_file(&rules, &Options::default());
    file.groups.retain(|g| g.name == "leakwatch-prediction");
    for rule in file.groups.iter_mut().flat_map(|g| g.rules.iter_mut()) {
        // The annotations quote the value; the states are what is compared.
        rule.annotations.clear();
    }

    let limit = 1024.0 * 1024.0 * 1024.0;
    let used = |t: f64| {
        let grown = 0.25 * t.min(160.0 * 60.0) / 3600.0;
        let saw = 0.1 * (t / 420.0).fract();
        (0.2 + grown + saw + 0.004 * (t / 37.0).sin()) * limit
    };
    let families = [
        n::MEMORY_UTILIZATION_RATIO,
        n::MEMORY_LIMIT_BYTES,
        n::TREND_TIME_TO_LIMIT_SECONDS,
        n::TREND_MEMORY_SLOPE_BYTES_PER_SECOND,
    ];
    let minutes = 300;
    let mut engine = Engine::new(rules);
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    // Per minute: the severities firing in the engine, and the alert's labels.
    let mut firing: Vec<Vec<String>> = Vec::new();
    let mut labels = String::new();
    let info = leakwatch::info::StaticInfo::default();
    for i in 0..=minutes * 4 {
        let t = i as f64 * 15.0;
        let mut s = Snapshot::empty("app");
        s.seq = i as u64 + 1;
        s.taken_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_secs_f64(t);
        s.target.utilization =
            Some(Utilization { basis: Basis::CgroupWorkingSet, used: used(t) as u64, limit: limit as u64 });
        let state: State = engine.evaluate(&s);
        if i % 4 != 0 {
            continue;
        }
        let minute = i / 4;
        let body = leakwatch::metrics::Scrape {
            alerts: Some(&state),
            detail: false,
            ..leakwatch::metrics::Scrape::new(&s, &info)
        }
        .render();
        for (name, value) in exported(&body, &families) {
            if let Some(rest) = name.strip_prefix(n::MEMORY_UTILIZATION_RATIO) {
                labels = rest.to_owned();
            }
            let values = series.entry(name).or_default();
            values.resize(minute, None);
            values.push(Some(value));
        }
        let mut now: Vec<String> = state
            .alerts
            .iter()
            .filter(|a| a.alert == Resource::Memory.alert() && a.state == leakwatch::alert::engine::State::Firing)
            .map(|a| a.severity.as_str().to_owned())
            .collect();
        now.sort();
        firing.push(now);
    }
    let changes: Vec<usize> = (1..firing.len()).filter(|&m| firing[m] != firing[m - 1]).collect();
    let timeline: Vec<(usize, &Vec<String>)> = changes.iter().map(|&m| (m, &firing[m])).collect();
    assert!(firing.iter().any(|f| f.len() == 2), "the engine never fired both tiers: {timeline:?}");
    assert!(firing.last().is_some_and(|f| f.is_empty()), "the engine's alerts did not resolve: {timeline:?}");

    let dir = TempDir::new("engine-rules");
    std::fs::write(dir.path().join("rules.yaml"), yaml_serde::to_string(&file).unwrap()).unwrap();
    let mut tests = String::from(
        "rule_files:\n  - rules.yaml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for (name, values) in &series {
        let mut values = values.clone();
        values.resize(minutes + 1, None);
        // A series that leaves /metrics is marked stale at the next scrape, as Prometheus does.
        let values: Vec<String> = (0..values.len())
            .map(|m| match (values[m], m.checked_sub(1).and_then(|p| values[p])) {
                (Some(v), _) => v.to_string(),
                (None, Some(_)) => "stale".to_owned(),
                (None, None) => "_".to_owned(),
            })
            .collect();
        tests.push_str(&format!("      - series: '{name}'\n        values: '{}'\n", values.join(" ")));
    }
    tests.push_str("    alert_rule_test:\n");
    let labels = labels.trim_matches(|c| c == '{' || c == '}').replace('=', ": ");
    let mut compared = 0;
    for minute in (5..=minutes).step_by(5) {
        if changes.iter().any(|&c| c.abs_diff(minute) <= 3) {
            continue;
        }
        compared += 1;
        tests.push_str(&format!(
            "      - eval_time: {minute}m\n        alertname: {}\n        exp_alerts:",
            Resource::Memory.alert()
        ));
        if firing[minute].is_empty() {
            tests.push_str(" []\n");
        }
        for severity in &firing[minute] {
            tests.push_str(&format!("\n          - exp_labels: {{ severity: {severity}, {labels} }}"));
        }
        if !firing[minute].is_empty() {
            tests.push('\n');
        }
    }
    assert!(compared > 30, "too few minutes compared: {compared}");
    std::fs::write(dir.path().join("engine.test.yaml"), &tests).unwrap();
    let out = Command::new(promtool())
        .current_dir(dir.path())
        .args(["test", "rules", "engine.test.yaml"])
        .output()
        .expect("run promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && !report.contains("FAILED"),
        "promtool test rules (the engine's firing tiers from minute: {timeline:?}):\n{report}"
    );
}
