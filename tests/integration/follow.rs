//! A target that is killed and restarted is followed: by pidfile and by command-line regex.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Leakwatch, Metrics, TempDir};
use leakwatch::metric_names as n;

/// A `sleep` child, killed on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start(args: &[&str]) -> Sleeper {
        Sleeper(Command::new("sleep").args(args).stdin(Stdio::null()).spawn().expect("spawn sleep"))
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pids(m: &Metrics) -> Vec<String> {
    m.label_values(n::TARGET_PROCESS_INFO, "pid")
}

/// Waits until `pid` is the only target process with RSS reported; returns the changes counter.
fn wait_for_pid(lw: &Leakwatch, pid: &str) -> f64 {
    // Two intervals are 400 ms; the wait allows for a loaded machine.
    let m = lw.wait_for(Duration::from_secs(5), &format!("pid {pid} as the target"), |m| {
        pids(m) == vec![pid.to_owned()] && m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[]).is_some()
    });
    assert!(m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[]).expect("RSS") > 0.0);
    m.get(n::TARGET_CHANGES_TOTAL, &[]).expect("changes counter")
}

#[test]
fn a_restarted_target_is_followed_through_its_pidfile() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.path().join("app.pid");
    let first = Sleeper::start(&["600"]);
    std::fs::write(&pidfile, format!("{}\n", first.pid())).unwrap();
    let lw = Leakwatch::start(&["--pidfile", pidfile.to_str().unwrap(), "--target-name", "app"]);
    let before = wait_for_pid(&lw, &first.pid());

    drop(first);
    let second = Sleeper::start(&["600"]);
    std::fs::write(&pidfile, format!("{}\n", second.pid())).unwrap();
    let after = wait_for_pid(&lw, &second.pid());
    assert!(after > before, "changes_total went from {before} to {after}");
}

#[test]
fn a_restarted_target_is_followed_by_its_command_line() {
    let marker = format!("6{:05}", std::process::id() % 100_000);
    // `sleep 600.MARKER` sleeps 600 s; the marker makes the command line unique to this test.
    let arg = format!("600.{marker}");
    let first = Sleeper::start(&[&arg]);
    let regex = format!("^sleep 600\\.{marker}$");
    let lw = Leakwatch::start(&["--cmdline-regex", &regex, "--target-name", "app"]);
    let before = wait_for_pid(&lw, &first.pid());

    drop(first);
    let second = Sleeper::start(&[&arg]);
    let after = wait_for_pid(&lw, &second.pid());
    assert!(after > before, "changes_total went from {before} to {after}");
}
