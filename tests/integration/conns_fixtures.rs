//! The socket and descriptor samplers on the `conns` fixture tree: a `/proc/PID/net/tcp` with a
//! garbled row among good ones, and a process whose `fd` directory is gone (it exited between
//! reading its `stat` and its descriptors). No panic, the error is counted every pass, and
//! everything else is still served.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{Leakwatch, Metrics};
use leakwatch::metric_names as n;

fn start(pid: u32) -> Leakwatch {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conns");
    let (proc, sys) = (dir.join("proc").display().to_string(), dir.join("sys").display().to_string());
    let pid = pid.to_string();
    Leakwatch::start(&["--procfs-root", &proc, "--sysfs-root", &sys, "--pid", &pid, "--target-name", "fx"])
}

/// Waits until `{source, reason}` has been counted in two passes and checks it is the only error.
fn counted_every_pass(lw: &Leakwatch, source: &str, reason: &str) -> Metrics {
    let labels = [("source", source), ("reason", reason)];
    let first =
        lw.wait_for(Duration::from_secs(10), "the first error", |m| m.get(n::SAMPLE_ERRORS_TOTAL, &labels).is_some());
    let n = first.get(n::SAMPLE_ERRORS_TOTAL, &labels).unwrap_or(0.0);
    let m = lw.wait_for(Duration::from_secs(10), "the error counted again", |m| {
        m.get(n::SAMPLE_ERRORS_TOTAL, &labels).is_some_and(|v| v > n)
    });
    let errors = m.all(n::SAMPLE_ERRORS_TOTAL, &[]);
    assert_eq!(errors.len(), 1, "only {source}/{reason} fails: {errors:?}");
    m
}

#[test]
fn a_garbled_tcp_row_is_counted_and_the_good_rows_are_matched() {
    let mut lw = start(4242);
    let m = counted_every_pass(&lw, "proc_net", "malformed");
    assert!(matches!(lw.child.try_wait(), Ok(None)), "leakwatch is still running");
    let held = |protocol: &str, state: &str| {
        m.get(n::CONN_SOCKETS, &[("target", "fx"), ("protocol", protocol), ("state", state)])
    };
    assert_eq!(held("tcp", "listen"), Some(1.0), "{}", m.text);
    assert_eq!(held("tcp", "established"), Some(1.0), "1002 is ours; 9999 belongs to another process");
    assert_eq!(held("tcp", "close_wait"), Some(1.0));
    assert_eq!(held("tcp", "time_wait"), None, "no process holds a time_wait socket");
    assert_eq!(held("tcp6", "established"), Some(1.0));
    assert_eq!(held("unix", "established"), Some(1.0));
    let netns = |state: &str| m.get(n::CONN_NETNS_SOCKETS, &[("protocol", "tcp"), ("state", state)]);
    assert_eq!((netns("established"), netns("time_wait"), netns("close_wait")), (Some(2.0), Some(1.0), Some(1.0)));
    assert_eq!(m.get(n::CONN_NETNS_SOCKETS, &[("protocol", "unix"), ("state", "listen")]), Some(1.0));
    assert_eq!(m.get(n::CONN_ACCEPT_QUEUE_LENGTH, &[("protocol", "tcp")]), Some(3.0));
    assert_eq!(m.get(n::CONN_SOURCE_INFO, &[("protocol", "tcp"), ("method", "proc_net")]), Some(1.0));
    let kind = |k: &str| m.get(n::FD_OPEN, &[("kind", k)]);
    assert_eq!(
        (kind("socket"), kind("file"), kind("pipe"), kind("anon_inode"), kind("other")),
        (Some(5.0), Some(3.0), Some(1.0), Some(1.0), Some(1.0))
    );
    assert_eq!(m.get(n::FD_UTILIZATION_RATIO, &[]), Some(11.0 / 64.0), "11 fds, soft limit 64");
    assert_eq!(m.get(n::TASK_CONTEXT_SWITCHES_TOTAL, &[("kind", "voluntary")]), Some(1520.0));
    assert_eq!(m.get(n::TASK_CHILDREN, &[]), Some(0.0));
}

#[test]
fn a_process_whose_descriptors_vanished_is_counted_and_the_rest_is_served() {
    let mut lw = start(4343);
    let m = counted_every_pass(&lw, "fd", "not_found");
    assert!(matches!(lw.child.try_wait(), Ok(None)), "leakwatch is still running");
    assert_eq!(m.get(n::PROCESS_OPEN_FDS, &[]), None, "no count from a vanished fd directory");
    assert!(m.all(n::FD_OPEN, &[]).is_empty());
    assert!(m.all(n::CONN_SOCKETS, &[]).is_empty(), "no descriptors, no held sockets");
    assert!(
        m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[("target", "fx")]).is_some(),
        "status is still read"
    );
    assert_eq!(m.get(n::CONN_STALE_SOCKETS, &[]), Some(0.0));
}
