//! Golden `/metrics` expositions, one per fixture tree (as node_exporter's e2e output): the
//! sampler over `tests/fixtures/NAME/{proc,sys}` watching pid 4242, two passes, then the
//! snapshot's render, compared with `tests/fixtures/golden/NAME.prom`. Values that depend on the
//! machine or the moment (leakwatch's own `process_*` figures, which always come from the real
//! `/proc`, pass durations and times, PSS read costs) read `<volatile>`; everything from the
//! tree is exact. Re-bless with `LEAKWATCH_BLESS=1 cargo test --test integration golden_metrics`.

use std::path::{Path, PathBuf};

use leakwatch::config::{DEFAULT_MAX_PROCESSES, DEFAULT_PSS_MAX_RSS, DEFAULT_PSS_TIME_BUDGET};
use leakwatch::info::StaticInfo;
use leakwatch::metric_names as n;
use leakwatch::metrics::render;
use leakwatch::roots::Roots;
use leakwatch::sample::target::TargetSpec;
use leakwatch::sample::{Sampler, SamplerSettings};

/// Families whose values depend on the machine or the moment, not on the fixture tree (and every
/// `process_*` family: leakwatch's own process).
const VOLATILE: [&str; 5] = [
    n::SAMPLE_DURATION_SECONDS,
    n::LAST_SAMPLE_TIMESTAMP_SECONDS,
    n::PSS_READ_DURATION_SECONDS,
    n::PSS_READ_SECONDS_TOTAL,
    n::CONN_SAMPLE_DURATION_SECONDS,
];

fn exposition(tree: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(tree);
    let mut sampler = Sampler::new(SamplerSettings {
        roots: Roots::new(dir.join("proc"), dir.join("sys")),
        spec: TargetSpec::Pid(4242),
        target_name: "fx".into(),
        max_processes: DEFAULT_MAX_PROCESSES,
        pss_max_rss: DEFAULT_PSS_MAX_RSS,
        pss_time_budget: DEFAULT_PSS_TIME_BUDGET,
        logs: Default::default(),
        conns: Default::default(),
        tasks: Default::default(),
        // Every figure read on every pass: the exposition does not depend on the tiers' timing.
        tiers: leakwatch::sample::tier::TierSettings { expensive_every: 1, ..Default::default() },
    });
    sampler.sample();
    let snapshot = sampler.sample();
    let info = StaticInfo { version: "golden".into(), kubernetes: Vec::new() };
    normalize(&render(&snapshot, &info))
}

/// The value of every sample of a volatile family replaced by `<volatile>`.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let name = &line[..line.find(['{', ' ']).unwrap_or(line.len())];
        let volatile = !line.starts_with('#') && (name.starts_with("process_") || VOLATILE.contains(&name));
        match line.rsplit_once(' ') {
            Some((series, _)) if volatile => out.push_str(&format!("{series} <volatile>")),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn golden(tree: &str) {
    let generated = exposition(tree);
    let path: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden").join(format!("{tree}.prom"));
    if std::env::var_os("LEAKWATCH_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the golden directory");
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if committed != generated {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
        panic!(
            "{} differs from the render of tests/fixtures/{tree} (first at line {line}); if the change is \
             intended, re-bless with `LEAKWATCH_BLESS=1 cargo test --test integration golden_metrics`.\n\
             generated:\n{generated}",
            path.display()
        );
    }
}

#[test]
fn cgroup_v1_unlimited() {
    golden("cgroup-v1-unlimited");
}

#[test]
fn cgroup_v2_limited() {
    golden("cgroup-v2-limited");
}

#[test]
fn cgroup_v2_proc_root() {
    golden("cgroup-v2-proc-root");
}

#[test]
fn cgroup_v2_unlimited() {
    golden("cgroup-v2-unlimited");
}

#[test]
fn conns() {
    golden("conns");
}

#[test]
fn volatile_values_are_masked_and_the_rest_kept() {
    let text = "# HELP process_resident_memory_bytes x\nprocess_resident_memory_bytes 123\nleakwatch_memory_utilization_ratio{target=\"fx\"} 0.5\n";
    assert_eq!(
        normalize(text),
        "# HELP process_resident_memory_bytes x\nprocess_resident_memory_bytes <volatile>\nleakwatch_memory_utilization_ratio{target=\"fx\"} 0.5\n"
    );
}
