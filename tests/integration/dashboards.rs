//! The committed dashboards are the generator's output, and every metric their panels query is
//! one leakwatch exports. Re-bless with `LEAKWATCH_BLESS=1` (or `leakwatch generate dashboards`).

use std::path::Path;

use crate::promtool::{families, full_snapshot, render_with};
use leakwatch::metric_names as n;

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

#[test]
fn the_committed_dashboards_are_what_the_generator_writes() {
    let bless = std::env::var("LEAKWATCH_BLESS").is_ok_and(|v| v == "1");
    let dashboards = leakwatch::dashboard::all();
    for (file, d) in &dashboards {
        let text = leakwatch::dashboard::file_text(d);
        let path = dir().join(file);
        if bless {
            std::fs::write(&path, &text).expect("write a dashboard");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} differs from the generator's output: run `leakwatch generate dashboards` (or LEAKWATCH_BLESS=1 cargo test dashboards)",
            path.display()
        );
    }
    let extra: Vec<String> = std::fs::read_dir(dir())
        .expect("dashboards/")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| !dashboards.iter().any(|(f, _)| f == name))
        .collect();
    assert!(extra.is_empty(), "dashboards/ holds files the generator does not write: {extra:?}");
}

#[test]
fn every_metric_a_panel_queries_is_exported_by_a_default_scrape() {
    // Without `?detail=1`: the dashboards work on what Prometheus scrapes by default.
    let snapshot = full_snapshot();
    let body = render_with(&snapshot, &crate::promtool::alert_state_for(&snapshot), false);
    let exported = families(&body);
    let name = regex::Regex::new(r"\b(leakwatch_[a-z0-9_]+|process_[a-z0-9_]+)\b").expect("valid regex");
    // Recorded series (`level:metric:operations`) are checked against the recording rules below.
    let recorded = regex::Regex::new(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+").expect("valid regex");
    let mut checked = 0;
    for (file, d) in leakwatch::dashboard::all() {
        for expr in d.exprs().chain(d.annotation_exprs()) {
            let raw = recorded.replace_all(expr, "");
            for m in name.find_iter(&raw) {
                assert!(
                    exported.iter().any(|f| f == m.as_str()),
                    "{file}: `{}` in `{expr}` is not exported",
                    m.as_str()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} metric references found");
}

/// Every committed dashboard, parsed.
fn committed() -> Vec<(String, serde_json::Value)> {
    leakwatch::dashboard::all()
        .into_iter()
        .map(|(file, _)| {
            let text = std::fs::read_to_string(dir().join(file)).expect("a committed dashboard");
            (file.to_owned(), serde_json::from_str(&text).expect("dashboard JSON"))
        })
        .collect()
}

/// Every panel that is not a row, collapsed rows' panels included.
fn panels(d: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn exprs(p: &serde_json::Value) -> Vec<String> {
    p["targets"].as_array().expect("targets").iter().map(|t| t["expr"].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn table_panels_are_instant_queries_in_table_format_and_hide_the_time_column() {
    let mut tables = 0;
    for (file, d) in committed() {
        for p in panels(&d).iter().filter(|p| p["type"] == "table") {
            tables += 1;
            let title = &p["title"];
            for t in p["targets"].as_array().expect("targets") {
                assert_eq!(t["format"], "table", "{file}: {title}: one row per series, not a frame picker");
                assert_eq!(t["instant"], true, "{file}: {title}");
                assert_eq!(t["range"], false, "{file}: {title}");
            }
            let organize = p["transformations"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["id"] == "organize"))
                .unwrap_or_else(|| panic!("{file}: {title}: no organize transformation"));
            assert_eq!(organize["options"]["excludeByName"]["Time"], true, "{file}: {title}");
        }
    }
    assert!(tables >= 4, "only {tables} table panels");
}

#[test]
fn alert_tables_list_only_firing_and_pending_alerts() {
    let mut seen = 0;
    for (file, d) in committed() {
        for p in panels(&d).iter().filter(|p| p["type"] == "table") {
            for e in exprs(p).iter().filter(|e| e.contains(n::ALERT_ACTIVE)) {
                seen += 1;
                // `== 1` on both: a version that exports inactive alerts as 0 lists none of them.
                assert!(e.contains("leakwatch_alert_active{") && e.contains("} == 1"), "{file}: {e}");
                assert!(e.contains("leakwatch_alert_pending{"), "{file}: pending alerts too: {e}");
                assert!(e.contains(r#""state", "firing""#) && e.contains(r#""state", "pending""#), "{file}: {e}");
            }
        }
    }
    assert!(seen >= 3, "{seen} alert tables");
}

#[test]
fn every_ratio_panel_is_a_percentage_from_0_to_1() {
    let mut ratios = 0;
    for (file, d) in committed() {
        for p in panels(&d) {
            let title = &p["title"];
            let defaults = &p["fieldConfig"]["defaults"];
            let ratio = exprs(&p).iter().any(|e| {
                (e.contains("_ratio") || e.contains("/ leakwatch_log_buffer_max_bytes"))
                    && !e.starts_with("count(")
                    && !e.starts_with("sum(namespace:leakwatch_memory_utilization_above_warning")
            });
            if ratio || defaults["unit"] == "percentunit" {
                ratios += 1;
                assert_eq!(defaults["unit"], "percentunit", "{file}: {title}");
                assert_eq!(defaults["min"].as_f64(), Some(0.0), "{file}: {title}: min 0");
                assert_eq!(defaults["max"].as_f64(), Some(1.0), "{file}: {title}: max 1");
            }
        }
    }
    assert!(ratios >= 15, "only {ratios} ratio panels");
}

#[test]
fn time_series_colour_each_series_from_the_palette() {
    for (file, d) in committed() {
        for p in panels(&d).iter().filter(|p| p["type"] == "timeseries") {
            let title = &p["title"];
            let color = &p["fieldConfig"]["defaults"]["color"]["mode"];
            assert_eq!(color, "palette-classic", "{file}: {title}: every series would get the same colour");
            for o in p["fieldConfig"]["overrides"].as_array().expect("overrides") {
                assert!(!o.to_string().contains("\"fixedColor\""), "{file}: {title}: a fixed colour override: {o}");
            }
        }
    }
}

#[test]
fn leakwatch_memory_selects_leakwatch_own_series() {
    let (_, overview) = committed().into_iter().find(|(f, _)| f == "leakwatch-overview.json").expect("overview");
    let panel = panels(&overview).into_iter().find(|p| p["title"] == "leakwatch memory").expect("the panel");
    let [expr] = exprs(&panel).try_into().expect("one query");
    // A bare process_resident_memory_bytes also matches an application's client library in the pod.
    assert!(expr.contains(" and on (job, instance) leakwatch_build_info{"), "{expr}");
}

#[test]
fn every_dashboard_has_cluster_and_job_variables_and_scopes_every_query_by_them() {
    for (file, d) in committed() {
        let vars = d["templating"]["list"].as_array().expect("variables");
        let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        assert!(names.starts_with(&["datasource", "cluster", "job", "namespace"]), "{file}: {names:?}");
        let cluster = &vars[1];
        // As kubernetes-mixin without showMultiCluster: hidden, one value (empty without the label).
        assert_eq!(cluster["hide"], 2, "{file}");
        assert_eq!(cluster["includeAll"], false, "{file}");
        assert_eq!(vars[2]["includeAll"], true, "{file}");
        for p in panels(&d) {
            for e in exprs(&p) {
                assert!(e.contains(r#"cluster=~"$cluster", job=~"$job""#), "{file}: {}: {e}", p["title"]);
            }
        }
        for a in d["annotations"]["list"].as_array().expect("annotations") {
            let e = a["expr"].as_str().unwrap_or("");
            assert!(e.contains(r#"cluster=~"$cluster", job=~"$job""#), "{file}: {e}");
        }
    }
}

#[test]
fn the_fleet_view_links_into_the_target_view_with_the_variables() {
    let (_, fleet) = committed().into_iter().find(|(f, _)| f == "leakwatch-fleet.json").expect("fleet");
    let mut linked = 0;
    for p in panels(&fleet).iter().filter(|p| p["type"] == "table" || p["type"] == "bargauge") {
        for l in p["fieldConfig"]["defaults"]["links"].as_array().expect("links") {
            let url = l["url"].as_str().expect("a url");
            assert!(url.starts_with("/d/leakwatch-target/"), "{url}");
            for carried in
                ["${datasource:queryparam}", "${cluster:queryparam}", "${job:queryparam}", "${__url_time_range}"]
            {
                assert!(url.contains(carried), "{}: {url} lacks {carried}", p["title"]);
            }
            let fields = if p["type"] == "table" { "__data.fields" } else { "__field.labels" };
            for var in ["namespace", "pod", "target"] {
                assert!(url.contains(&format!("var-{var}=${{{fields}.{var}}}")), "{}: {url}", p["title"]);
            }
            linked += 1;
        }
    }
    assert!(linked >= 5, "{linked} drill-down links");
    for (file, d) in committed() {
        let link = &d["links"][0];
        assert!(link["type"] == "dashboards" && link["includeVars"] == true && link["keepTime"] == true, "{file}");
    }
}

#[test]
fn every_dashboard_marks_oom_kills_restarts_and_alerts() {
    for (file, d) in committed() {
        let list = d["annotations"]["list"].as_array().expect("annotations");
        let by_name = |name: &str| {
            list.iter()
                .find(|a| a["name"] == name)
                .and_then(|a| a["expr"].as_str())
                .unwrap_or_else(|| panic!("{file}: no {name} annotation"))
                .to_owned()
        };
        assert!(by_name("OOM kills").contains(n::TARGET_OOM_KILLS_TOTAL), "{file}");
        assert!(by_name("Target restarts").contains(n::PROCESS_START_TIME_SECONDS), "{file}");
        assert!(by_name("Alerts firing").contains(n::ALERT_ACTIVE), "{file}");
    }
}

#[test]
fn the_fleet_view_uses_the_recording_rules_and_they_exist() {
    let recording =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/leakwatch-recording-rules.yaml"))
            .expect("the recording rules");
    let (_, fleet) = committed().into_iter().find(|(f, _)| f == "leakwatch-fleet.json").expect("fleet");
    let name = regex::Regex::new(r"\bnamespace:leakwatch_[a-z0-9_]+:[a-z0-9_]+").expect("valid regex");
    let mut used = 0;
    for p in panels(&fleet) {
        for e in exprs(&p) {
            for m in name.find_iter(&e) {
                assert!(recording.contains(&format!("- record: {}\n", m.as_str())), "{} is not recorded", m.as_str());
                used += 1;
            }
        }
    }
    assert!(used >= 8, "the fleet view queries {used} recorded series");
    // The recorded series keep the labels the dashboards filter on.
    for line in recording.lines().filter(|l| l.trim_start().starts_with("expr:")) {
        assert!(line.contains("by (cluster, job, namespace"), "{line}");
    }
}

#[test]
fn the_overview_groups_its_panels_in_rows_with_the_less_used_collapsed() {
    let (_, overview) = committed().into_iter().find(|(f, _)| f == "leakwatch-overview.json").expect("overview");
    let top = overview["panels"].as_array().expect("panels");
    let rows: Vec<&serde_json::Value> = top.iter().filter(|p| p["type"] == "row").collect();
    let collapsed: Vec<&serde_json::Value> = rows.iter().copied().filter(|r| r["collapsed"] == true).collect();
    assert!(rows.len() >= 5 && collapsed.len() >= 3, "{} rows, {} collapsed", rows.len(), collapsed.len());
    for r in &collapsed {
        assert!(!r["panels"].as_array().expect("row panels").is_empty(), "a collapsed row holds its panels");
    }
    let open = top.iter().filter(|p| p["type"] != "row").count();
    assert!(open <= 12, "{open} panels open at first (of {})", panels(&overview).len());
    assert_eq!(top[0]["type"], "row", "every panel sits in a row");
}
