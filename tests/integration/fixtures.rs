//! Fixture trees (`tests/fixtures/NAME/{proc,sys}`, passed as `--procfs-root`/`--sysfs-root`)
//! for what this machine cannot produce: cgroup v2 files, unlimited v1 and v2 cgroups, a sidecar's
//! view of another container, and malformed or missing kernel files.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Leakwatch, Metrics};
use leakwatch::metric_names as n;

const MIB: f64 = 1048576.0;
/// `MemTotal` in every fixture's `proc/meminfo`.
const MEM_TOTAL: f64 = 16_384_000.0 * 1024.0;
const APP_CGROUP: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2f0e_5d3a_4c1b_9a7e_0c2b8d4e7a11.slice/cri-containerd-3b1e5f0a9c7d2e4b6a8f0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f.scope";

fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    assert!(dir.join("proc").is_dir(), "fixture {} exists", dir.display());
    dir
}

/// leakwatch over the fixture tree `name`, watching `pid` as target `fx`.
fn start(name: &str, pid: u32) -> Leakwatch {
    let dir = fixture(name);
    let (proc, sys) = (dir.join("proc").display().to_string(), dir.join("sys").display().to_string());
    let pid = pid.to_string();
    Leakwatch::start(&["--procfs-root", &proc, "--sysfs-root", &sys, "--pid", &pid, "--target-name", "fx"])
}

/// The scrape after at least `passes` sampling passes.
fn after_passes(lw: &Leakwatch, passes: f64) -> Metrics {
    lw.wait_for(Duration::from_secs(10), "sampling passes", |m| {
        m.get(n::SAMPLES_TOTAL, &[]).is_some_and(|n| n >= passes)
    })
}

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(name, labels).unwrap_or_else(|| panic!("{name}{labels:?} is missing from the scrape:\n{}", m.text))
}

const FX: [(&str, &str); 1] = [("target", "fx")];

fn assert_no_sample_errors(m: &Metrics) {
    let errors = m.all(n::SAMPLE_ERRORS_TOTAL, &[]);
    assert!(errors.is_empty(), "a complete fixture reads without errors, got {errors:?}");
}

fn assert_approx(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() <= expected.abs() * 1e-9, "{what}: {actual}, expected {expected}");
}

