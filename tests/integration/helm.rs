//! The Helm chart, checked with the real Helm engine: `tests/helm/check_chart.py` (lint, a render
//! of every `ci/*-values.yaml` scenario validated against Kubernetes schemas, the restricted Pod
//! Security Standard, the values schema, a parent chart using the sidecar template, and the
//! chart's copies of `alerts/` and `dashboards/`), run with the Python that `tests/run.sh`
//! prepares (`LEAKWATCH_HELM_PYTHON`). A missing Python environment fails the test: it never skips.

use std::path::Path;
use std::process::Command;

#[test]
fn the_chart_lints_renders_and_validates_with_the_real_helm_engine() {
    let python = std::env::var_os("LEAKWATCH_HELM_PYTHON").filter(|p| !p.is_empty()).unwrap_or_else(|| {
        panic!(
            "LEAKWATCH_HELM_PYTHON is not set: run `bash tests/run.sh`, which prepares .cache/venv with \
             tests/helm/requirements.txt"
        )
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm/check_chart.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("LEAKWATCH_BIN", crate::support::binary())
        .output()
        .expect("run tests/helm/check_chart.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the chart checks failed:\n{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
