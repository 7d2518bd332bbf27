//! Sockets of real targets on loopback: peer groups counted exactly, CLOSE_WAIT after the server
//! side closes, accept-queue depth while connections are pending, IPv4 and IPv6, and the
//! `sock_diag` and `/proc/net` readings of the same sockets agreeing.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use leakwatch::roots::Roots;
use leakwatch::sample::conns::{ConnSampler, ConnSettings, MethodChoice};
use leakwatch::sample::fds;
use leakwatch::snapshot::{ErrorCounts, SocketMethod, SocketSample};

use crate::support::procs::PyProc;
use crate::support::{Leakwatch, Metrics, TempDir};
use leakwatch::metric_names as n;

/// Connects `count` TCP connections to each `host,port,count` argument, then sleeps.
const CLIENT: &str = r#"
import socket, sys, time
held = []
for spec in sys.argv[1:]:
    host, port, count = spec.split(",")
    for _ in range(int(count)):
        held.append(socket.create_connection((host, int(port))))
print("ready", flush=True)
time.sleep(600)
"#;

/// Listens on 127.0.0.1 and ::1 with a backlog of 16 and never accepts; prints both ports.
const NO_ACCEPT: &str = r#"
import socket, time
a = socket.socket(socket.AF_INET); a.bind(("127.0.0.1", 0)); a.listen(16)
b = socket.socket(socket.AF_INET6); b.bind(("::1", 0)); b.listen(16)
print(a.getsockname()[1]); print(b.getsockname()[1])
print("ready", flush=True)
time.sleep(600)
"#;

/// A mix of every table: TCP v4/v6 connections and listeners (one with a pending connection),
/// UDP v4/v6 bound and connected sockets, unix stream, datagram and listening sockets.
const MIX: &str = r#"
import os, socket, tempfile, time
keep = []
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    l = socket.socket(fam); l.bind((host, 0)); l.listen(8); keep.append(l)
    for _ in range(3):
        c = socket.socket(fam); c.connect(l.getsockname()); keep.append(c)
    keep.append(l.accept()[0]); keep.append(l.accept()[0])
    u = socket.socket(fam, socket.SOCK_DGRAM); u.bind((host, 0)); keep.append(u)
    v = socket.socket(fam, socket.SOCK_DGRAM); v.connect(u.getsockname()); keep.append(v)
keep.extend(socket.socketpair())
keep.extend(socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM))
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "s")
ul = socket.socket(socket.AF_UNIX); ul.bind(path); ul.listen(4); keep.append(ul)
os.unlink(path); os.rmdir(tmp)
print("ready", flush=True)
time.sleep(600)
"#;

/// Accepts exactly `n` connections in a thread and hands them back.
fn accept_n(listener: TcpListener, n: usize) -> JoinHandle<Vec<TcpStream>> {
    std::thread::spawn(move || (0..n).map(|_| listener.accept().expect("accept").0).collect())
}

