//! What one socket sample costs at 0, 1 000 and 10 000 open connections, next to the raw read of
//! the `/proc/net` tables that the fallback parses, all measured in the same run.
//!
//! ```text
//! cargo bench --bench conn_sample
//! ```
//!
//! For each size N a python3 server accepts N loopback connections from a python3 client (the
//! target, holding N sockets; the namespace then holds 2N + 1). Every iteration runs, interleaved
//! (so drift in the machine's load hits them alike):
//!
//! - **raw /proc/net read**: `std::fs::read` of `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}` of the
//!   target, no parsing: the floor of the fallback;
//! - **fd scan**: `sample::fds::scan` of the target's `/proc/PID/fd` (a `readlinkat` per
//!   descriptor). A pass does it once per process for the descriptor counts by kind, and the same
//!   scan yields the socket inodes; both socket paths need it equally, so it is shown on its own;
//! - **socket sample, sock_diag** (the default path): `ConnSampler::sample` with `method: auto`
//!   (netlink dumps of the tables: TCP of both families in one dump, then UDP, UDP6, unix; inode
//!   match, a peer group, the first-seen map);
//! - **socket sample, /proc/net** (the fallback): `ConnSampler::sample` with `method: proc_net`
//!   (streaming parse of the five files, the same matching).
//!
//! It prints medians and p90s, each path ÷ the raw read (also with the fd scan added), and the
//! growth from 1 000 to 10 000 connections (linear ≈ 10×, quadratic ≈ 100×). Iterations default to 200 after 20 warm-up
//! passes (`LEAKWATCH_BENCH_ITERS` overrides). Without `--bench` (under
//! `cargo test --all-targets`) it runs a few iterations at 0 and 100 connections as a smoke test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leakwatch::parse::sockets::Protocol;
use leakwatch::roots::Roots;
use leakwatch::sample::conns::{ConnSampler, ConnSettings, MethodChoice, PeerSpec};
use leakwatch::sample::fds;
use leakwatch::snapshot::{ErrorCounts, SockState, SocketMethod};

mod common;
use common::{human, ratio, Run, Stats};

const DEFAULT_ITERATIONS: usize = 200;
const WARM_UP: usize = 20;
const SMOKE_ITERATIONS: usize = 3;

/// Accepts connections forever and holds them; prints its port, then `ready`.
const SERVER: &str = r#"
import socket, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen(4096)
print(l.getsockname()[1], flush=True)
held = []
def accept():
    while True:
        held.append(l.accept()[0])
threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"#;

/// Opens argv[2] connections to 127.0.0.1:argv[1] and holds them.
const CLIENT: &str = r#"
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
print("ready", flush=True)
time.sleep(3600)
"#;

fn main() {
    let Run { benching, iterations, warm_up } = Run::from_args(DEFAULT_ITERATIONS, 5, WARM_UP, SMOKE_ITERATIONS);
    let sizes: &[usize] = if benching { &[0, 1_000, 10_000] } else { &[0, 100] };
    println!(
        "conn_sample: {iterations} iterations after {warm_up} warm-up per size{}",
        if benching { "" } else { " (smoke run: `cargo bench --bench conn_sample` to measure)" }
    );
    let mut results = Vec::new();
    for &n in sizes {
        let Some(server) = Py::start(SERVER, &[]) else {
            println!("python3 is needed for this benchmark; nothing measured");
            return;
        };
        let port = server.first_line.clone();
        let client = Py::start(CLIENT, &[&port, &n.to_string()]).expect("start the client");
        results.push(measure(n, port.parse().expect("port"), client.pid(), iterations, warm_up));
        drop(client);
        drop(server);
    }
    report(&results);
}

struct Measured {
    connections: usize,
    raw: Stats,
    fd_scan: Stats,
    diag: Stats,
    proc_net: Stats,
    raw_bytes: usize,
}

