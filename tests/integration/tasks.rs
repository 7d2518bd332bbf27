//! Child processes and descriptors of real targets: workers that never exit (counted, then
//! stale after a short configured age), zombies, descendants of descendants, and a descriptor
//! leak measured against a lowered soft limit.

use std::time::{Duration, Instant};

use crate::support::procs::PyProc;
use crate::support::{Leakwatch, TempDir};
use leakwatch::metric_names as n;

/// Starts three workers that never exit (one of them with a child of its own), and one child that
/// exits at once and is never reaped (a zombie).
const SPAWNER: &str = r#"
import os, subprocess, time
def children(ppid):
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1] == str(ppid):
                found.append(p)
        except OSError:
            pass
    return found
workers = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
workers.append(subprocess.Popen(["sh", "-c", "sleep 600 & wait"]))
pid = os.fork()
if pid == 0:
    os._exit(0)
while open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z":
    time.sleep(0.01)
while not children(workers[2].pid):
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(600)
"#;

/// Lowers its own soft RLIMIT_NOFILE to 64, then opens files, pipes, sockets and eventfds, and
/// prints how many descriptors of each kind it holds by its own count of `/proc/self/fd`.
const FD_LEAK: &str = r#"
import os, resource, socket, tempfile, time
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))
d = tempfile.mkdtemp()
keep = [open(os.path.join(d, "f%d" % i), "w") for i in range(20)]
keep += [os.pipe() for _ in range(5)]
keep += [socket.socket() for _ in range(4)]
keep += [os.eventfd(0) for _ in range(3)]
kinds = {"socket": 0, "file": 0, "pipe": 0, "anon_inode": 0, "other": 0}
fds = os.listdir("/proc/self/fd")
for fd in fds:
    try:
        t = os.readlink("/proc/self/fd/" + fd)
    except FileNotFoundError:
        continue  # the descriptor of the listing itself
    k = "socket" if t.startswith("socket:") else "file" if t.startswith("/") else "pipe" if t.startswith("pipe:") else "anon_inode" if t.startswith("anon_inode:") else "other"
    kinds[k] += 1
for k, n in kinds.items():
    print(k, n)
print("ready", flush=True)
for f in os.listdir(d):
    os.unlink(os.path.join(d, f))
os.rmdir(d)
time.sleep(600)
"#;

#[test]
fn workers_that_never_exit_are_counted_then_stale_and_zombies_are_zombies() {
    let started = Instant::now();
    let (spawner, _) = PyProc::start(SPAWNER, &[]);
    let dir = TempDir::new("tasks");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, "tasks:\n  stale_after: 4s\n").expect("write config");
    let pid = spawner.pid().to_string();
    let lw = Leakwatch::start(&["--config", config.to_str().unwrap(), "--pid", &pid, "--target-name", "spawner"]);
    let first = lw.wait_for(Duration::from_secs(10), "the children", |m| {
        m.get(n::TASK_CHILDREN, &[("target", "spawner")]).is_some()
    });
    let fresh = started.elapsed() < Duration::from_secs(4);
    let state = |m: &crate::support::Metrics, s: &str| m.get(n::TASK_DESCENDANTS, &[("state", s)]);
    assert_eq!(first.get(n::TASK_CHILDREN, &[]), Some(4.0), "3 workers + 1 zombie\n{}", first.text);
    assert_eq!(state(&first, "sleeping"), Some(4.0), "3 workers + the grandchild");
    assert_eq!(state(&first, "zombie"), Some(1.0), "the unreaped child");
    assert_eq!(first.get(n::TASK_TRACKED, &[]), Some(5.0));
    if fresh {
        assert_eq!(first.get(n::TASK_STALE_DESCENDANTS, &[]), Some(0.0), "younger than 4 s");
    }
    let m = lw
        .wait_for(Duration::from_secs(15), "stale descendants", |m| m.get(n::TASK_STALE_DESCENDANTS, &[]) == Some(5.0));
    assert!(started.elapsed() >= Duration::from_secs(4), "stale only after the configured age");
    assert_eq!(m.get(n::TASK_STALE_AFTER_SECONDS, &[]), Some(4.0));
    assert_eq!(m.get(n::TASK_CHILDREN, &[]), Some(4.0));
    let switches = m.get(n::TASK_CONTEXT_SWITCHES_TOTAL, &[("kind", "voluntary")]);
    assert!(switches.is_some_and(|v| v > 0.0), "the spawner slept, so it switched voluntarily: {switches:?}");
    assert!(m.get(n::TASK_CONTEXT_SWITCHES_TOTAL, &[("kind", "involuntary")]).is_some());
}

#[test]
fn a_descriptor_leak_is_counted_by_kind_against_the_lowered_soft_limit() {
    let (leaker, counts) = PyProc::start(FD_LEAK, &[]);
    let truth: Vec<(String, f64)> = counts
        .iter()
        .map(|l| {
            let (k, n) = l.split_once(' ').expect("kind count");
            (k.to_owned(), n.parse().expect("count"))
        })
        .collect();
    let total: f64 = truth.iter().map(|(_, n)| n).sum();
    let pid = leaker.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "leaker"]);
    let m = lw.wait_for(Duration::from_secs(10), "fd figures", |m| m.get(n::FD_UTILIZATION_RATIO, &[]).is_some());
    for (kind, n) in &truth {
        assert_eq!(m.get(n::FD_OPEN, &[("target", "leaker"), ("kind", kind)]), Some(*n), "{kind}\n{}", m.text);
    }
    let get = |k: &str| truth.iter().find(|(kind, _)| kind == k).map(|(_, n)| *n).unwrap_or(0.0);
    assert!(get("file") >= 20.0 && get("pipe") >= 10.0 && get("socket") >= 4.0 && get("anon_inode") >= 3.0);
    assert_eq!(m.get(n::PROCESS_MAX_FDS, &[]), Some(64.0), "the lowered soft limit");
    assert_eq!(m.get(n::PROCESS_OPEN_FDS, &[]), Some(total));
    let ratio = m.get(n::FD_UTILIZATION_RATIO, &[("target", "leaker")]).expect("ratio");
    assert!((ratio - total / 64.0).abs() < 1e-9, "utilization {ratio} = {total} / 64");
    assert!(ratio > 0.5, "the leak fills more than half of the limit: {ratio}");
}
