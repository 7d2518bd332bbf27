//! `GET /status`, the cleanup and `leakwatch status`: the real binary watching a real python
//! target that writes a followed log file and opens loopback sockets. Spare capacity is created
//! for real (a burst of short lines, then long lines the byte cap makes room for; thousands of
//! sockets opened and closed), and a cleanup must free exactly the difference `/status` shows,
//! with no buffered line lost.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::http::get;
use crate::support::procs::PyProc;
use crate::support::{binary, run_to_exit, Leakwatch, TempDir};
use leakwatch::metric_names as n;

const TOKEN: &str = "status-test-token-0123456789";

/// Appends lines to `argv[1]` and opens/closes loopback sockets on command.
const TARGET: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
path = sys.argv[1]
socks = []
print('ready', flush=True)
for cmd in sys.stdin:
    op, n, width = cmd.split()
    n, width = int(n), int(width)
    if op == 'lines':
        with open(path, 'a') as f:
            for i in range(n):
                f.write(str(i).rjust(width, '.') + '\n')
    elif op == 'open':
        srv = socket.socket()
        srv.bind(('127.0.0.1', 0))
        srv.listen(n)
        clients = [socket.create_connection(srv.getsockname()) for _ in range(n)]
        socks = [srv] + clients + [srv.accept()[0] for _ in range(n)]
    elif op == 'close':
        for s in socks[1:]:
            s.close()
        socks = socks[:1]
    print('done', flush=True)
"#;

struct Setup {
    lw: Leakwatch,
    target: PyProc,
    _dir: TempDir,
}

impl Setup {
    /// A target writing `app.log`, and leakwatch following it with `config` (YAML, with
    /// `LOG` standing for the log path) and the admin token file.
    fn start(tag: &str, config: &str, token: bool) -> Setup {
        let dir = TempDir::new(tag);
        let log = dir.path().join("app.log");
        std::fs::write(&log, b"").expect("create the log file");
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, config.replace("LOG", &log.display().to_string())).expect("write the config");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
        let (target, _) = PyProc::start(TARGET, &[&log.display().to_string()]);
        let pid = target.pid().to_string();
        let cfg = cfg.display().to_string();
        let token_file = token_file.display().to_string();
        let mut args = vec!["--config", cfg.as_str(), "--pid", pid.as_str(), "--target-name", "app"];
        if token {
            args.extend(["--admin-token-file", token_file.as_str()]);
        }
        let lw = Leakwatch::start(&args);
        Setup { lw, target, _dir: dir }
    }

    fn command(&mut self, cmd: &str) {
        self.target.send(cmd);
        self.target.read_until("done");
    }

    fn status(&self) -> Value {
        let reply = get(self.lw.addr, "/status", &[]);
        assert_eq!(reply.status, 200, "/status: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json()
    }

    /// Polls `/status` until `pred` holds.
    fn wait_status(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.status();
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last /status:\n{v:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first `/status` whose snapshot was taken after `seq`.
    fn status_after(&self, seq: u64) -> Value {
        self.wait_status("a newer snapshot", |v| v["snapshot"]["seq"].as_u64() > Some(seq))
    }
}

/// The entry of `list` (a JSON list) for the structure `name` of `source`.
fn find<'a>(list: &'a Value, name: &str, source: Option<&str>) -> &'a Value {
    list.as_array()
        .expect("a list of structures")
        .iter()
        .find(|s| s["name"] == name && s["source"].as_str() == source)
        .unwrap_or_else(|| panic!("no structure {name} {source:?} in {list:#}"))
}

fn structure<'a>(status: &'a Value, name: &str, source: Option<&str>) -> &'a Value {
    find(&status["structures"], name, source)
}

/// The `app` source's figures (null before the first snapshot).
fn app_log(status: &Value) -> &Value {
    static NULL: Value = Value::Null;
    status["snapshot"]["logs"].as_array().and_then(|l| l.iter().find(|s| s["name"] == "app")).unwrap_or(&NULL)
}