fn measure(n: usize, port: u16, pid: i32, iterations: usize, warm_up: usize) -> Measured {
    let roots = Roots::default();
    let settings = |method| ConnSettings {
        method,
        peers: vec![PeerSpec { name: "server".into(), remote_port: port, remote_address: None, limit: 20_000 }],
        stale_after: Duration::from_secs(3600),
        max_tracked: 65_536,
    };
    let mut diag = ConnSampler::new(settings(MethodChoice::Auto), &roots);
    let mut proc_net = ConnSampler::new(settings(MethodChoice::ProcNet), &roots);
    let fd_dir = roots.pid(pid).join("fd");
    let tables: Vec<_> = Protocol::ALL.iter().map(|p| roots.pid(pid).join("net").join(p.as_str())).collect();
    let mut errors = ErrorCounts::default();
    let (mut raw, mut scan, mut d, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut raw_bytes = 0;
    for i in 0..warm_up + iterations {
        let t = Instant::now();
        raw_bytes = tables.iter().map(|f| std::fs::read(f).map(|b| b.len()).unwrap_or(0)).sum();
        let raw_took = t.elapsed();

        let t = Instant::now();
        let scanned = std::hint::black_box(fds::scan(&fd_dir).expect("the client's fds"));
        let scan_took = t.elapsed();
        let mut inodes = scanned.socket_inodes.clone();
        inodes.sort_unstable();
        inodes.dedup();

        let t = Instant::now();
        let by_diag = std::hint::black_box(diag.sample(&roots, pid, &inodes, &mut errors));
        let diag_took = t.elapsed();

        let t = Instant::now();
        let by_proc = std::hint::black_box(proc_net.sample(&roots, pid, &inodes, &mut errors));
        let proc_took = t.elapsed();

        let established = |s: &leakwatch::snapshot::SocketSample| {
            s.peers[0].by_state.get(&SockState::Established).copied().unwrap_or(0) as usize
        };
        assert_eq!(established(&by_diag), n, "sock_diag counts every connection");
        assert_eq!(established(&by_proc), n, "/proc/net counts every connection");
        assert!(by_diag.methods.values().all(|m| *m == SocketMethod::SockDiag), "{:?}", by_diag.methods);
        assert_eq!(scanned.socket_inodes.len(), n);
        if i >= warm_up {
            raw.push(raw_took);
            scan.push(scan_took);
            d.push(diag_took);
            p.push(proc_took);
        }
    }
    assert_eq!(errors.iter().count(), 0, "{errors:?}");
    Measured {
        connections: n,
        raw: Stats::of(raw),
        fd_scan: Stats::of(scan),
        diag: Stats::of(d),
        proc_net: Stats::of(p),
        raw_bytes,
    }
}

fn report(results: &[Measured]) {
    println!();
    println!(
        "{:>11} {:<32} {:>10} {:>10} {:>13} {:>10}",
        "connections", "operation", "median", "p90", "x raw median", "x raw p90"
    );
    println!("{}", "-".repeat(92));
    for r in results {
        for (op, s) in [
            ("raw /proc/net read (5 files)", r.raw),
            ("fd scan (readlinkat per fd)", r.fd_scan),
            ("socket sample, sock_diag", r.diag),
            ("socket sample, /proc/net", r.proc_net),
        ] {
            println!(
                "{:>11} {:<32} {:>10} {:>10} {:>13} {:>10}",
                r.connections,
                op,
                human(s.median),
                human(s.p90),
                ratio(s.median, r.raw.median, 3),
                ratio(s.p90, r.raw.p90, 3)
            );
        }
        let with_scan = |s: Stats| ratio(s.median + r.fd_scan.median, r.raw.median, 3);
        println!(
            "{:>11} ({} bytes of /proc/net text; with the fd scan added: sock_diag {}, /proc/net {} × raw)",
            "",
            r.raw_bytes,
            with_scan(r.diag),
            with_scan(r.proc_net)
        );
    }
    if let [zero, small, big, ..] = results {
        println!("\ngrowth from {} to {} connections (cost above the 0-connection case; linear ≈ {:.0}×, quadratic ≈ {:.0}×):",
            small.connections, big.connections,
            big.connections as f64 / small.connections as f64,
            (big.connections as f64 / small.connections as f64).powi(2));
        for (op, z, s, b) in [
            ("raw /proc/net read", zero.raw, small.raw, big.raw),
            ("fd scan", zero.fd_scan, small.fd_scan, big.fd_scan),
            ("socket sample, sock_diag", zero.diag, small.diag, big.diag),
            ("socket sample, /proc/net", zero.proc_net, small.proc_net, big.proc_net),
        ] {
            let above = |x: Stats| (x.median.as_secs_f64() - z.median.as_secs_f64()).max(1e-9);
            println!("  {op:<26} {:>6.1}×", above(b) / above(s));
        }
        println!(
            "\ndefault path (sock_diag) at {} connections: {} of the raw /proc/net read (target: ≤ 0.20)",
            small.connections,
            ratio(small.diag.median, small.raw.median, 3)
        );
    }
}

/// A python3 helper in its own process group; the group is killed on drop.
struct Py {
    child: Child,
    first_line: String,
}

impl Py {
    fn start(script: &str, args: &[&str]) -> Option<Py> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .ok()?;
        let mut out = BufReader::new(child.stdout.take()?);
        let mut py = Py { child, first_line: String::new() };
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim().to_owned();
            if line == "ready" {
                return Some(py);
            }
            if py.first_line.is_empty() {
                py.first_line = line;
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}
