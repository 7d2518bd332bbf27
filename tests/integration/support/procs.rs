//! Python helper processes in their own process group, killed with everything they spawned on drop.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A `python3 -c SCRIPT ARGS...` in a new process group. The script prints `ready` (possibly
/// after other lines) once set up; it is killed, with its whole group, on drop.
pub struct PyProc {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
}

impl PyProc {
    /// Starts the script and waits for its `ready` line; lines before it are returned.
    pub fn start(script: &str, args: &[&str]) -> (PyProc, Vec<String>) {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn python3 (the tests need python3)");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut p = PyProc { child, stdout };
        let before = p.read_until("ready");
        (p, before)
    }

    /// Reads lines until one equals `marker`; returns the lines before it.
    pub fn read_until(&mut self, marker: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read helper output");
            assert!(n > 0, "the helper exited before printing {marker:?} (after {lines:?})");
            if line.trim() == marker {
                return lines;
            }
            lines.push(line.trim().to_owned());
        }
    }

    /// Sends a line to the script's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).expect("write to helper");
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for PyProc {
    fn drop(&mut self) {
        // The group id is the leader's pid: this kills every worker the script started.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = super::wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}
