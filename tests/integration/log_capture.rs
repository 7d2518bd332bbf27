//! `leakwatch run`: the wrapped command's stdout and stderr reach leakwatch's own streams
//! unchanged and are counted as the `stdout` and `stderr` sources; all of it is drained before
//! leakwatch exits with the command's code.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{binary, http_get, wait_timeout, Metrics, TempDir};
use leakwatch::metric_names as n;

/// leakwatch in run mode with both streams piped; stderr lines arrive on the channel.
struct Wrapped {
    child: Child,
    stderr: mpsc::Receiver<String>,
    /// stderr lines read before the listening line (the command may write before it).
    early: Vec<String>,
}

impl Wrapped {
    fn start(script: &str) -> Wrapped {
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--interval", "200ms", "run", "--", "sh", "-c", script])
            .env_remove("LEAKWATCH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn leakwatch");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Wrapped { child, stderr: rx, early: Vec::new() }
    }

    fn addr(&mut self) -> SocketAddr {
        loop {
            let line = self.stderr.recv_timeout(Duration::from_secs(20)).expect("leakwatch reports its address");
            if let Some(rest) = line.split("local=").nth(1) {
                return rest.split_whitespace().next().expect("address").parse().expect("socket address");
            }
            self.early.push(line);
        }
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn log_capture_streams_are_forwarded_unchanged_and_counted() {
    let dir = TempDir::new("capture");
    let go = dir.path().join("go");
    let script = format!(
        "echo out; printf 'two\\r\\nno newline'; echo err >&2; while [ ! -e {} ]; do sleep 0.05; done; exit 7",
        go.display()
    );
    let mut w = Wrapped::start(&script);
    let addr = w.addr();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = Metrics::parse(&http_get(addr, "/metrics").1);
        let lines = |s: &str| m.get(n::LOG_LINES_TOTAL, &[("source", s)]);
        if lines("stdout") == Some(2.0) && lines("stderr") == Some(1.0) {
            assert_eq!(m.get(n::LOG_BYTES_TOTAL, &[("source", "stdout")]), Some(19.0));
            assert_eq!(m.label_values(n::LOG_SOURCE_INFO, "kind"), vec!["stdout", "stderr"]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "stdout/stderr lines not counted:\n{}", m.text);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(&go, b"").unwrap();
    let status = wait_timeout(&mut w.child, Duration::from_secs(20)).expect("leakwatch exits with the command");
    assert_eq!(status.code(), Some(7));
    let mut out = Vec::new();
    w.child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(out, b"out\ntwo\r\nno newline", "stdout forwarded byte for byte");
    // The command starts before leakwatch logs its address, so its line may come first; the rest
    // is read to the end of the stream (leakwatch has exited).
    let rest: Vec<String> = w.early.drain(..).chain(w.stderr.iter()).collect();
    assert!(rest.iter().any(|l| l == "err"), "stderr forwarded: {rest:?}");
}

#[test]
fn log_capture_everything_is_drained_before_exit() {
    // 20 MiB written as fast as possible, then an immediate exit.
    let script = "head -c 20971520 /dev/zero | tr '\\0' 'x' | fold -w 1000; exit 3";
    let reference = Command::new("sh").args(["-c", script]).output().expect("run the script directly");
    let mut w = Wrapped::start(script);
    let mut out = Vec::new();
    w.child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = wait_timeout(&mut w.child, Duration::from_secs(30)).expect("leakwatch exits");
    assert_eq!(status.code(), Some(3));
    assert!(reference.stdout.len() > 20 << 20);
    assert!(out == reference.stdout, "forwarded {} bytes, the command wrote {}", out.len(), reference.stdout.len());
}
