//! The committed dashboards are the generator's output, and every metric their panels query is
//! one leakwatch exports. Re-bless with `LEAKWATCH_BLESS=1` (or `leakwatch generate dashboards`).

use std::path::Path;

use crate::promtool::{families, full_render};

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
fn every_metric_a_panel_queries_is_exported() {
    let body = full_render();
    let exported = families(&body);
    let name = regex::Regex::new(r"\b(leakwatch_[a-z0-9_]+|process_[a-z0-9_]+)\b").expect("valid regex");
    let mut checked = 0;
    for (file, d) in leakwatch::dashboard::all() {
        for expr in d.exprs().chain(d.annotation_exprs()) {
            for m in name.find_iter(expr) {
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
