//! In-process alerts end to end: a python3 child in a real memory cgroup with a 256 MiB limit
//! grows its memory step by step through 70 %, 80 % and 90 % of the limit; leakwatch (200 ms
//! interval, `for: 1s`) reports info, then warning, then critical on `GET /alerts` and in
//! `leakwatch_alert_active`, each only after its level was crossed and its `for` passed, and
//! all clear once the child frees its memory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::cgroup::{MemoryCgroup, Version};
use crate::support::{Leakwatch, Metrics, TempDir};
use leakwatch::metric_names as n;

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 256 * MIB;
const ALERT: &str = "LeakwatchMemoryUtilizationHigh";
const FOR: f64 = 1.0;

/// A python3 process that allocates (and touches) memory on command: `grow MIB`, `free`.
pub(crate) struct Grower {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Grower {
    pub(crate) fn start(cg: &MemoryCgroup) -> Grower {
        let script = "import sys\nheld = []\nprint('ready', flush=True)\nfor line in sys.stdin:\n    cmd, _, arg = line.strip().partition(' ')\n    if cmd == 'grow':\n        held.append(bytearray(b'\\x01') * (int(arg) << 20))\n    elif cmd == 'free':\n        held.clear()\n    print('ok', flush=True)\n";
        let mut child = cg
            .command("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3 (the tests need python3)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut g = Grower { child, stdin, stdout };
        assert_eq!(g.line(), "ready");
        g
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the grower's stdout");
        line.trim().to_owned()
    }

    pub(crate) fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("write to the grower");
        assert_eq!(self.line(), "ok", "the grower did {cmd:?}");
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Grower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cgroup's working set as the kubelet (and leakwatch) computes it, read directly.
pub(crate) fn working_set(cg: &MemoryCgroup) -> u64 {
    let (usage, inactive) = match cg.version() {
        Version::V1 => (cg.read("memory.usage_in_bytes"), cg.keyed("memory.stat", "total_inactive_file")),
        Version::V2 => (cg.read("memory.current"), cg.keyed("memory.stat", "inactive_file")),
    };
    usage.trim().parse::<u64>().expect("usage").saturating_sub(inactive.unwrap_or(0))
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

fn active(m: &Metrics, severity: &str) -> Option<f64> {
    m.get(n::ALERT_ACTIVE, &[("alert", ALERT), ("severity", severity), ("target", "grower")])
}

fn alerts_json(lw: &Leakwatch, path: &str) -> Value {
    let (status, body) = lw.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
}

/// The memory alerts listed on `/alerts` as (severity, state).
fn listed(lw: &Leakwatch) -> Vec<(String, String)> {
    let v = alerts_json(lw, "/alerts");
    v["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .filter(|a| a["alert"] == ALERT)
        .map(|a| (a["severity"].as_str().unwrap_or("").to_owned(), a["state"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn firing(lw: &Leakwatch) -> Vec<String> {
    listed(lw).into_iter().filter(|(_, s)| s == "firing").map(|(sev, _)| sev).collect()
}

#[test]
fn a_growing_child_in_a_memory_cgroup_raises_info_then_warning_then_critical_and_all_clear() {
    let cg = MemoryCgroup::create("alerts", Some(LIMIT));
    let mut grower = Grower::start(&cg);
    let dir = TempDir::new("alerts");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, format!("alerts:\n  rules:\n    - ratio: memory_utilization\n      for: {FOR}s\n"))
        .expect("write config");
    let pid = grower.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "grower", "--config", config.to_str().unwrap()]);
    let m = lw.wait_for(Duration::from_secs(15), "the engine's first evaluation", |m| {
        m.get(n::ALERT_HISTORY_MAX_TRANSITIONS, &[]).is_some()
    });
    assert!(firing(&lw).is_empty(), "nothing fires at rest: {:?}", listed(&lw));
    assert!(["info", "warning", "critical"].iter().all(|s| active(&m, s).is_none()), "no series at rest: {}", m.text);

    let steps = [
        (0.75, "info", &["info"][..]),
        (0.85, "warning", &["info", "warning"]),
        (0.94, "critical", &["info", "warning", "critical"]),
    ];
    let mut step_started = Vec::new();
    for (target, severity, expected) in steps {
        let need = (target * LIMIT as f64) as u64 - working_set(&cg).min((target * LIMIT as f64) as u64);
        step_started.push(now());
        grower.send(&format!("grow {}", need / MIB));
        let ws = working_set(&cg) as f64 / LIMIT as f64;
        assert!((target - 0.03..target + 0.04).contains(&ws), "working set at {ws:.3} of the limit, aimed at {target}");
        let m = lw.wait_for(Duration::from_secs(15), &format!("{severity} firing at {ws:.2}"), |m| {
            active(m, severity) == Some(1.0)
        });
        for s in ["info", "warning", "critical"] {
            // Present (1) only while firing, as Prometheus's ALERTS.
            let want = expected.contains(&s).then_some(1.0);
            assert_eq!(active(&m, s), want, "leakwatch_alert_active severity={s} at {ws:.2}:\n{}", m.text);
        }
        let mut on_page = firing(&lw);
        on_page.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(on_page, want, "/alerts at {ws:.2}");
    }

    // Each severity went pending only after its step started, above its level, and fired no
    // sooner than `for` later.
    let history = alerts_json(&lw, "/alerts/history");
    let transitions = history["transitions"].as_array().expect("transitions");
    for (i, (severity, level)) in [("info", 0.7), ("warning", 0.8), ("critical", 0.9)].into_iter().enumerate() {
        let of = |to: &str| {
            transitions
                .iter()
                .find(|t| t["alert"] == ALERT && t["severity"] == severity && t["to"] == to)
                .unwrap_or_else(|| panic!("no {severity} → {to} transition in {history}"))
        };
        let (pending, fired) = (of("pending"), of("firing"));
        let pending_at = pending["at"].as_f64().unwrap();
        assert!(pending_at >= step_started[i] - 0.5, "{severity} went pending before its step: {pending}");
        assert!(pending["value"].as_f64().unwrap() > level, "{pending}");
        assert!(fired["at"].as_f64().unwrap() - pending_at >= FOR, "{severity} fired before `for`: {pending} {fired}");
        let summary = alerts_json(&lw, "/alerts")["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alert"] == ALERT && a["severity"] == severity)
            .map(|a| a["summary"].as_str().unwrap_or("").to_owned())
            .unwrap();
        assert_eq!(summary, format!("grower uses more than {} % of its memory limit.", (level * 100.0) as u32));
    }

    grower.send("free");
    let ws = working_set(&cg) as f64 / LIMIT as f64;
    assert!(ws < 0.5, "the grower freed its memory: {ws:.2}");
    let m = lw.wait_for(Duration::from_secs(15), "all clear", |m| {
        ["info", "warning", "critical"].iter().all(|s| active(m, s).is_none())
    });
    assert!(m.all(n::ALERT_PENDING, &[("alert", ALERT), ("target", "grower")]).is_empty(), "{}", m.text);
    assert!(m.get(n::TREND_HISTORY_SAMPLES, &[("resource", "memory")]).is_some(), "the engine still renders");
    let states = listed(&lw);
    assert!(states.iter().all(|(_, s)| s == "resolved") && states.len() == 3, "all resolved: {states:?}");
    let history = alerts_json(&lw, "/alerts/history");
    let all = history["transitions"].as_array().unwrap();
    let ours: Vec<&Value> = all.iter().filter(|t| t["alert"] == ALERT).collect();
    assert_eq!(ours.len(), 9, "3 × pending, firing, resolved: {history}");
    assert_eq!(ours.iter().filter(|t| t["to"] == "resolved").count(), 3, "{history}");
    assert_eq!(m.get(n::ALERT_HISTORY_TRANSITIONS, &[]), Some(all.len() as f64));
    assert_eq!(m.get(n::ALERT_HISTORY_MAX_TRANSITIONS, &[]), Some(1000.0));
}

/// A fake Alertmanager on loopback: answers 200 to every request and hands over
/// (path, content type, body) of each.
fn fake_alertmanager() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<(String, String, String)>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake Alertmanager");
    let addr = listener.local_addr().expect("local address");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((&header, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_owned();
            if tx.send((path, content_type, String::from_utf8_lossy(&body).into_owned())).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// Waits for a push that holds `alert` and satisfies `pred`; returns (path, content type, that alert).
fn wait_push(
    rx: &std::sync::mpsc::Receiver<(String, String, String)>,
    alert: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> (String, String, Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (path, content_type, body) =
            rx.recv_timeout(left).unwrap_or_else(|_| panic!("no push to the fake Alertmanager with {what}"));
        let batch: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("pushed body is not JSON ({e}): {body}"));
        if let Some(a) = batch.as_array().and_then(|a| a.iter().find(|a| a["labels"]["alertname"] == alert && pred(a)))
        {
            return (path, content_type, a.clone());
        }
    }
}

fn rfc3339(v: &Value) -> f64 {
    let text = v.as_str().expect("an RFC 3339 string");
    humantime::parse_rfc3339(text).expect("RFC 3339").duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

#[test]
fn alerts_are_pushed_to_an_alertmanager_resent_while_firing_and_sent_resolved() {
    let (am, pushes) = fake_alertmanager();
    let hog = crate::support::MemHog::start(16);
    let dir = TempDir::new("alerts-push");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {{critical: 0.000001}}\n      for: 0s\n      hysteresis: 0\n  alertmanager:\n    url: http://{am}\n    resend_interval: 1s\n"
        ),
    )
    .expect("write config");
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "hog", "--config", config.to_str().unwrap()]);

    let firing = |a: &Value| rfc3339(&a["endsAt"]) > now() + 2.0;
    let (path, content_type, first) = wait_push(&pushes, ALERT, "the alert firing", firing);
    assert_eq!(path, "/api/v2/alerts");
    assert_eq!(content_type, "application/json");
    assert_eq!(first["labels"]["severity"], "critical");
    assert_eq!(first["labels"]["target"], "hog");
    assert_eq!(first["annotations"]["summary"], "hog uses more than 0 % of its memory limit.");
    let started = rfc3339(&first["startsAt"]);
    let first_at = std::time::Instant::now();
    // Sent again while it fires (resend_interval 1 s, not on every 200 ms sample), with the same start.
    let (_, _, again) = wait_push(&pushes, ALERT, "a resend", firing);
    assert!(first_at.elapsed() >= Duration::from_millis(700), "resent after {:?}", first_at.elapsed());
    assert_eq!(rfc3339(&again["startsAt"]), started);

    drop(hog);
    let (_, _, resolved) = wait_push(&pushes, ALERT, "the alert resolved", |a| rfc3339(&a["endsAt"]) <= now() + 0.5);
    assert!(rfc3339(&resolved["endsAt"]) >= started, "{resolved}");
    drop(lw);
}

#[test]
fn pushed_alerts_carry_the_pod_identity_and_a_vanished_target_resolves_them_with_its_reason() {
    let (am, pushes) = fake_alertmanager();
    let hog = crate::support::MemHog::start(16);
    let dir = TempDir::new("alerts-identity");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {{critical: 0.000001}}\n      for: 0s\n      hysteresis: 0\n  target_down: {{for: 1s}}\n  runbook_base_url: https://runbooks.example/leakwatch.md\n  alertmanager:\n    url: http://{am}\n    resend_interval: 1s\n"
        ),
    )
    .expect("write config");
    let mut cmd = std::process::Command::new(crate::support::binary());
    cmd.env("POD_NAMESPACE", "shop").env("POD_NAME", "cart-7f9").env("CONTAINER_NAME", "app").env_remove("POD_IP");
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start_cmd(cmd, &["--pid", &pid, "--target-name", "hog", "--config", config.to_str().unwrap()]);