/// A POST with an optional bearer token, over HTTP/1.0: (status, body).
fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST {path} HTTP/1.0\r\nHost: test\r\n{auth}Content-Length: 0\r\n\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status code");
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn report_entry<'a>(report: &'a Value, name: &str, source: Option<&str>) -> &'a Value {
    find(&report["structures"], name, source)
}

const BURST_CONFIG: &str = "logs:\n  sources:\n    - name: app\n      path: LOG\n      max_lines: 10000\n      max_bytes: 256KiB\n      max_line_bytes: 4KiB\ncleanup:\n  interval: 24h\n";

#[test]
fn status_has_every_section_with_the_figures_of_the_real_target() {
    let mut s = Setup::start("status-sections", BURST_CONFIG, false);
    s.command("lines 37 10");
    let v = s.wait_status("the 37 lines", |v| app_log(v)["ring"]["lines_total"] == 37);

    let lw = &v["leakwatch"];
    assert_eq!(lw["pid"].as_u64(), Some(u64::from(s.lw.child.id())), "leakwatch's own pid");
    assert_eq!(lw["version"], env!("CARGO_PKG_VERSION"));
    assert!(lw["rss_bytes"].as_u64().is_some_and(|r| r > 1 << 20), "own rss: {lw}");
    assert!(lw["uptime_seconds"].as_f64().is_some_and(|u| (0.0..60.0).contains(&u)), "{lw}");

    let snap = &v["snapshot"];
    assert!(snap["seq"].as_u64() > Some(0));
    assert!(snap["taken_at"].as_f64().is_some_and(|t| t > 1.7e9));
    assert!(snap["host"]["memory"]["total"].as_u64().is_some_and(|t| t > 1 << 28), "{}", snap["host"]);
    let target = &snap["target"];
    assert_eq!(target["name"], "app");
    assert_eq!(target["processes"][0]["pid"].as_i64(), Some(i64::from(s.target.pid())), "the real child");
    let rss = target["memory"]["rss"].as_u64().expect("target rss");
    let real = crate::support::vmrss(s.target.pid());
    assert!(rss.abs_diff(real) < 4 << 20, "target rss {rss} vs /proc {real}");
    assert!(target["cgroup"]["usage"].as_u64().is_some(), "{}", target["cgroup"]);
    assert!(target["sockets"]["held"].is_object() && target["tasks"]["children"].is_u64(), "{target:#}");
    let log = app_log(&v);
    assert_eq!((log["ring"]["lines"].as_u64(), log["ring"]["bytes"].as_u64()), (Some(37), Some(37 * 10)));
    assert_eq!(log["limits"]["max_bytes"], 256 << 10);

    for (name, source) in [
        ("log_lines", Some("app")),
        ("log_text", Some("app")),
        ("log_subscribers", Some("app")),
        ("conn_first_seen", None),
        ("conn_table_rows", None),
        ("task_first_seen", None),
        ("sample_errors", None),
        ("alert_trend_samples", None),
        ("alert_transitions", None),
        ("alert_instances", None),
        ("metrics_cache", None),
        ("log_page_budget_kib", None),
        ("history_points", None),
    ] {
        structure(&v, name, source);
    }
    let lines = structure(&v, "log_lines", Some("app"));
    assert_eq!((lines["len"].as_u64(), lines["max"].as_u64()), (Some(37), Some(10_000)));
    assert!(lines["capacity"].as_u64() >= Some(37));
    let text = structure(&v, "log_text", Some("app"));
    assert_eq!((text["len"].as_u64(), text["max"].as_u64()), (Some(370), Some(256 << 10)));
    let conns = structure(&v, "conn_first_seen", None);
    assert_eq!(conns["max"], 65_536);
    assert_eq!(conns["len"], target["sockets"]["tracked"]);
    assert_eq!(structure(&v, "task_first_seen", None)["max"], 4096);
    assert_eq!(structure(&v, "log_page_budget_kib", None)["max"], 128 << 10);

    let c = &v["cleanup"];
    assert_eq!(c["settings"]["interval"], 86_400.0);
    assert_eq!(c["settings"]["memory_threshold"], 256 << 20);
    assert_eq!(c["performed"], serde_json::json!({"interval": 0, "memory": 0, "admin": 0}));
    assert!(c["last"].is_null());

    // The server's own figures: this request's connection is open, under the caps.
    let http = &v["http"];
    assert!(http["connections_open"].as_u64() >= Some(1), "{http}");
    assert_eq!((http["connections_max"].as_u64(), http["connections_idle_max"].as_u64()), (Some(256), Some(64)));
    assert_eq!(http["page_memory_max_bytes"], 128 << 20);
    assert!(http["requests"].as_array().is_some_and(|r| !r.is_empty()), "{http}");

    // HEAD answers like GET, without a body.
    let mut conn = TcpStream::connect(s.lw.addr).expect("connect");
    write!(conn, "HEAD /status HTTP/1.0\r\nHost: test\r\n\r\n").expect("send");
    let mut raw = String::new();
    conn.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.") && raw.contains(" 200 ") && raw.contains("application/json"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "no body after the head: {raw}");
}