#[test]
fn cgroup_v2_with_a_limit_reports_every_memory_file() {
    let lw = start("cgroup-v2-limited", 4242);
    let m = after_passes(&lw, 2.0);
    let g = |name: &str| value(&m, name, &FX);

    let info = [("target", "fx"), ("version", "v2"), ("via", "direct"), ("path", APP_CGROUP)];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "{}", m.text);
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#), 200.0 * MIB, "memory.current");
    assert_eq!(g(n::CGROUP_MEMORY_LIMIT_BYTES), 256.0 * MIB, "memory.max");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="inactive_file"}"#), 34.0 * MIB, "memory.stat inactive_file");
    assert_eq!(
        g(r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#),
        (200.0 - 34.0) * MIB,
        "usage - inactive_file"
    );
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="rss"}"#), 150.0 * MIB, "memory.stat anon");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="cache"}"#), 42.0 * MIB, "memory.stat file");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="shmem"}"#), MIB, "memory.stat shmem");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="swap"}"#), 2.0 * MIB, "memory.swap.current");
    assert_eq!(g(n::CGROUP_MEMORY_OOM_KILLS_TOTAL), 3.0, "memory.events oom_kill (not oom)");
    assert_eq!(g(n::CGROUP_MEMORY_LIMIT_HITS_TOTAL), 17.0, "memory.events max");

    assert_approx(g(r#"leakwatch_cgroup_memory_pressure_seconds_total{kind="some"}"#), 2.345678, "PSI some total");
    assert_approx(g(r#"leakwatch_cgroup_memory_pressure_seconds_total{kind="full"}"#), 1.234567, "PSI full total");
    let psi = |kind, window| value(&m, n::CGROUP_MEMORY_PRESSURE_RATIO, &[("kind", kind), ("window", window)]);
    assert_approx(psi("some", "10s"), 0.0125, "some avg10");
    assert_approx(psi("full", "300s"), 0.0005, "full avg300");

    let basis = [("target", "fx"), ("basis", "cgroup_working_set")];
    assert_approx(value(&m, n::MEMORY_UTILIZATION_RATIO, &basis), 166.0 / 256.0, "working set / limit");
    assert_eq!(value(&m, n::MEMORY_USED_BYTES, &basis), 166.0 * MIB);
    assert_eq!(value(&m, n::MEMORY_LIMIT_BYTES, &basis), 256.0 * MIB);

    // The process files of the same tree.
    assert_eq!(g(r#"leakwatch_process_memory_bytes{kind="resident"}"#), 153_600.0 * 1024.0, "VmRSS");
    assert_eq!(g(r#"leakwatch_process_memory_bytes{kind="resident_anon"}"#), 147_456.0 * 1024.0, "RssAnon");
    assert_eq!(g(r#"leakwatch_process_memory_bytes{kind="pss"}"#), 150_528.0 * 1024.0, "smaps_rollup Pss");
    assert_eq!(g(n::PROCESS_THREADS), 4.0);
    assert_eq!(g(n::PROCESS_OPEN_FDS), 3.0, "entries of fd/");
    assert_eq!(g(n::PROCESS_MAX_FDS), 1_048_576.0, "limits: Max open files");
    assert_eq!(g(n::PROCESS_CPU_SECONDS_TOTAL), 15.0, "(utime 1200 + stime 300) / USER_HZ 100");
    assert_eq!(g(n::PROCESS_START_TIME_SECONDS), 1_700_000_000.0 + 4610.31, "btime + starttime / 100");
    assert_eq!(value(&m, n::HOST_MEMORY_TOTAL_BYTES, &[]), MEM_TOTAL);
    assert_approx(value(&m, r#"leakwatch_host_memory_pressure_seconds_total{kind="some"}"#, &[]), 0.005170, "host PSI");
    assert_eq!(m.label_values(n::TARGET_PROCESS_INFO, "comm"), vec!["app"]);
    assert_no_sample_errors(&m);

    // leakwatch's own figures come from its own /proc, not from the fixture tree.
    assert!(value(&m, n::OWN_RESIDENT_MEMORY_BYTES, &[]) > 0.0);
    let started = value(&m, n::OWN_START_TIME_SECONDS, &[]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64();
    assert!((now - started).abs() < 300.0, "leakwatch started at {started}, now is {now}");
}

#[test]
fn cgroup_v2_without_a_limit_falls_back_to_rss_against_host_memory() {
    let lw = start("cgroup-v2-unlimited", 4242);
    let m = after_passes(&lw, 2.0);

    let info = [("target", "fx"), ("version", "v2"), ("via", "direct"), ("path", "/system.slice/app.service")];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "{}", m.text);
    assert_eq!(m.get(n::CGROUP_MEMORY_LIMIT_BYTES, &FX), None, "memory.max `max` is no limit");
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &FX), 120.0 * MIB);
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#, &FX), 110.0 * MIB);
    assert!(m.all(n::MEMORY_UTILIZATION_RATIO, &[("basis", "cgroup_working_set")]).is_empty());
    let basis = [("target", "fx"), ("basis", "host_rss")];
    let rss = 102_400.0 * 1024.0;
    assert_approx(value(&m, n::MEMORY_UTILIZATION_RATIO, &basis), rss / MEM_TOTAL, "VmRSS / MemTotal");
    assert_eq!(value(&m, n::MEMORY_USED_BYTES, &basis), rss);
    assert_eq!(value(&m, n::MEMORY_LIMIT_BYTES, &basis), MEM_TOTAL);
    assert_no_sample_errors(&m);
}

#[test]
fn cgroup_v1_page_counter_max_is_no_limit() {
    let lw = start("cgroup-v1-unlimited", 4242);
    let m = after_passes(&lw, 2.0);
    let g = |name: &str| value(&m, name, &FX);

    let path = "/system.slice/docker-0d4c6b8a2e1f3a5c7e9b0d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a1c.scope";
    let info = [("target", "fx"), ("version", "v1"), ("via", "direct"), ("path", path)];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "the v1 memory hierarchy wins on a hybrid host");
    assert_eq!(m.get(n::CGROUP_MEMORY_LIMIT_BYTES, &FX), None, "9223372036854771712 is no limit");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#), 120.0 * MIB, "memory.usage_in_bytes");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="rss"}"#), 100.0 * MIB, "total_rss");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="cache"}"#), 14.0 * MIB, "total_cache");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="inactive_file"}"#), 10.0 * MIB, "total_inactive_file");
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#), 110.0 * MIB);
    assert_eq!(g(r#"leakwatch_cgroup_memory_bytes{kind="swap"}"#), 0.0, "total_swap");
    assert_eq!(g(n::CGROUP_MEMORY_OOM_KILLS_TOTAL), 2.0, "memory.oom_control oom_kill");
    assert_eq!(g(n::CGROUP_MEMORY_LIMIT_HITS_TOTAL), 5.0, "memory.failcnt");
    let basis = [("target", "fx"), ("basis", "host_rss")];
    assert_approx(value(&m, n::MEMORY_UTILIZATION_RATIO, &basis), 102_400.0 * 1024.0 / MEM_TOTAL, "ratio");
    assert_no_sample_errors(&m);
}

/// A sidecar's view (the real topology is in `cgroup.rs`): the target's cgroup reads `/../NAME`
/// from leakwatch's cgroup namespace; its files are under `proc/PID/root/sys/fs/cgroup`, and the
/// root of leakwatch's own cgroup mount (its own container, limit 64 MiB) must not be taken.
#[test]
fn a_cgroup_outside_the_namespace_is_read_through_proc_root() {
    let lw = start("cgroup-v2-proc-root", 4242);
    let m = after_passes(&lw, 2.0);
    let path = "/../cri-containerd-3b1e5f0a9c7d2e4b6a8f0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f.scope";
    let info = [("target", "fx"), ("version", "v2"), ("via", "proc_root"), ("path", path)];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "{}", m.text);
    assert_eq!(value(&m, n::CGROUP_MEMORY_LIMIT_BYTES, &FX), 512.0 * MIB, "the target's limit, not ours");
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &FX), 200.0 * MIB);
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#, &FX), 160.0 * MIB);
    let basis = [("target", "fx"), ("basis", "cgroup_working_set")];
    assert_approx(value(&m, n::MEMORY_UTILIZATION_RATIO, &basis), 160.0 / 512.0, "ratio");
    assert_no_sample_errors(&m);
}

/// Waits until `{source, reason}` has been counted in two passes, checks it is the only error
/// and that leakwatch is still serving; returns the last scrape.
fn counted_every_pass(lw: &mut Leakwatch, source: &str, reason: &str) -> Metrics {
    let labels = [("source", source), ("reason", reason)];
    let first =
        lw.wait_for(Duration::from_secs(10), "the first error", |m| m.get(n::SAMPLE_ERRORS_TOTAL, &labels).is_some());
    let n = value(&first, n::SAMPLE_ERRORS_TOTAL, &labels);
    let m = lw.wait_for(Duration::from_secs(10), "the error counted again", |m| {
        m.get(n::SAMPLE_ERRORS_TOTAL, &labels).is_some_and(|v| v > n)
    });
    let errors = m.all(n::SAMPLE_ERRORS_TOTAL, &[]);
    assert_eq!(errors.len(), 1, "only {source}/{reason} fails: {errors:?}");
    assert!(matches!(lw.child.try_wait(), Ok(None)), "leakwatch is still running");
    m
}

#[test]
fn a_status_without_its_name_line_is_malformed_and_the_rest_is_served() {
    let mut lw = start("malformed", 100);
    let m = counted_every_pass(&mut lw, "status", "malformed");
    assert_eq!(
        m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &FX),
        None,
        "no RSS from a truncated status"
    );
    assert_eq!(m.get(n::PROCESS_THREADS, &FX), None);
    assert_eq!(value(&m, n::PROCESS_CPU_SECONDS_TOTAL, &FX), 15.0, "stat is still read");
    assert_eq!(
        value(&m, r#"leakwatch_process_memory_bytes{kind="pss"}"#, &FX),
        150_528.0 * 1024.0,
        "smaps_rollup is still read"
    );
    assert_eq!(
        value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &FX),
        120.0 * MIB,
        "the cgroup is still read"
    );
    assert_eq!(m.label_values(n::TARGET_PROCESS_INFO, "pid"), vec!["100"]);
}

#[test]
fn garbage_in_memory_stat_is_malformed_and_usage_and_limit_are_served() {
    let mut lw = start("malformed", 200);
    let m = counted_every_pass(&mut lw, "cgroup_memory_stat", "malformed");
    assert_eq!(
        m.get(r#"leakwatch_cgroup_memory_bytes{kind="rss"}"#, &FX),
        None,
        "nothing is taken from a garbled memory.stat"
    );
    assert_eq!(m.get(r#"leakwatch_cgroup_memory_bytes{kind="inactive_file"}"#, &FX), None);
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &FX), 120.0 * MIB);
    assert_eq!(value(&m, n::CGROUP_MEMORY_LIMIT_BYTES, &FX), 512.0 * MIB);
    assert_eq!(value(&m, n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &FX), 0.0, "memory.events is still read");
    assert_eq!(value(&m, r#"leakwatch_process_memory_bytes{kind="resident"}"#, &FX), 153_600.0 * 1024.0);
}

#[test]
fn a_missing_smaps_rollup_is_not_found_and_rss_is_served() {
    let mut lw = start("malformed", 300);
    let m = counted_every_pass(&mut lw, "smaps_rollup", "not_found");
    assert_eq!(m.get(r#"leakwatch_process_memory_bytes{kind="pss"}"#, &FX), None);
    assert_eq!(value(&m, r#"leakwatch_process_memory_bytes{kind="resident"}"#, &FX), 153_600.0 * 1024.0);
    assert_eq!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &FX), 120.0 * MIB);
}