fn write_config(dir: &TempDir, yaml: &str) -> PathBuf {
    let path = dir.path().join("leakwatch.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn peer(m: &Metrics, peer: &str, state: &str) -> Option<f64> {
    m.get(n::PEER_CONNECTIONS, &[("peer", peer), ("state", state)])
}

#[test]
fn three_hundred_connections_are_counted_exactly_then_close_wait_after_the_server_closes() {
    let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
    let v6 = TcpListener::bind("[::1]:0").expect("bind v6");
    let (p4, p6) = (v4.local_addr().unwrap().port(), v6.local_addr().unwrap().port());
    let (a4, a6) = (accept_n(v4, 300), accept_n(v6, 40));
    let (client, _) = PyProc::start(CLIENT, &[&format!("127.0.0.1,{p4},300"), &format!("::1,{p6},40")]);
    let (server4, server6) = (a4.join().expect("acceptor"), a6.join().expect("acceptor"));

    let dir = TempDir::new("conns-peer");
    let config = write_config(
        &dir,
        &format!(
            "connections:\n  stale_after: 2s\n  peers:\n    - name: pool\n      remote_port: {p4}\n      limit: 400\n    - name: pool6\n      remote_port: {p6}\n      remote_address: '::1'\n      limit: 40\n    - name: other\n      remote_port: 1\n      limit: 5\n"
        ),
    );
    let pid = client.pid().to_string();
    let started = std::time::Instant::now();
    let lw = Leakwatch::start(&["--config", config.to_str().unwrap(), "--pid", &pid, "--target-name", "client"]);
    let m = lw.wait_for(Duration::from_secs(20), "300 + 40 established", |m| {
        peer(m, "pool", "established") == Some(300.0) && peer(m, "pool6", "established") == Some(40.0)
    });
    if started.elapsed() < Duration::from_secs(2) {
        assert_eq!(m.get(n::CONN_STALE_SOCKETS, &[]), Some(0.0), "seen for less than stale_after");
    }
    let sockets = |m: &Metrics, protocol: &str, state: &str| {
        m.get(n::CONN_SOCKETS, &[("target", "client"), ("protocol", protocol), ("state", state)])
    };
    assert_eq!(sockets(&m, "tcp", "established"), Some(300.0), "IPv4 connections of the client\n{}", m.text);
    assert_eq!(sockets(&m, "tcp6", "established"), Some(40.0), "IPv6 connections of the client");
    assert_eq!(m.get(n::PEER_UTILIZATION_RATIO, &[("peer", "pool")]), Some(0.75));
    assert_eq!(m.get(n::PEER_UTILIZATION_RATIO, &[("peer", "pool6")]), Some(1.0));
    assert_eq!(m.get(n::PEER_CONNECTIONS_LIMIT, &[("peer", "pool")]), Some(400.0));
    assert_eq!(m.get(n::PEER_UTILIZATION_RATIO, &[("peer", "other")]), Some(0.0));
    assert!(m.all(n::PEER_CONNECTIONS, &[("peer", "other")]).is_empty());
    assert_eq!(m.get(n::FD_OPEN, &[("kind", "socket")]), Some(340.0));
    for protocol in ["tcp", "tcp6", "udp", "udp6", "unix"] {
        let labels = [("protocol", protocol), ("method", "sock_diag")];
        assert_eq!(m.get(n::CONN_SOURCE_INFO, &labels), Some(1.0), "{protocol} read by sock_diag");
    }
    // The server ends live in this process, not the target: the namespace sees both sides.
    let netns = m.get(n::CONN_NETNS_SOCKETS, &[("protocol", "tcp"), ("state", "established")]);
    assert!(netns.is_some_and(|n| n >= 600.0), "both ends in the namespace table: {netns:?}");

    drop(server4);
    drop(server6);
    let m = lw.wait_for(Duration::from_secs(20), "close_wait on the client side", |m| {
        peer(m, "pool", "close_wait") == Some(300.0) && peer(m, "pool6", "close_wait") == Some(40.0)
    });
    assert_eq!(peer(&m, "pool", "established"), None, "nothing is left established");
    assert_eq!(sockets(&m, "tcp", "close_wait"), Some(300.0));
    assert_eq!(sockets(&m, "tcp6", "close_wait"), Some(40.0));
    assert_eq!(m.get(n::PEER_UTILIZATION_RATIO, &[("peer", "pool")]), Some(0.75), "close_wait holds a slot");
    // Held for more than connections.stale_after: every connection is stale, per peer group too.
    let m = lw.wait_for(Duration::from_secs(20), "stale connections", |m| {
        m.get(n::CONN_STALE_SOCKETS, &[("target", "client")]) == Some(340.0)
    });
    assert_eq!(m.get(n::PEER_STALE_CONNECTIONS, &[("peer", "pool")]), Some(300.0));
    assert_eq!(m.get(n::PEER_STALE_CONNECTIONS, &[("peer", "pool6")]), Some(40.0));
    assert_eq!(m.get(n::CONN_TRACKED_SOCKETS, &[]), Some(340.0));
    assert_eq!(m.get(n::CONN_UNTRACKED_SOCKETS, &[]), Some(0.0));
    assert!(m.all(n::SAMPLE_ERRORS_TOTAL, &[]).is_empty(), "no errors: {:?}", m.all(n::SAMPLE_ERRORS_TOTAL, &[]));
}

#[test]
fn accept_queue_depth_is_reported_while_connections_are_pending() {
    let (server, ports) = PyProc::start(NO_ACCEPT, &[]);
    let pending: Vec<TcpStream> = ports
        .iter()
        .zip([5, 3])
        .flat_map(|(port, n)| {
            let host = if n == 5 { "127.0.0.1" } else { "[::1]" };
            (0..n).map(move |_| TcpStream::connect(format!("{host}:{port}")).expect("connect to the listener"))
        })
        .collect();
    let pid = server.pid().to_string();
    for method in ["auto", "proc_net"] {
        let dir = TempDir::new("conns-queue");
        let config = write_config(&dir, &format!("connections:\n  method: {method}\n"));
        let lw = Leakwatch::start(&["--config", config.to_str().unwrap(), "--pid", &pid, "--target-name", "srv"]);
        let m = lw.wait_for(Duration::from_secs(15), "accept queue figures", |m| {
            m.get(n::CONN_ACCEPT_QUEUE_LENGTH, &[("protocol", "tcp6")]).is_some()
        });
        let q = |name: &str, protocol: &str| m.get(name, &[("target", "srv"), ("protocol", protocol)]);
        assert_eq!(q(n::CONN_ACCEPT_QUEUE_LENGTH, "tcp"), Some(5.0), "{method}: 5 pending on IPv4\n{}", m.text);
        assert_eq!(q(n::CONN_ACCEPT_QUEUE_LENGTH, "tcp6"), Some(3.0), "{method}: 3 pending on IPv6");
        let listen = m.get(n::CONN_SOCKETS, &[("protocol", "tcp"), ("state", "listen")]);
        assert_eq!(listen, Some(1.0), "{method}");
        if method == "auto" {
            assert_eq!(q(n::CONN_ACCEPT_QUEUE_MAX_LENGTH, "tcp"), Some(16.0), "the listen() backlog");
            assert_eq!(m.get(n::CONN_ACCEPT_QUEUE_UTILIZATION_RATIO, &[]), Some(5.0 / 16.0));
        } else {
            assert_eq!(q(n::CONN_ACCEPT_QUEUE_MAX_LENGTH, "tcp"), None, "/proc/net has no backlog");
            assert_eq!(m.get(n::CONN_SOURCE_INFO, &[("protocol", "tcp"), ("method", "proc_net")]), Some(1.0));
        }
    }
    drop(pending);
}

fn sample(method: MethodChoice, pid: i32) -> SocketSample {
    let roots = Roots::default();
    let mut inodes = fds::scan(&roots.pid(pid).join("fd")).expect("the helper's fds").socket_inodes;
    inodes.sort_unstable();
    inodes.dedup();
    let settings = ConnSettings { method, peers: vec![], stale_after: Duration::from_secs(3600), max_tracked: 1000 };
    let mut errors = ErrorCounts::default();
    let s = ConnSampler::new(settings, &roots).sample(&roots, pid, &inodes, &mut errors);
    assert_eq!(errors.iter().count(), 0, "{method:?}: {errors:?}");
    s
}

#[test]
fn sock_diag_and_proc_net_agree_on_every_table() {
    let (mix, _) = PyProc::start(MIX, &[]);
    let diag = sample(MethodChoice::Auto, mix.pid());
    let proc = sample(MethodChoice::ProcNet, mix.pid());
    assert!(diag.methods.values().all(|m| *m == SocketMethod::SockDiag), "{:?}", diag.methods);
    assert!(proc.methods.values().all(|m| *m == SocketMethod::ProcNet), "{:?}", proc.methods);
    assert_eq!(diag.methods.len(), 5);
    assert_eq!(diag.held, proc.held, "held sockets by table and state");
    let listeners = |s: &SocketSample| {
        let mut l: Vec<_> = s.listeners.iter().map(|l| (l.protocol, l.port, l.queued)).collect();
        l.sort();
        l
    };
    assert_eq!(listeners(&diag), listeners(&proc));
    // What the helper holds, counted independently of either reader.
    let held = |protocol: &str, state: &str| {
        diag.held.iter().find(|((p, s), _)| p.as_str() == protocol && s.as_str() == state).map(|(_, n)| *n)
    };
    for (protocol, state, n) in [
        ("tcp", "listen", 1),
        ("tcp", "established", 5),
        ("tcp6", "listen", 1),
        ("tcp6", "established", 5),
        ("udp", "close", 1),
        ("udp", "established", 1),
        ("udp6", "close", 1),
        ("udp6", "established", 1),
        ("unix", "established", 4),
        ("unix", "listen", 1),
    ] {
        assert_eq!(held(protocol, state), Some(n), "{protocol} {state} in {:?}", diag.held);
    }
    assert_eq!(listeners(&diag).iter().map(|l| l.2).collect::<Vec<_>>(), vec![1, 1], "one unaccepted connection each");
}