#[test]
fn an_admin_cleanup_frees_exactly_what_status_shows_and_keeps_every_line() {
    let mut s = Setup::start("status-cleanup", BURST_CONFIG, true);
    // A burst of short lines grows the entry buffer toward max_lines ...
    s.command("lines 10000 4");
    s.wait_status("the burst", |v| app_log(v)["ring"]["lines_total"] == 10_000);
    // ... then long lines make the byte cap evict most of them: the ring gives up at most half
    // of the entries' room by itself (the text needs it), the rest stays for a cleanup.
    s.command("lines 21 4000");
    // Thousands of sockets tracked, then closed: the first-seen map keeps its room.
    s.command("open 2000 0");
    s.wait_status("4001 tracked sockets", |v| v["snapshot"]["target"]["sockets"]["tracked"].as_u64() >= Some(4001));
    s.command("close 0 0");
    let before = s.wait_status("the long lines and the closed sockets", |v| {
        app_log(v)["ring"]["lines_total"] == 10_021 && v["snapshot"]["target"]["sockets"]["tracked"].as_u64() < Some(10)
    });
    let lines_before = structure(&before, "log_lines", Some("app")).clone();
    let conns_before = structure(&before, "conn_first_seen", None).clone();
    let (cap, len) = (lines_before["capacity"].as_u64().expect("capacity"), lines_before["len"].as_u64().expect("len"));
    assert!(cap >= 2 * len, "the burst's room: {lines_before}");
    assert!(len < 6_000, "the byte cap evicted short lines: {lines_before}");
    assert!(conns_before["capacity"].as_u64() >= Some(4001), "the sockets' room: {conns_before}");
    let page = |s: &Setup| get(s.lw.addr, "/logs/app?after_seq=0&lines=100000", &[]).json()["lines"].clone();
    let held = page(&s);
    assert_eq!(held.as_array().map(Vec::len), lines_before["len"].as_u64().map(|n| n as usize));

    let (status, body) = post(s.lw.addr, "/admin/cleanup", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).expect("the report is JSON");
    eprintln!("cleanup report: {report:#}");
    assert_eq!(report["trigger"], "admin");
    assert_eq!(report["unanswered"], serde_json::json!([]));
    assert!(report["rss_before_bytes"].as_u64().is_some() && report["rss_after_bytes"].as_u64().is_some());
    let sum: u64 =
        report["structures"].as_array().expect("list").iter().filter_map(|t| t["freed_bytes"].as_u64()).sum();
    assert_eq!(report["freed_bytes"].as_u64(), Some(sum));

    // A pass that ended after the cleanup: any seq past the one published when it answered.
    let answered = s.status()["snapshot"]["seq"].as_u64().expect("seq");
    let after = s.status_after(answered);
    for (name, source, was) in [("log_lines", Some("app"), &lines_before), ("conn_first_seen", None, &conns_before)] {
        let t = report_entry(&report, name, source);
        let now = structure(&after, name, source);
        assert_eq!(t["bytes_before"], was["bytes"], "{name}: the report's before is what /status showed");
        assert_eq!(t["bytes_after"], now["bytes"], "{name}: the report's after is what /status shows now");
        let freed = was["bytes"].as_u64().expect("bytes") - now["bytes"].as_u64().expect("bytes");
        assert_eq!(t["freed_bytes"].as_u64(), Some(freed), "{name}: freed = the difference /status shows");
        assert_eq!(t["len_before"], t["len_after"], "{name}: no live entry dropped");
        assert_eq!(now["len"], was["len"], "{name}: the same entries");
        assert!(freed > 0, "{name}: {t}");
    }
    assert!(report_entry(&report, "log_lines", Some("app"))["freed_bytes"].as_u64() > Some(20_000));
    assert_eq!(page(&s), held, "every buffered line is still there, with its sequence number");

    // The figures on /status and /metrics.
    let c = &after["cleanup"];
    assert_eq!(c["performed"]["admin"], 1);
    assert_eq!(c["freed_bytes_total"], report["freed_bytes"]);
    assert_eq!(c["last"]["at"], report["at"]);
    let m = s.lw.scrape();
    assert_eq!(m.get(n::CLEANUPS_TOTAL, &[("trigger", "admin")]), Some(1.0));
    assert_eq!(m.get(n::CLEANUP_FREED_BYTES_TOTAL, &[]), report["freed_bytes"].as_f64());
    assert_eq!(m.get(n::CLEANUP_LAST_TIMESTAMP_SECONDS, &[]), report["at"].as_f64());
    let ring_bytes = |name| structure(&after, name, Some("app"))["bytes"].as_f64().expect("bytes");
    assert_eq!(
        m.get(n::LOG_BUFFER_ALLOCATED_BYTES, &[("source", "app")]),
        Some(ring_bytes("log_lines") + ring_bytes("log_text"))
    );
    assert_eq!(
        m.get(n::STRUCTURE_ALLOCATED_BYTES, &[("structure", "conn_first_seen")]),
        structure(&after, "conn_first_seen", None)["bytes"].as_f64()
    );

    // The ring goes on: new lines get the next sequence numbers.
    s.command("lines 3 8");
    let v = s.wait_status("3 more lines", |v| app_log(v)["ring"]["lines_total"] == 10_024);
    assert_eq!(app_log(&v)["ring"]["next_seq"], 10_025);
}

