//! End to end with a real Prometheus scraping a real leakwatch that watches a real process: the
//! target is up, the generated alert rules fire in Prometheus when the process crosses 80 % of its
//! cgroup limit, and every PromQL expression of every generated dashboard returns data.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::cgroup::MemoryCgroup;
use crate::support::prometheus::{scrape_config, Prometheus};
use crate::support::{Leakwatch, MemHog, TempDir};

#[test]
fn e2e_prometheus_scrapes_leakwatch_watching_a_real_process() {
    let hog = MemHog::start(64);
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "hog"]);
    let prom = Prometheus::start(&scrape_config(lw.addr, &[]), &[]);
    prom.wait_for(Duration::from_secs(30), "the leakwatch target up", |p| {
        p.query(r#"up{job="leakwatch"}"#).first().filter(|s| s["value"][1] == "1").cloned()
    });
    let rss = prom.wait_for(Duration::from_secs(30), "the target's RSS in Prometheus", |p| {
        p.query(r#"leakwatch_process_memory_bytes{target="hog",kind="resident"}"#).first().cloned()
    });
    let bytes: f64 = rss["value"][1].as_str().and_then(|v| v.parse().ok()).expect("a numeric sample");
    assert!(bytes > 64.0 * 1048576.0, "the 64 MiB hog shows {bytes} bytes RSS in Prometheus");
    let targets = prom.api("/api/v1/targets");
    let active = &targets["activeTargets"][0];
    assert_eq!(active["health"], "up", "{active}");
    assert_eq!(active["lastError"], "", "scrapes parse without error: {active}");
}

/// An application with something for every panel: memory in a limited cgroup that grows steadily
/// (from about 78 % of 256 MiB, by 0.5 MiB/s: across 80 % within seconds, 90 % after about a
/// minute), a pool of connections to a local "database" with one in CLOSE_WAIT, a child process,
/// and a log file it writes to.
struct App {
    child: Child,
    port: u16,
}

impl App {
    fn start(cgroup: &MemoryCgroup, log: &std::path::Path) -> App {
        let script = format!(
            r#"
import socket, subprocess, sys, time
held = [bytearray(b"x") * (190 << 20)]
db = socket.socket(); db.bind(("127.0.0.1", 0)); db.listen(16)
pool = [socket.create_connection(db.getsockname()) for _ in range(4)]
accepted = [db.accept()[0] for _ in range(3)]
accepted.pop().close()  # the pool's side of this one stays in CLOSE_WAIT
worker = subprocess.Popen(["sleep", "600"])
print(db.getsockname()[1], flush=True)
with open("{log}", "a", buffering=1) as f:
    i = 0
    while True:
        i += 1
        held.append(bytearray(b"x") * (25 << 10))
        f.write(f"request {{i}} ok\n")
        time.sleep(0.05)
"#,
            log = log.display()
        );
        let mut child = cgroup
            .command("python3")
            .args(["-c", &script, "leakwatch-e2e-app"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the e2e app");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("the app's port");
        App { port: line.trim().parse().expect("a port number"), child }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // The worker is in the cgroup too; the cgroup guard kills what is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Expressions that need what this machine cannot give, each with the reason and a check that the
/// reason holds here.
fn unavailable_here(expr: &str, cgroup: &MemoryCgroup) -> Option<&'static str> {
    let v1 = cgroup.version() == crate::support::cgroup::Version::V1;
    (expr.contains("leakwatch_cgroup_memory_pressure_") && v1)
        .then_some("cgroup memory pressure (PSI) exists on cgroup v2 only; this machine's memory controller is v1")
}

/// The generated rule file with every `for` shortened to 3 s (the levels, expressions and labels
/// are what ships).
fn rules_with_short_for() -> String {
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/leakwatch-rules.yaml"))
        .expect("alerts/leakwatch-rules.yaml");
    let short = regex::Regex::new(r"(?m)^(\s+for:) \S+$").expect("valid regex");
    assert!(short.is_match(&rules), "the rule file has `for:` durations");
    short.replace_all(&rules, "$1 3s").into_owned()
}

#[test]
fn e2e_alerts_fire_in_prometheus_and_every_dashboard_query_returns_data() {
    let dir = TempDir::new("e2e-dash");
    let log = dir.path().join("app.log");
    std::fs::write(&log, b"").expect("create the log");
    let cgroup = MemoryCgroup::create("e2e-dash", Some(256 << 20));
    let app = App::start(&cgroup, &log);
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(
        &config,
        format!(
            "target:\n  name: app\n  cmdline_regex: leakwatch-e2e-app\nconnections:\n  stale_after: 1s\n  peers:\n    - name: db\n      \
             remote_port: {}\n      limit: 10\ntasks:\n  stale_after: 1s\nlogs:\n  sources:\n    - name: app\n      path: {}\n\
             alerts:\n  rules:\n    - ratio: memory_utilization\n      for: 3s\n  prediction:\n    retention: 1m\n    min_fill: 0.1\n",
            app.port,
            log.display()
        ),
    )
    .expect("write the config");
    let lw = Leakwatch::start(&["--config", config.to_str().expect("utf-8 path")]);
    let rules = rules_with_short_for();
    let recording =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/leakwatch-recording-rules.yaml"))
            .expect("alerts/leakwatch-recording-rules.yaml");
    // The recording rules, evaluated every second here instead of every minute.
    let recording = recording.replace("interval: 1m", "interval: 1s");
    let prom = Prometheus::start(
        &scrape_config(lw.addr, &["leakwatch-rules.yaml", "leakwatch-recording-rules.yaml"]),
        &[("leakwatch-rules.yaml", &rules), ("leakwatch-recording-rules.yaml", &recording)],
    );
    let groups = prom.api("/api/v1/rules");
    let loaded: usize =
        groups["groups"].as_array().map_or(0, |g| g.iter().map(|g| g["rules"].as_array().map_or(0, Vec::len)).sum());
    assert!(loaded >= 10, "Prometheus loaded the generated rules: {groups}");
    // Crossing 80 % of the cgroup limit fires the generated warning alert in Prometheus.
    let firing =
        prom.wait_for(Duration::from_secs(90), "LeakwatchMemoryUtilizationHigh (warning) firing in Prometheus", |p| {
            p.query(r#"ALERTS{alertname="LeakwatchMemoryUtilizationHigh", severity="warning", alertstate="firing"}"#)
                .first()
                .cloned()
        });
    assert_eq!(firing["metric"]["target"], "app", "{firing}");
    let ratio = prom.query(r#"leakwatch_memory_utilization_ratio{target="app"}"#);
    let ratio: f64 = ratio[0]["value"][1].as_str().and_then(|v| v.parse().ok()).expect("the ratio");
    assert!((0.8..1.0).contains(&ratio), "above the warning level, below the limit: {ratio}");
    // leakwatch's own engine agrees, and its detector sees the steady growth.
    prom.wait_for(Duration::from_secs(30), "leakwatch's own warning alert active", |p| {
        p.query(r#"leakwatch_alert_active{alert="LeakwatchMemoryUtilizationHigh", severity="warning"} == 1"#)
            .first()
            .cloned()
    });
    prom.wait_for(Duration::from_secs(60), "the leak detector's time to the limit", |p| {
        p.query(r#"leakwatch_trend_time_to_limit_seconds{resource="memory", target="app"}"#).first().cloned()
    });
    let mut checked = 0;
    let mut empty = Vec::new();
    // Grafana's variables as they resolve here: no `cluster` label (the hidden variable is
    // empty, which matches series without it), "All" for the others, and its rate interval.
    let resolve = |expr: &str| {
        expr.replace("$cluster", "")
            .replace("$job", ".*")
            .replace("$namespace", ".*")
            .replace("$pod", ".*")
            .replace("$target", ".*")
            .replace("$__rate_interval", "30s")
    };
    for (file, d) in leakwatch::dashboard::all() {
        // Annotations mark events (an OOM kill, a restart) that may not happen here: they must
        // parse and run (`query` fails on an error), data or not.
        for expr in d.annotation_exprs() {
            prom.query(&resolve(expr));
        }
        for expr in d.exprs() {
            let query = resolve(expr);
            checked += 1;
            if let Some(reason) = unavailable_here(expr, &cgroup) {
                eprintln!("{file}: not checked here ({reason}): {expr}");
                continue;
            }
            // The detector's trend series (and what is recorded from them) come and go with its
            // judgement: poll a while before calling a query empty.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while prom.query(&query).is_empty() {
                if std::time::Instant::now() > deadline {
                    empty.push(format!("{file}: {expr}"));
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    // Every recording rule records something.
    let recorded: Vec<String> = regex::Regex::new(r"(?m)^\s+- record: (\S+)$")
        .expect("valid regex")
        .captures_iter(&recording)
        .map(|c| c[1].to_owned())
        .collect();
    assert!(recorded.len() >= 5, "{recorded:?}");
    for name in &recorded {
        checked += 1;
        // A trend series comes and goes with the detector's judgement: poll for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while prom.query(name).is_empty() {
            if std::time::Instant::now() > deadline {
                empty.push(format!("recording rule {name}"));
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    assert!(empty.is_empty(), "{} of {checked} queries returned no data:\n{}", empty.len(), empty.join("\n"));
    eprintln!("the generated warning alert fired at a ratio of {ratio:.3}; {checked} dashboard and recording-rule queries returned data from a real Prometheus");
    drop(app);
}
