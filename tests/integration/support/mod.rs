//! Test helpers: start leakwatch, scrape it, parse the exposition, spawn target processes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running leakwatch on a loopback port; killed (SIGTERM, then SIGKILL) on drop.
pub struct Leakwatch {
    pub child: Child,
    pub addr: SocketAddr,
    /// stderr lines after the listening line, as they arrive.
    pub log: mpsc::Receiver<String>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_leakwatch")
}

/// The release build, for tests that measure leakwatch's memory as it ships (a debug build's
/// code pages alone are several MiB more). `tests/run.sh` builds it and sets
/// `LEAKWATCH_RELEASE_BIN`; missing, the test fails (it never falls back to the debug build).
pub fn release_binary() -> PathBuf {
    let path =
        std::env::var_os("LEAKWATCH_RELEASE_BIN").filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
            panic!("LEAKWATCH_RELEASE_BIN is not set: run `bash tests/run.sh`, which builds target/release/leakwatch")
        });
    assert!(path.is_file(), "LEAKWATCH_RELEASE_BIN={} is not a file", path.display());
    path
}

impl Leakwatch {
    /// Starts `leakwatch ARGS` with `--listen 127.0.0.1:0 --interval 200ms` prepended (the
    /// interval only when ARGS has none).
    pub fn start(args: &[&str]) -> Leakwatch {
        Self::start_cmd(Command::new(binary()), args)
    }

    /// Starts leakwatch from a prepared command (e.g. with a different user or env).
    pub fn start_cmd(cmd: Command, args: &[&str]) -> Leakwatch {
        Self::start_cmd_every(cmd, "200ms", args)
    }

    /// Starts leakwatch from a prepared command, sampling every `interval` (an `--interval` in
    /// `args` wins).
    pub fn start_cmd_every(mut cmd: Command, interval: &str, args: &[&str]) -> Leakwatch {
        cmd.args(["--listen", "127.0.0.1:0"]);
        if !args.contains(&"--interval") {
            cmd.args(["--interval", interval]);
        }
        cmd.args(args).env_remove("LEAKWATCH_CONFIG").stdout(Stdio::inherit()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn leakwatch");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[leakwatch] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                let status = child.try_wait();
                panic!("leakwatch did not report its address (exit status: {status:?})")
            });
            if let Some(rest) = line.split("local=").nth(1) {
                let addr = rest.split_whitespace().next().expect("address after local=");
                break addr.parse().expect("socket address");
            }
        };
        Leakwatch { child, addr, log: rx }
    }

    /// Receives leakwatch's stderr lines until one satisfies `pred`, up to `timeout`; returns
    /// every line received, the matching one last. Lines come through a pipe and a thread, so
    /// they can arrive after a scrape that already shows the same event.
    pub fn log_until(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let done = pred(&line);
                    lines.push(line);
                    if done {
                        return lines;
                    }
                }
                Err(_) => panic!("no log line {what} in {timeout:?}; lines received:\n{}", lines.join("\n")),
            }
        }
    }

    /// GETs a path; returns (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
    }

    /// Scrapes /metrics with the detail families (every figure) and parses it.
    pub fn scrape(&self) -> Metrics {
        let (status, body) = self.get("/metrics?detail=1");
        assert_eq!(status, 200, "/metrics answered {status}: {body}");
        Metrics::parse(&body)
    }

    /// Scrapes until `pred` holds, up to `timeout`; returns the scrape that satisfied it.
    pub fn wait_for(&self, timeout: Duration, what: &str, pred: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.scrape();
            if pred(&m) {
                return m;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}; last scrape:\n{}", m.text);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(self.child.id() as i32, "TERM");
        wait_timeout(&mut self.child, Duration::from_secs(15)).expect("leakwatch exits after SIGTERM")
    }
}

impl Drop for Leakwatch {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id() as i32, "TERM");
            if wait_timeout(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Sends a signal by name with kill(1).
pub fn signal(pid: i32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Waits for a child to exit, up to `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs leakwatch with `args` (no config from the environment) until it exits, up to 20 s.
pub fn run_to_exit(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("LEAKWATCH_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn leakwatch");
    if wait_timeout(&mut child, Duration::from_secs(20)).is_none() {
        let _ = child.kill();
        panic!("leakwatch {args:?} did not exit");
    }
    child.wait_with_output().expect("output")
}

/// A minimal HTTP/1.0 GET (no client dependency needed for loopback tests).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status code");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// One parsed sample: (name, labels, value).
pub type Sample = (String, Vec<(String, String)>, f64);

/// A parsed exposition: (name, labels, value) per sample.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = value.parse().expect("numeric value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Metrics { text: text.to_owned(), samples }
    }

    /// The value of the first sample of `name` whose labels include all of `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.all(name, labels).first().map(|(_, v)| *v)
    }

    /// Every sample of `name` whose labels include all of `labels`. `name` may carry matchers
    /// as PromQL writes them (`leakwatch_process_memory_bytes{kind="resident"}`): they are added
    /// to `labels`.
    pub fn all(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(Vec<(String, String)>, f64)> {
        let (name, inline) = match name.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (name, Vec::new()),
        };
        let has = |l: &[(String, String)], k: &str, v: &str| l.iter().any(|(lk, lv)| lk == k && lv == v);
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| has(l, k, v)) && inline.iter().all(|(k, v)| has(l, k, v))
            })
            .map(|(_, l, v)| (l.clone(), *v))
            .collect()
    }

    /// The label value `key` of the samples of `name`.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        self.all(name, &[])
            .into_iter()
            .filter_map(|(l, _)| l.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
            .collect()
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// A process that allocates and touches `mib` MiB, prints `ready`, then sleeps until killed.
/// Killed on drop.
pub struct MemHog {
    pub child: Child,
}

impl MemHog {
    pub fn start(mib: u64) -> MemHog {
        Self::start_with(Command::new("python3"), mib)
    }

    /// Starts from a prepared command whose program is (or execs) python3.
    pub fn start_with(cmd: Command, mib: u64) -> MemHog {
        Self::start_with_arg(cmd, mib, "hog")
    }

    /// Like `start_with`, with `arg` as the script's argument (visible in the command line).
    pub fn start_with_arg(mut cmd: Command, mib: u64, arg: &str) -> MemHog {
        let script =
            format!("import sys,time\nb=bytearray(b'\\x01')*({mib}<<20)\nprint('ready',flush=True)\ntime.sleep(600)\n");
        cmd.args(["-c", &script, arg]).stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn python3 (the tests need python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read ready");
        assert_eq!(line.trim(), "ready", "memhog did not start");
        MemHog { child }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for MemHog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process in bytes, read directly.
pub fn vmrss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("leakwatch-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
pub mod cgroup;
pub mod http;
pub mod logwriter;
pub mod pod;
pub mod procs;
pub mod prometheus;