#[test]
fn admin_cleanup_is_404_without_a_token_file_401_with_a_wrong_token_200_with_the_right_one() {
    let s = Setup::start("status-admin-off", BURST_CONFIG, false);
    let (status, body) = post(s.lw.addr, "/admin/cleanup", Some(TOKEN));
    assert_eq!(status, 404, "{body}");
    assert_eq!(get(s.lw.addr, "/admin/cleanup", &[]).status, 404, "no admin endpoints at all");
    drop(s);
    let s = Setup::start("status-admin-on", BURST_CONFIG, true);
    assert_eq!(post(s.lw.addr, "/admin/cleanup", None).0, 401);
    assert_eq!(post(s.lw.addr, "/admin/cleanup", Some("status-test-token-012345678X")).0, 401);
    let (status, body) = post(s.lw.addr, "/admin/cleanup", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.status()["cleanup"]["performed"]["admin"], 1, "only the authorized request cleaned up");
    let refused = get(s.lw.addr, "/admin/cleanup", &[]);
    assert_eq!(refused.status, 405, "GET is not an admin request");
    assert!(refused.headers.iter().any(|(n, v)| n == "allow" && v == "POST"), "{:?}", refused.headers);
    assert_eq!(s.status()["cleanup"]["performed"]["admin"], 1, "the GET cleaned nothing");
}