    let (_, _, first) = wait_push(&pushes, ALERT, "the alert firing", |a| rfc3339(&a["endsAt"]) > now() + 2.0);
    let labels = &first["labels"];
    assert_eq!((labels["namespace"].as_str(), labels["pod"].as_str()), (Some("shop"), Some("cart-7f9")), "{first}");
    assert_eq!(labels["container"], "app");
    assert_eq!(labels["instance"], lw.addr.to_string(), "the listen address (no POD_IP)");
    assert_eq!(first["generatorURL"], format!("http://{}/alerts", lw.addr));
    assert_eq!(
        first["annotations"]["runbook_url"],
        "https://runbooks.example/leakwatch.md#leakwatchmemoryutilizationhigh"
    );
    // generatorURL answers: it is leakwatch's /alerts.
    let (code, body) = lw.get("/alerts");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"runbook_url\""), "{body}");

    // The target vanishes: its memory alert is resolved with the reason, and target-down fires.
    drop(hog);
    let (_, _, resolved) = wait_push(&pushes, ALERT, "the alert resolved", |a| rfc3339(&a["endsAt"]) <= now() + 0.5);
    assert_eq!(resolved["annotations"]["resolved_reason"], "target gone", "{resolved}");
    assert_eq!(resolved["labels"]["pod"], "cart-7f9");
    let (_, _, down) =
        wait_push(&pushes, "LeakwatchTargetDown", "target down firing", |a| rfc3339(&a["endsAt"]) > now() + 2.0);
    assert_eq!(
        (down["labels"]["severity"].as_str(), down["labels"]["namespace"].as_str()),
        (Some("warning"), Some("shop"))
    );
    let (_, history) = lw.get("/alerts/history");
    let history: Value = serde_json::from_str(&history).expect("history JSON");
    let gone = history["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .find(|t| t["alert"] == ALERT && t["to"] == "resolved")
        .cloned();
    assert_eq!(gone.as_ref().map(|t| t["reason"].clone()), Some(Value::from("target_gone")), "{history}");
    drop(lw);
}
