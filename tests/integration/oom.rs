//! OOM kills on real cgroups, as a container runtime handles them: a python3 "app" in a memory
//! cgroup with a 64 MiB limit grows until the kernel OOM-kills it; the test then removes the
//! cgroup at once (containerd does within milliseconds) and starts the app again in a NEW
//! cgroup. leakwatch, watching by command line, must count exactly one kill (its own count: the
//! kernel's counter went away with the cgroup), keep a report whose last sample is near the
//! limit, show the target down and then up, and follow the new process within two intervals.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::cgroup::{MemoryCgroup, Version};
use crate::support::{Leakwatch, Metrics};
use leakwatch::metric_names as n;

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 64 * MIB;
/// `Leakwatch::start` samples every 200 ms.
const INTERVAL: f64 = 0.2;

/// The app: prints `ready`, then on a line on stdin grows by 1 MiB every 25 ms until killed.
struct App {
    child: Child,
    stdin: ChildStdin,
    spawned_at: f64,
}

impl App {
    fn start(cg: &MemoryCgroup, tag: &str) -> App {
        let spawned_at = now();
        let script = "import sys,time\nprint('ready',flush=True)\nsys.stdin.readline()\nheld=[]\nwhile True:\n    held.append(bytearray(b'\\x01')*(1<<20))\n    time.sleep(0.025)\n";
        let mut child = cg
            .command("python3")
            .args(["-c", script, tag])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3 (the tests need python3)");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped stdout")).read_line(&mut line).expect("read ready");
        assert_eq!(line.trim(), "ready", "the app did not start");
        App { child, stdin, spawned_at }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn grow(&mut self) {
        writeln!(self.stdin, "go").expect("tell the app to grow");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

/// A cgroup with the app's limit and no swap to escape to.
fn app_cgroup(tag: &str) -> MemoryCgroup {
    let cg = MemoryCgroup::create(tag, Some(LIMIT));
    match cg.version() {
        Version::V1 if cg.dir().join("memory.memsw.limit_in_bytes").is_file() => {
            cg.write("memory.memsw.limit_in_bytes", &LIMIT.to_string())
        }
        Version::V2 if cg.dir().join("memory.swap.max").is_file() => cg.write("memory.swap.max", "0"),
        _ => {}
    }
    cg
}

fn kills(m: &Metrics) -> f64 {
    m.all(n::TARGET_OOM_KILLS_TOTAL, &[("target", "app")]).iter().map(|(_, v)| v).sum()
}

fn up(m: &Metrics) -> Option<f64> {
    m.get(n::TARGET_UP, &[("target", "app")])
}

fn followed(m: &Metrics, pid: i32) -> bool {
    up(m) == Some(1.0) && m.label_values(n::TARGET_PROCESS_INFO, "pid") == vec![pid.to_string()]
}

#[test]
fn an_oom_kill_in_a_cgroup_removed_at_once_is_counted_once_and_the_restart_is_followed() {
    let tag = format!("leakwatch-oom-app-{}", std::process::id());
    let lw = Leakwatch::start(&["--cmdline-regex", &format!("{tag}$"), "--target-name", "app"]);
    lw.wait_for(Duration::from_secs(10), "the target down before the app starts", |m| up(m) == Some(0.0));

    let first = app_cgroup("oom-first");
    let mut app = App::start(&first, &tag);
    let pid = app.pid();
    lw.wait_for(Duration::from_secs(10), "the first app followed", |m| followed(m, pid));
    app.grow();
    // Play the runtime: reap the killed app and remove its cgroup at once.
    let status = app.child.wait().expect("wait for the app");
    let killed_at = now();
    drop(first);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the app was OOM-killed (SIGKILL), not {status:?}");

    // The kill may be counted while the victim is still exiting (near-limit poll); then it is gone.
    let m = lw.wait_for(Duration::from_secs(20), "one OOM kill counted, the target down", |m| {
        kills(m) >= 1.0 && up(m) == Some(0.0)
    });
    assert_eq!(kills(&m), 1.0, "exactly one kill:\n{}", m.text);
    let last_kill = m.get(n::TARGET_LAST_OOM_KILL_TIMESTAMP_SECONDS, &[("target", "app")]).expect("time");
    // Negative: leakwatch counted the kill before the test (the runtime) had reaped the app.
    eprintln!("kill seen {:+.3} s from the app's reaping", last_kill - killed_at);
    assert!((last_kill - killed_at).abs() < 30.0, "the kill's time {last_kill} is about now {killed_at}");
    drop(app);

    // The report: the last sample before the kill shows the cgroup near its limit. A kill seen
    // before the exit (the near-limit poll) names the process once its exit is seen.
    let deadline = Instant::now() + Duration::from_secs(10);
    let oom = loop {
        let (code, body) = lw.get("/oom");
        assert_eq!(code, 200, "{body}");
        let oom: Value = serde_json::from_str(&body).expect("/oom is JSON");
        if oom["reports"][0]["pids"].as_array().is_some_and(|p| !p.is_empty()) || Instant::now() > deadline {
            break oom;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(oom["kills_total"], 1, "{oom:#}");
    assert_eq!(oom["up"], false);
    let report = &oom["reports"][0];
    eprintln!("report: detection={} seen_by={} kills={}", report["detection"], report["seen_by"], report["kills"]);
    assert_eq!(report["kills"], 1, "{report:#}");
    assert_eq!(report["pids"], serde_json::json!([pid]), "{report:#}");
    let samples = report["samples"].as_array().expect("samples");
    assert!(!samples.is_empty() && samples.len() <= 12, "{report:#}");
    let last = samples.last().expect("a last sample");
    assert_eq!(last["cgroup_limit_bytes"], LIMIT, "{last:#}");
    let ratio = last["utilization_ratio"].as_f64().expect("utilization");
    assert!(ratio > 0.7, "the last sample before the kill is near the limit: {last:#}");
    let (_, status) = lw.get("/status");
    let status: Value = serde_json::from_str(&status).expect("/status is JSON");
    assert_eq!(status["snapshot"]["oom"]["kills_total"], 1, "/status has the oom section");

    // A restart as Kubernetes does it: a new cgroup (from 0), a new process, followed at once.
    let second = app_cgroup("oom-second");
    let app = App::start(&second, &tag);
    let pid = app.pid();
    let m = lw.wait_for(Duration::from_secs(20), "the new app followed", |m| followed(m, pid));
    // Timed by the pass that found it (its log line), not by this test's polling: under load the
    // app's start-up and the polls can take longer than the passes do.
    // The group may hold the app's start-up processes too (the `sh` that execs it): one of them.
    let has_pid = |l: &str| {
        let list = l.split("pids=[").nth(1).and_then(|rest| rest.split(']').next()).unwrap_or("");
        list.split(", ").any(|p| p == pid.to_string())
    };
    let mut lines = lw.log_until(Duration::from_secs(10), "saying the new app was found", |l| {
        l.contains("target found") && has_pid(l)
    });
    let stamp = lines.last().and_then(|l| l.split_whitespace().next()).expect("a time at the start of the line");
    let found_at = humantime::parse_rfc3339(stamp).expect("an RFC 3339 time at the start of the log line");
    let lag = found_at.duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64() - app.spawned_at;
    eprintln!("new process found by the pass {lag:.3} s after its spawn");
    assert!(
        lag <= 2.0 * INTERVAL + 0.5,
        "followed within two intervals: the pass that found it came {lag:.3} s after the spawn"
    );
    // More passes over the new cgroup: still exactly one kill.
    let seq = m.get(n::SAMPLES_TOTAL, &[]).expect("samples");
    let m = lw.wait_for(Duration::from_secs(10), "three more passes", |m| {
        m.get(n::SAMPLES_TOTAL, &[]).is_some_and(|s| s >= seq + 3.0)
    });
    assert_eq!(kills(&m), 1.0, "the new cgroup adds nothing:\n{}", m.text);
    lines.extend(lw.log.try_iter());
    assert!(
        lines.iter().any(|l| l.contains("OOM kill") && l.contains("kills_total=1")),
        "one structured log line for the kill:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("target gone")), "the target's disappearance is logged");
}

/// The fixture's container cgroup (relative to the tree's `sys/fs/cgroup`).
const V2_SCOPE: &str = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2f0e_5d3a_4c1b_9a7e_0c2b8d4e7a11.slice/cri-containerd-3b1e5f0a9c7d2e4b6a8f0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f.scope";

fn events(oom_kill: u64, max: u64) -> String {
    format!("low 0\nhigh 0\nmax {max}\noom {oom_kill}\noom_kill {oom_kill}\noom_group_kill 0\n")
}

/// cgroup v2 on a fixture tree (this host's memory controller is v1): the kernel's change
/// notification of `memory.events` (inotify) counts a kill at once, with the sampling interval at
/// an hour; another notification with the same counter adds nothing; a new cgroup (a restarted
/// container) counts from 0 and its kills add to leakwatch's own count.
#[test]
fn cgroup_v2_memory_events_notifications_count_each_kill_once_across_a_new_cgroup() {
    let tree = crate::support::TempDir::new("oom-v2");
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup-v2-limited");
    let status =
        std::process::Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(tree.path()).status();
    assert!(status.expect("cp").success());
    let cgroup_fs = tree.path().join("sys/fs/cgroup");
    let first = cgroup_fs.join(V2_SCOPE).join("memory.events");
    let (procfs, sysfs) = (tree.path().join("proc"), tree.path().join("sys"));
    let lw = Leakwatch::start(&[
        "--procfs-root",
        procfs.to_str().unwrap(),
        "--sysfs-root",
        sysfs.to_str().unwrap(),
        "--pid",
        "4242",
        "--target-name",
        "app",
        // After the first pass, only notifications make passes.
        "--interval",
        "1h",
    ]);
    let m = lw.wait_for(Duration::from_secs(10), "the first pass", |m| up(m) == Some(1.0));
    assert_eq!(kills(&m), 0.0, "the 3 kills before leakwatch watched are the baseline:\n{}", m.text);
    let passes = m.get(n::SAMPLES_TOTAL, &[]).expect("samples");

    std::fs::write(&first, events(4, 18)).expect("write memory.events");
    let m = lw.wait_for(Duration::from_secs(10), "the notified kill", |m| kills(m) == 1.0);
    assert!(m.get(n::SAMPLES_TOTAL, &[]).expect("samples") > passes, "a pass ran at once");
    let (_, body) = lw.get("/oom");
    let oom: Value = serde_json::from_str(&body).expect("/oom JSON");
    let report = &oom["reports"][0];
    assert_eq!((report["seen_by"].as_str(), report["detection"].as_str()), (Some("events_notify"), Some("cgroup")));
    assert_eq!(report["samples"].as_array().map(Vec::len), Some(1), "the one sample before: {report:#}");

    // Another change (the `max` event) with the same oom_kill: notified, read, nothing counted.
    let before = lw.scrape().get(n::SAMPLES_TOTAL, &[]).expect("samples");
    std::fs::write(&first, events(4, 19)).expect("write memory.events");
    lw.wait_for(Duration::from_secs(10), "the notified pass", |m| {
        m.get(n::SAMPLES_TOTAL, &[]).is_some_and(|s| s > before)
    });

    // The container restarts in a new cgroup: /proc/4242/cgroup points there; a notification of
    // the old file makes the pass that finds it.
    let second_dir = cgroup_fs.join("kubepods.slice/restarted.scope");
    std::fs::create_dir_all(&second_dir).expect("mkdir");
    for f in ["memory.current", "memory.max", "memory.stat", "memory.swap.current", "memory.pressure"] {
        std::fs::copy(cgroup_fs.join(V2_SCOPE).join(f), second_dir.join(f)).expect("copy a cgroup file");
    }
    let second = second_dir.join("memory.events");
    std::fs::write(&second, events(0, 0)).expect("write memory.events");
    std::fs::write(procfs.join("4242/cgroup"), "0::/kubepods.slice/restarted.scope\n").expect("write cgroup");
    std::fs::write(&first, events(4, 20)).expect("write memory.events");
    lw.wait_for(Duration::from_secs(10), "the new cgroup", |m| {
        m.label_values(n::CGROUP_INFO, "path") == vec!["/kubepods.slice/restarted.scope".to_owned()]
    });
    std::fs::write(&second, events(1, 1)).expect("write memory.events");
    let m = lw.wait_for(Duration::from_secs(10), "the new cgroup's kill", |m| kills(m) >= 2.0);
    assert_eq!(kills(&m), 2.0, "one kill in each cgroup:\n{}", m.text);
    assert_eq!(m.get(n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &[("target", "app")]), Some(1.0), "the kernel's own");
    assert_eq!(m.get(n::TARGET_OOM_REPORTS, &[("target", "app")]), Some(2.0));
}

/// `leakwatch run`: the wrapped command is OOM-killed (it moved itself into a limited cgroup);
/// leakwatch exits with 137, logs the signal, and says the kill was counted as an OOM kill.
#[test]
fn run_mode_logs_the_signal_of_an_oom_killed_child_and_counts_it() {
    let cg = app_cgroup("oom-run");
    let procs = cg.dir().join("cgroup.procs");
    let script =
        "import time\nheld=[]\nwhile True:\n    held.append(bytearray(b'\\x01')*(1<<20))\n    time.sleep(0.025)\n";
    let out = crate::support::run_to_exit(&[
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "200ms",
        "run",
        "--",
        "sh",
        "-c",
        r#"echo $$ > "$0" && exec python3 -c "$1""#,
        procs.to_str().unwrap(),
        script,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "the child's SIGKILL as 128 + 9:\n{stderr}");
    let line = stderr.lines().find(|l| l.contains("wrapped command killed by a signal")).unwrap_or_else(|| {
        panic!("no line about the child's end:\n{stderr}");
    });
    assert!(line.contains("signal=9") && line.contains("oom_killed=true"), "{line}");
    assert!(line.contains("oom_kills_total=1"), "{line}");
    assert!(stderr.contains("OOM kill"), "the kill's own line:\n{stderr}");
}

/// A restart in the SAME cgroup (the runtime kept it): the kill is read from the cgroup's counter
/// at the exit (`detection="cgroup"`), and the regular passes that read the same counter over the
/// new process do not count it again.
#[test]
fn a_restart_in_the_same_cgroup_counts_the_kill_once_from_the_cgroup_counter() {
    let tag = format!("leakwatch-oom-same-{}", std::process::id());
    let lw = Leakwatch::start(&["--cmdline-regex", &format!("{tag}$"), "--target-name", "app"]);
    let cg = app_cgroup("oom-same");
    let mut app = App::start(&cg, &tag);
    let pid = app.pid();
    lw.wait_for(Duration::from_secs(10), "the app followed", |m| followed(m, pid));
    app.grow();
    let status = app.child.wait().expect("wait for the app");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "OOM-killed: {status:?}");
    drop(app);
    // What the killed app left charged to the cgroup (page cache) must not OOM-kill the new one
    // while it starts: the cgroup is empty now, so v1 can drop its charges.
    if cg.dir().join("memory.force_empty").is_file() {
        let _ = std::fs::write(cg.dir().join("memory.force_empty"), "0");
    }
    let app = App::start(&cg, &tag);
    let pid = app.pid();
    let m = lw.wait_for(Duration::from_secs(20), "the restarted app followed", |m| followed(m, pid) && kills(m) >= 1.0);
    let seq = m.get(n::SAMPLES_TOTAL, &[]).expect("samples");
    let m = lw.wait_for(Duration::from_secs(10), "five more passes", |m| {
        m.get(n::SAMPLES_TOTAL, &[]).is_some_and(|s| s >= seq + 5.0)
    });
    let cgroup = [("target", "app"), ("detection", "cgroup")];
    assert_eq!(m.get(n::TARGET_OOM_KILLS_TOTAL, &cgroup), Some(1.0), "{}", m.text);
    assert_eq!(kills(&m), 1.0, "nothing inferred on top:\n{}", m.text);
    assert_eq!(m.get(n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &[("target", "app")]), Some(1.0), "the kernel's counter");
}
