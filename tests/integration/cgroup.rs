//! The target's memory cgroup, with real cgroups: limit, working set and utilization, OOM kills,
//! a sidecar in another cgroup namespace, and an unprivileged leakwatch.

use std::process::Command;
use std::time::Duration;

use crate::support::cgroup::{membership, MemoryCgroup, Spawned, Version};
use crate::support::{binary, vmrss, Leakwatch, MemHog, Metrics, TempDir};
use leakwatch::metric_names as n;

const MIB: u64 = 1 << 20;
/// Beyond what a test allocates, the cgroup is also charged for the interpreter (python3 and,
/// on some machines, a pyenv shim) and the page cache of what it reads.
const INTERPRETER_OVERHEAD: u64 = 48 * MIB;

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(name, labels).unwrap_or_else(|| panic!("{name}{labels:?} is missing from the scrape:\n{}", m.text))
}

#[test]
fn a_150_mib_process_in_a_256_mib_cgroup_is_59_percent_of_its_limit() {
    let cg = MemoryCgroup::create("limit", Some(256 * MIB));
    let hog = MemHog::start_with(cg.command("python3"), 150);
    assert_eq!(cg.members(), vec![hog.pid()], "the hog runs inside the test cgroup");
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "cg"]);
    let target = [("target", "cg")];
    let m = lw.wait_for(Duration::from_secs(10), "the cgroup metrics", |m| {
        m.get(r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#, &target).is_some()
    });

    let version = cg.version().label();
    let path = cg.path();
    let info = [("target", "cg"), ("version", version), ("via", "direct"), ("path", path.as_str())];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "{}", m.text);
    assert_eq!(value(&m, n::CGROUP_MEMORY_LIMIT_BYTES, &target), (256 * MIB) as f64);
    let ws = value(&m, r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#, &target);
    assert!(
        ((150 * MIB) as f64..(150 * MIB + INTERPRETER_OVERHEAD) as f64).contains(&ws),
        "working set {:.1} MiB, expected 150 MiB plus the interpreter",
        ws / MIB as f64
    );
    let usage = value(&m, r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &target);
    assert!(usage >= ws, "usage {usage} >= working set {ws}");
    assert!(value(&m, r#"leakwatch_cgroup_memory_bytes{kind="rss"}"#, &target) >= (150 * MIB) as f64);

    let basis = [("target", "cg"), ("basis", "cgroup_working_set")];
    let ratio = value(&m, n::MEMORY_UTILIZATION_RATIO, &basis);
    assert!((ratio - 0.59).abs() <= 0.05, "utilization {ratio}, expected 0.59 ± 0.05");
    assert!((ratio - ws / (256 * MIB) as f64).abs() < 1e-9, "ratio {ratio} is working set / limit");
    assert_eq!(value(&m, n::MEMORY_LIMIT_BYTES, &basis), (256 * MIB) as f64);
    assert!(m.all(n::MEMORY_UTILIZATION_RATIO, &[("basis", "host_rss")]).is_empty());

    let dir = cg.dir().to_owned();
    drop(lw);
    drop(hog);
    drop(cg);
    assert!(!dir.exists(), "{} is removed after the test", dir.display());
}

#[test]
fn a_child_killed_by_the_oom_killer_is_counted_once() {
    let cg = MemoryCgroup::create("oom", Some(64 * MIB));
    // The shell is the long-lived member and the target; its python3 child allocates 200 MiB
    // in a 64 MiB cgroup without swap and is killed by the kernel.
    let mut cmd = cg.command("sh");
    cmd.args(["-c", "python3 -c \"b = bytearray(b'\\x01') * (200 << 20)\"; echo \"exit $?\"; exec sleep 600"]);
    let mut target = Spawned::start(cmd);
    assert_eq!(target.line(), "exit 137", "python3 was SIGKILLed (by the OOM killer)");
    let oom_file = match cg.version() {
        Version::V1 => "memory.oom_control",
        Version::V2 => "memory.events",
    };
    assert_eq!(cg.keyed(oom_file, "oom_kill"), Some(1), "the kernel counted one OOM kill");
    assert_eq!(cg.members(), vec![target.pid()], "only the shell is left");

    let pid = target.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "oom"]);
    let labels = [("target", "oom")];
    let m = lw.wait_for(Duration::from_secs(10), "the OOM kill counter", |m| {
        m.get(n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &labels).is_some()
    });
    assert_eq!(value(&m, n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &labels), 1.0);
    assert!(value(&m, n::CGROUP_MEMORY_LIMIT_HITS_TOTAL, &labels) > 0.0, "{}", m.text);
    assert_eq!(value(&m, n::CGROUP_MEMORY_LIMIT_BYTES, &labels), (64 * MIB) as f64);
    assert_eq!(m.label_values(n::TARGET_PROCESS_INFO, "pid"), vec![pid], "the shell is still the target");
}