#[test]
fn interval_and_memory_triggers_fire_and_are_counted_by_trigger() {
    let config = "logs:\n  sources:\n    - name: app\n      path: LOG\ncleanup:\n  interval: 1s\n  memory_threshold: 1MiB\n  memory_cooldown: 2s\n";
    let s = Setup::start("status-triggers", config, false);
    let started = Instant::now();
    let v = s.wait_status("two interval and two memory cleanups", |v| {
        let p = &v["cleanup"]["performed"];
        p["interval"].as_u64() >= Some(2) && p["memory"].as_u64() >= Some(2)
    });
    let elapsed = started.elapsed().as_secs_f64() + 1.0; // leakwatch started before the clock
    let p = &v["cleanup"]["performed"];
    eprintln!("after {elapsed:.1} s: {p}");
    let (interval, memory) = (p["interval"].as_u64().expect("n"), p["memory"].as_u64().expect("n"));
    assert!(interval as f64 <= elapsed / 1.0 + 1.0, "{interval} interval cleanups in {elapsed:.1} s");
    // RSS is above 1 MiB on every 200 ms pass: only the 2 s cooldown holds it back.
    assert!(memory as f64 <= elapsed / 2.0 + 1.0, "{memory} memory cleanups in {elapsed:.1} s: the cooldown holds");
    assert_eq!(p["admin"], 0);
    let trigger = v["cleanup"]["last"]["trigger"].as_str().expect("a last cleanup");
    assert!(["interval", "memory"].contains(&trigger));
    let m = s.lw.scrape();
    for t in ["interval", "memory"] {
        let n = m.get(n::CLEANUPS_TOTAL, &[("trigger", t)]).expect("counted");
        assert!(n >= p[t].as_f64().expect("n"), "{t}: /metrics {n} after /status {}", p[t]);
    }
}

#[test]
fn the_status_cli_prints_a_summary_and_the_json_document() {
    let mut s = Setup::start("status-cli", BURST_CONFIG, false);
    s.command("lines 5 10");
    s.wait_status("5 lines", |v| app_log(v)["ring"]["lines_total"] == 5);
    let server = format!("http://{}", s.lw.addr);
    let out =
        Command::new(binary()).args(["status", "-v", "--server", &server]).output().expect("run leakwatch status");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        format!("pid {}", s.lw.child.id()),
        format!("target app: 1 process(es) [{}]", s.target.pid()),
        "memory       rss ".to_owned(),
        "connections ".to_owned(),
        "5 lines / 10000".to_owned(),
        "log_lines app".to_owned(),
        "conn_first_seen".to_owned(),
        "performed: interval 0, memory 0, admin 0".to_owned(),
    ] {
        assert!(text.contains(&want), "{want:?} missing");
    }
    let out = Command::new(binary())
        .args(["status", "--json"])
        .env("LEAKWATCH_SERVER", &server)
        .output()
        .expect("run leakwatch status --json");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["snapshot"]["target"]["processes"][0]["pid"].as_i64(), Some(i64::from(s.target.pid())));

    // Refused or unreachable: 1; a malformed --server: 64.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let out = run_to_exit(&["status", "--server", &format!("http://{free}")]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    let out = run_to_exit(&["status", "--server", &format!("http://{}/nothing-here", s.lw.addr)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run_to_exit(&["status", "--server", "ftp://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn bad_cleanup_values_are_config_errors_naming_the_key() {
    let dir = TempDir::new("status-badcfg");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write config");
        p
    };
    let run = |p: &Path| {
        let out = run_to_exit(&["--config", &p.display().to_string(), "--listen", "127.0.0.1:0"]);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) =
        run(&write("range.yaml", "cleanup:\n  interval: 100ms\n  memory_threshold: 512KiB\n  memory_cooldown: 48h\n"));
    assert_eq!(code, Some(64), "{err}");
    for want in [
        "cleanup.interval: must be 1s..=24h, got 100ms",
        "cleanup.memory_threshold: must be 1MiB..=1TiB (1048576..=1099511627776), got 524288",
        "cleanup.memory_cooldown: must be 1s..=24h, got 2days",
    ] {
        assert!(err.contains(want), "{want:?} missing in {err}");
    }
    let (code, err) = run(&write("unit.yaml", "cleanup:\n  memory_threshold: 256 megs\n"));
    assert_eq!(code, Some(64));
    assert!(err.contains("line 2") && err.contains("byte size"), "{err}");
    let (code, err) = run(&write("key.yaml", "cleanup:\n  every: 5m\n"));
    assert_eq!(code, Some(64));
    assert!(err.contains("every") && err.contains("line 2"), "{err}");
}

