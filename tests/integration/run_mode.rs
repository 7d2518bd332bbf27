//! `leakwatch run -- CMD`: the wrapped command is the target, signals are forwarded and its exit
//! code is leakwatch's.

use std::time::Duration;

use crate::support::{run_to_exit, signal, wait_timeout, Leakwatch};
use leakwatch::metric_names as n;

#[test]
fn the_wrapped_commands_exit_code_is_returned() {
    let out = run_to_exit(&["--listen", "127.0.0.1:0", "run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // Global flags after the subcommand work too.
    let out = run_to_exit(&["run", "--listen", "127.0.0.1:0", "--interval", "200ms", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_command_that_cannot_start_is_a_clear_error() {
    let out = run_to_exit(&["--listen", "127.0.0.1:0", "run", "--", "/nonexistent/leakwatch-no-such-command"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("leakwatch-no-such-command"), "the error names the command: {stderr}");
}

#[test]
fn the_child_is_the_target_and_sigterm_is_forwarded() {
    let lw = Leakwatch::start(&["run", "--", "sleep", "600"]);
    let m = lw.wait_for(Duration::from_secs(10), "the wrapped sleep as the target", |m| {
        m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[("target", "sleep")]).is_some()
    });
    let pids = m.label_values(n::TARGET_PROCESS_INFO, "pid");
    assert_eq!(pids.len(), 1);
    let child_pid: i32 = pids[0].parse().unwrap();
    let ppid = std::fs::read_to_string(format!("/proc/{child_pid}/stat")).unwrap();
    let ppid: u32 = ppid.rsplit_once(')').unwrap().1.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(ppid, lw.child.id(), "the target is leakwatch's own child");

    let status = lw.terminate();
    assert_eq!(status.code(), Some(143), "128 + SIGTERM, passed through from the child");
    assert!(!std::path::Path::new(&format!("/proc/{child_pid}")).exists(), "the child is gone");
}

#[test]
fn sigint_is_forwarded_too() {
    let lw = Leakwatch::start(&["run", "--", "sleep", "600"]);
    lw.wait_for(Duration::from_secs(10), "a first sample", |m| m.get(n::TARGET_PROCESSES, &[]) == Some(1.0));
    let mut lw = lw;
    signal(lw.child.id() as i32, "INT");
    let status = wait_timeout(&mut lw.child, Duration::from_secs(15)).expect("leakwatch exits after SIGINT");
    assert_eq!(status.code(), Some(130));
}

#[test]
fn a_command_that_exits_at_once_leaves_no_sample_error_in_the_log() {
    let out = run_to_exit(&["--listen", "127.0.0.1:0", "--interval", "100ms", "run", "--", "false"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("sample error") && !stderr.contains("not found"), "{stderr}");
}