/// The Kubernetes sidecar topology: the target runs like a container (its own cgroup and mount
/// namespaces, the cgroup filesystem mounted inside showing its cgroup as the root), and
/// leakwatch runs in another cgroup namespace, where the target's cgroup reads `/../NAME`.
/// leakwatch cannot join that path under its own mount and must go through
/// `/proc/PID/root/sys/fs/cgroup`.
#[test]
fn a_sidecar_in_another_cgroup_namespace_finds_the_limit_through_proc_root() {
    let target_cg = MemoryCgroup::create("sidecar-target", Some(128 * MIB));
    let sidecar_cg = MemoryCgroup::create("sidecar-self", None);
    let hog = MemHog::start_with(target_cg.command_as_container("python3"), 64);
    assert_eq!(target_cg.members(), vec![hog.pid()]);
    let limit_file = match target_cg.version() {
        Version::V1 => "memory/memory.limit_in_bytes",
        Version::V2 => "memory.max",
    };
    let through_root = format!("/proc/{}/root/sys/fs/cgroup/{limit_file}", hog.pid());
    let inside = std::fs::read_to_string(&through_root).unwrap_or_else(|e| panic!("read {through_root}: {e}"));
    assert_eq!(inside.trim(), (128 * MIB).to_string(), "the target sees its own cgroup as the root");

    let pid = hog.pid().to_string();
    let lw = Leakwatch::start_cmd(
        sidecar_cg.command_in_cgroup_namespace(binary()),
        &["--pid", &pid, "--target-name", "app"],
    );
    let lw_pid = lw.child.id() as i32;
    assert_eq!(sidecar_cg.members(), vec![lw_pid], "leakwatch runs in the sidecar cgroup");
    let labels = [("target", "app")];
    let m = lw.wait_for(Duration::from_secs(10), "the target's cgroup", |m| {
        m.get(n::CGROUP_MEMORY_LIMIT_BYTES, &labels).is_some()
    });

    // From leakwatch's cgroup namespace the target's cgroup is outside its root.
    let path = format!("/../{}", target_cg.name());
    let info = [("target", "app"), ("version", target_cg.version().label()), ("via", "proc_root"), ("path", &path)];
    assert_eq!(m.get(n::CGROUP_INFO, &info), Some(1.0), "{}", m.text);
    assert!(membership(hog.pid(), target_cg.version()).ends_with(&target_cg.path()));
    assert_eq!(value(&m, n::CGROUP_MEMORY_LIMIT_BYTES, &labels), (128 * MIB) as f64);
    let ws = value(&m, r#"leakwatch_cgroup_memory_bytes{kind="working_set"}"#, &labels);
    assert!(
        ((64 * MIB) as f64..(64 * MIB + INTERPRETER_OVERHEAD) as f64).contains(&ws),
        "working set {:.1} MiB is the target cgroup's (64 MiB plus the interpreter)",
        ws / MIB as f64
    );
    let ratio = value(&m, n::MEMORY_UTILIZATION_RATIO, &[("target", "app"), ("basis", "cgroup_working_set")]);
    assert!((ratio - ws / (128 * MIB) as f64).abs() < 1e-9, "ratio {ratio} against the target's limit");
}

/// An unprivileged leakwatch watching a root process: `smaps_rollup` and `fd` need ptrace
/// access and fail with EACCES; what is world-readable (`status`, `stat`) is still reported.
#[test]
fn an_unprivileged_leakwatch_counts_permission_errors_and_still_reports_rss() {
    let hog = MemHog::start(64);
    // The binary must be executable by nobody: use it in place if it is, else a copy.
    let copy = TempDir::new("unprivileged");
    let program = if Command::new("setpriv")
        .args(setpriv_args())
        .arg(binary())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        binary().to_owned()
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(copy.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let to = copy.path().join("leakwatch");
        std::fs::copy(binary(), &to).expect("copy the binary");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod the copy");
        to.display().to_string()
    };
    let mut cmd = Command::new("setpriv");
    cmd.args(setpriv_args()).arg(&program);
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start_cmd(cmd, &["--pid", &pid, "--target-name", "root-owned"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", lw.child.id())).expect("leakwatch status");
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).expect("Uid line");
    assert_eq!(uid.split_whitespace().collect::<Vec<_>>(), ["65534"; 4], "leakwatch runs as nobody");

    let labels = [("target", "root-owned")];
    let denied = |source: &'static str| [("source", source), ("reason", "permission_denied")];
    let m = lw.wait_for(Duration::from_secs(10), "permission errors", |m| {
        m.get(n::SAMPLE_ERRORS_TOTAL, &denied("smaps_rollup")).is_some_and(|n| n >= 1.0)
            && m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &labels).is_some()
    });
    assert!(value(&m, n::SAMPLE_ERRORS_TOTAL, &denied("fd")) >= 1.0, "{}", m.text);
    assert_eq!(m.get(r#"leakwatch_process_memory_bytes{kind="pss"}"#, &labels), None, "no PSS without ptrace access");
    assert_eq!(m.get(n::PROCESS_OPEN_FDS, &labels), None, "no fd count without ptrace access");
    let rss = value(&m, r#"leakwatch_process_memory_bytes{kind="resident"}"#, &labels);
    let truth = vmrss(hog.pid()) as f64;
    assert!((rss - truth).abs() / truth < 0.05, "reported RSS {rss} vs VmRSS {truth}");
}

fn setpriv_args() -> [&'static str; 4] {
    ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]
}