/// Waits for stderr lines of `lw` containing each of `wanted`; returns the time taken.
fn wait_log(lw: &Leakwatch, wanted: &[&str], timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut missing: Vec<&str> = wanted.to_vec();
    while !missing.is_empty() {
        let left = timeout.saturating_sub(start.elapsed());
        let line = lw.log.recv_timeout(left).unwrap_or_else(|_| panic!("no log line with {missing:?} in {timeout:?}"));
        missing.retain(|w| !line.contains(w));
    }
    start.elapsed()
}

#[test]
fn a_missing_target_and_a_missing_tail_file_are_reported_within_one_interval_and_shown() {
    let dir = TempDir::new("status-missing");
    let missing = dir.path().join("missing.log");
    let tail = format!("app={}", missing.display());
    // One interval is 10 s: both warnings come from the first pass and the tailer's first look.
    let lw = Leakwatch::start(&["--interval", "10s", "--pid", "999999", "--tail", &tail]);
    wait_log(
        &lw,
        &["target not found: no process matches pid 999999", "missing.log: no such file"],
        Duration::from_secs(10),
    );
    // The warnings are logged during the first pass; its snapshot and the alerts evaluated on it
    // are published just after (on a loaded machine, after `leakwatch status` would have asked).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(lw.get("/status").1.contains("\"not_found\"") && lw.get("/alerts").1.contains("LeakwatchTargetDown")) {
        assert!(Instant::now() < deadline, "the first pass's snapshot and alerts were never published");
        std::thread::sleep(Duration::from_millis(100));
    }

    let server = format!("http://{}", lw.addr);
    let out = run_to_exit(&["status", "--server", &server]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("alerts: "), "the alerts come first:\n{text}");
    assert!(text.contains("LeakwatchTargetDown"), "the target-down alert is shown:\n{text}");
    assert!(text.contains("target pid-999999: NOT FOUND"), "{text}");
    assert!(text.contains("missing.log: no such file"), "the source's problem is shown:\n{text}");
    assert!(!text.contains("conn_first_seen"), "the structures only with -v:\n{text}");

    let (status, body) = lw.get("/status");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["summary"]["target"]["state"], "not_found", "{body}");

    let out = run_to_exit(&["logs", "app", "--server", &server]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a source whose file is missing is an error: {stderr}");
    assert!(stderr.contains("app: no lines") && stderr.contains("no such file"), "{stderr}");

    // The file appears: the source follows it, and an empty page is no error.
    std::fs::write(&missing, "").expect("create the file");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run_to_exit(&["logs", "app", "--server", &server]);
        if out.status.success() {
            assert!(String::from_utf8_lossy(&out.stderr).contains("no lines yet"));
            break;
        }
        assert!(Instant::now() < deadline, "the new file is not followed");
        std::thread::sleep(Duration::from_millis(200));
    }
}
