//! `leakwatch logs SOURCE`: the last lines of a running leakwatch, and `--follow` through a
//! connection that is cut mid-stream: the follower reconnects and resumes with no line skipped or
//! printed twice.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{binary, run_to_exit, wait_timeout, Leakwatch, TempDir};
use leakwatch::metric_names as n;

fn start(dir: &TempDir) -> (Leakwatch, std::path::PathBuf) {
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"").expect("create the log file");
    let lw = Leakwatch::start(&["--tail", &format!("app={}", path.display())]);
    (lw, path)
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open the log file");
    f.write_all(text.as_bytes()).expect("append to the log file");
}

fn lines(from: u64, to: u64) -> String {
    (from..=to).map(|i| format!("line {i}\n")).collect()
}

/// A loopback TCP proxy whose open connections can be cut.
struct Proxy {
    addr: SocketAddr,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(Mutex::new(Vec::new()));
        let conns = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let mut list = conns.lock().expect("proxy connection list");
                list.push(client.try_clone().expect("clone"));
                list.push(server.try_clone().expect("clone"));
                drop(list);
                for (mut from, mut to) in
                    [(client.try_clone().expect("clone"), server.try_clone().expect("clone")), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, open }
    }

    /// Cuts every open connection, as a network drop would.
    fn cut(&self) {
        for s in self.open.lock().expect("proxy connection list").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn logs_prints_the_last_lines_and_refuses_an_unknown_source() {
    let dir = TempDir::new("cli");
    let (lw, path) = start(&dir);
    append(&path, &lines(1, 30));
    append(&path, "colour \x1b[31mred\x1b[0m\n");
    lw.wait_for(Duration::from_secs(10), "31 lines", |m| m.get(n::LOG_LINES_TOTAL, &[("source", "app")]) == Some(31.0));
    let server = format!("http://{}", lw.addr);
    let out = run_to_exit(&["logs", "app", "-n", "3", "--server", &server]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line 29\nline 30\ncolour \\x1b[31mred\\x1b[0m\n",
        "escaped by default"
    );
    let out = run_to_exit(&["logs", "app", "-n", "1", "--raw", "--server", &server]);
    assert_eq!(out.stdout, b"colour \x1b[31mred\x1b[0m\n");
    let out = run_to_exit(&["logs", "app", "-n", "2", "--contains", "line 1", "--server", &server]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line 18\nline 19\n");
    let out = run_to_exit(&["logs", "nope", "--server", &server]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no log source \"nope\"") && stderr.contains("sources: app"), "{stderr}");
    let out = run_to_exit(&["logs", "app", "--regex", "(", "--server", &server]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("regex: not a valid regex"), "{out:?}");
    let out = run_to_exit(&["logs", "app", "--server", "ftp://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(64));
    let out = run_to_exit(&["logs", "app", "--server", &server, "--cacert", "/etc/ssl/certs/ca-certificates.crt"]);
    assert_eq!(out.status.code(), Some(64), "--cacert needs an https:// server");
}

#[test]
fn follow_reconnects_after_a_drop_and_resumes_without_gap_or_duplicate() {
    let dir = TempDir::new("cli-follow");
    let (lw, path) = start(&dir);
    let proxy = Proxy::start(lw.addr);
    let mut follower = Command::new(binary())
        .args(["logs", "app", "--follow", "--lines", "1000", "--server", &format!("http://{}", proxy.addr)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the follower");
    let (tx, rx) = mpsc::channel();
    let stdout = follower.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = follower.stderr.take().expect("piped stderr");
    let notes = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    let mut printed = Vec::new();
    let read_to = |last: &str, printed: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while printed.last().map(String::as_str) != Some(last) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no {last:?}; printed so far: {printed:?}"));
            printed.push(line);
        }
    };
    append(&path, &lines(1, 200));
    read_to("line 200", &mut printed);
    proxy.cut();
    append(&path, &lines(201, 400));
    read_to("line 400", &mut printed);
    let expected: Vec<String> = (1..=400).map(|i| format!("line {i}")).collect();
    assert_eq!(printed, expected, "every line once, in order, across the drop");
    let _ = follower.kill();
    let _ = wait_timeout(&mut follower, Duration::from_secs(5));
    let notes = notes.join().expect("stderr reader");
    assert!(notes.iter().any(|n| n.contains("reconnecting")), "{notes:?}");
}
