//! The web console in a real browser: each test starts leakwatch, then runs one scenario of
//! `tests/console/console.mjs` (Playwright from npm driving Debian's chromium; `tests/run.sh`
//! installs both) against it, answers the scenario's requests (`@grow 0.85`: a real memory hog
//! grows in a real cgroup) and prints the figures it measured. Screenshots go to
//! `target/console-screenshots/`. The browser tests are `#[ignore]`d in the parallel suite (they
//! measure latencies, and a 1 000 lines/s browser would load the tests beside it):
//! `tests/run.sh` runs them alone after it (`cargo test --test integration console:: --
//! --ignored`). Also here, in the suite: the history endpoint end to end (pages, caps, cleanup,
//! `/status`), and the plain index and the console's headers without a browser.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::alerts::{working_set, Grower};
use crate::support::cgroup::MemoryCgroup;
use crate::support::http::get;
use crate::support::{Leakwatch, TempDir};
use leakwatch::metric_names as n;

const MIB: u64 = 1 << 20;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{name} not found on PATH: run `bash tests/run.sh`, which installs it"))
}

/// Debian's chromium (`LEAKWATCH_CHROMIUM` to use another build).
fn chromium() -> String {
    let path = std::env::var("LEAKWATCH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(Path::new(&path).is_file(), "{path} is missing: run `bash tests/run.sh`, which installs Debian's chromium");
    path
}

/// One browser test at a time (leakwatch and the browser): they measure latencies on a shared
/// 2-core machine, and the alert test's prediction window starts with its leakwatch.
static BROWSER: Mutex<()> = Mutex::new(());

fn one_browser() -> MutexGuard<'static, ()> {
    BROWSER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one scenario against `url`; `answer` handles its `@` requests. Returns its `figure`
/// lines as (name, value).
fn scenario(
    name: &str,
    url: &str,
    env: &[(&str, String)],
    mut answer: impl FnMut(&str) -> Result<(), String>,
) -> Vec<(String, String)> {
    let dir = repo().join("tests/console");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/console/node_modules is missing: run `bash tests/run.sh` (npm ci in tests/console)"
    );
    let mut child = Command::new(tool("node"))
        .current_dir(&dir)
        .arg("console.mjs")
        .arg(name)
        .env("LW_URL", url)
        .env("LW_CHROMIUM", chromium())
        .env("LW_SCREENSHOTS", repo().join("target/console-screenshots"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut figures = Vec::new();
    let mut last = String::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("[browser {name}] {line}");
                if let Some(command) = line.strip_prefix('@') {
                    let reply = answer(command).map(|()| "ok".to_owned()).unwrap_or_else(|e| e);
                    writeln!(stdin, "{reply}").expect("answer the scenario");
                } else if let Some(rest) = line.strip_prefix("figure ") {
                    let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                    figures.push((k.to_owned(), v.to_owned()));
                }
                last = line;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the {name} scenario did not finish within 300 s");
            }
        }
    }
    let status = child.wait().expect("wait for node");
    assert!(status.success(), "the {name} scenario failed ({status}): {last}");
    figures
}

fn url(lw: &Leakwatch) -> String {
    format!("http://{}/", lw.addr)
}

/// A config following `log` as source `app` (the ring keeps `ring` lines), with `extra` YAML.
fn config(dir: &TempDir, log: &Path, ring: usize, extra: &str) -> String {
    let path = dir.path().join("leakwatch.yaml");
    let yaml =
        format!("logs:\n  sources:\n    - name: app\n      path: {}\n      max_lines: {ring}\n{extra}", log.display());
    std::fs::write(&path, yaml).expect("write config");
    path.display().to_string()
}

fn tailed(dir: &TempDir) -> PathBuf {
    let log = dir.path().join("app.log");
    std::fs::write(&log, "first line\n").expect("write log");
    log
}

#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn the_page_loads_clean_its_chart_follows_the_samples_and_a_written_line_shows_within_a_second() {
    let _browser = one_browser();
    let dir = TempDir::new("console-page");
    let log = tailed(&dir);
    let config = config(&dir, &log, 10_000, "");
    let lw = Leakwatch::start_cmd_every(Command::new(crate::support::binary()), "1s", &["--config", &config]);
    let env = [("LW_LOG", log.display().to_string()), ("LW_INTERVAL_MS", "1000".to_owned())];
    let figures = scenario("page", &url(&lw), &env, |c| Err(format!("unexpected request {c}")));
    println!("console page figures: {figures:?}");
}

#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn a_memory_hog_crossing_80_percent_lights_the_warning_band_and_the_alert_shows() {
    let _browser = one_browser();
    let limit = 256 * MIB;
    let cg = MemoryCgroup::create("console", Some(limit));
    let mut grower = Grower::start(&cg);
    let dir = TempDir::new("console-alert");
    let log = tailed(&dir);
    // A short prediction window, so a steady climb gets a predicted crossing within seconds.
    let alerts = "alerts:\n  rules:\n    - ratio: memory_utilization\n      for: 2s\n  prediction:\n    retention: 1m\n    min_fill: 0.1\n";
    let config = config(&dir, &log, 1000, alerts);
    let pid = grower.pid().to_string();
    let lw = Leakwatch::start_cmd_every(
        Command::new(crate::support::binary()),
        "1s",
        &["--pid", &pid, "--target-name", "hog", "--config", &config],
    );
    let env = [("LW_LOG", log.display().to_string()), ("LW_INTERVAL_MS", "1000".to_owned())];
    let figures = scenario("alert", &url(&lw), &env, |command| {
        if let Some(steps) = command.strip_prefix("ramp ") {
            // 3 MiB every 500 ms: a steady leak.
            for _ in 0..steps.parse::<u32>().map_err(|e| e.to_string())? {
                grower.send("grow 3");
                std::thread::sleep(Duration::from_millis(500));
            }
            return Ok(());
        }
        let target: f64 = command.strip_prefix("grow ").and_then(|r| r.parse().ok()).ok_or("unknown request")?;
        let want = (target * limit as f64) as u64;
        grower.send(&format!("grow {}", want.saturating_sub(working_set(&cg)) / MIB));
        let ws = working_set(&cg) as f64 / limit as f64;
        println!("the hog's working set is at {ws:.3} of its limit");
        if ws > 0.8 {
            Ok(())
        } else {
            Err(format!("the working set reached only {ws:.3}"))
        }
    });
    println!("console alert figures: {figures:?}");
}

#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn filter_pause_and_resume_show_every_line_once_and_a_stalled_page_shows_the_missed_count() {
    let _browser = one_browser();
    let dir = TempDir::new("console-logs");
    let log = tailed(&dir);
    std::fs::write(&log, "").expect("empty log");
    let ring = 100;
    let config = config(&dir, &log, ring, "");
    let lw = Leakwatch::start(&["--config", &config]);
    let env = [("LW_LOG", log.display().to_string()), ("LW_RING", ring.to_string())];
    let figures = scenario("logs", &url(&lw), &env, |c| Err(format!("unexpected request {c}")));
    println!("console logs figures: {figures:?}");
}

/// 1 000 lines/s for 60 s (`LEAKWATCH_CONSOLE_FLOOD_SECONDS` changes it): the page answers
/// interactions (median within `LEAKWATCH_CONSOLE_INTERACTION_MS`, default 1000 ms on a loaded
/// 2-core machine; the measured figures are printed against the 200 ms target) and keeps at most
/// `console.max_log_lines` lines.
#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn at_a_thousand_lines_a_second_the_page_answers_and_keeps_its_line_cap() {
    let _browser = one_browser();
    let dir = TempDir::new("console-flood");
    let log = tailed(&dir);
    let max = 500;
    let config = config(&dir, &log, 100_000, &format!("console:\n  max_log_lines: {max}\n"));
    let lw = Leakwatch::start_cmd_every(Command::new(crate::support::binary()), "1s", &["--config", &config]);
    let seconds = std::env::var("LEAKWATCH_CONSOLE_FLOOD_SECONDS").unwrap_or_else(|_| "60".to_owned());
    let bound = std::env::var("LEAKWATCH_CONSOLE_INTERACTION_MS").unwrap_or_else(|_| "1000".to_owned());
    let env = [
        ("LW_LOG", log.display().to_string()),
        ("LW_MAX_LINES", max.to_string()),
        ("LW_FLOOD_SECONDS", seconds),
        ("LW_INTERACTION_BOUND_MS", bound),
    ];
    let figures = scenario("flood", &url(&lw), &env, |c| Err(format!("unexpected request {c}")));
    println!("console flood figures (interaction target 200 ms): {figures:?}");
}

/// Where leakwatch serves `GET /oom` (the OOM reports) its index lists it; the page then shows
/// the reports. Playwright stands in for that endpoint here, in the shape its contract gives.
#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn the_page_shows_oom_reports_where_the_index_lists_them() {
    let _browser = one_browser();
    let dir = TempDir::new("console-oom");
    let log = tailed(&dir);
    let config = config(&dir, &log, 1000, "");
    let lw = Leakwatch::start(&["--config", &config]);
    scenario("oom", &url(&lw), &[], |c| Err(format!("unexpected request {c}")));
}

fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 4).expect("bcrypt").format_for_version(bcrypt::Version::TwoY)
}

/// The HTTP status curl got for `url` with `args`.
fn curl_status(args: &[&str], url: &str) -> String {
    let out = Command::new(tool("curl"))
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-k"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "a browser test that measures latencies: tests/run.sh runs these alone, after the suite (--ignored)"]
fn over_tls_with_basic_auth_the_console_needs_a_log_user_and_then_works() {
    let _browser = one_browser();
    let dir = TempDir::new("console-tls");
    let log = tailed(&dir);
    let out = Command::new(tool("openssl"))
        .current_dir(dir.path())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    // `viewer` may read logs and everything else; `prom` only the site.
    let web = dir.path().join("web.yml");
    let viewer = bcrypt_hash("v1ewer");
    let users = format!("basic_auth_users:\n  prom: {}\n  viewer: {viewer}\n", bcrypt_hash("s3cret"));
    std::fs::write(&web, format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{users}"))
        .expect("write web config");
    let config = config(&dir, &log, 1000, &format!("  basic_auth_users:\n    viewer: {viewer}\n"));
    let lw = Leakwatch::start_cmd_every(
        Command::new(crate::support::binary()),
        "1s",
        &["--config", &config, "--web.config.file", web.to_str().unwrap()],
    );
    let base = format!("https://127.0.0.1:{}", lw.addr.port());
    let html = ["-H", "Accept: text/html"];
    for path in ["/", "/console/console.js", "/console/console.css"] {
        let u = format!("{base}{path}");
        assert_eq!(curl_status(&html, &u), "401", "{path} without credentials");
        assert_eq!(curl_status(&[&html[..], &["-u", "prom:s3cret"]].concat(), &u), "401", "{path}: not a log user");
        assert_eq!(curl_status(&[&html[..], &["-u", "viewer:v1ewer"]].concat(), &u), "200", "{path}");
    }
    assert_eq!(curl_status(&["-u", "prom:s3cret"], &format!("{base}/")), "200", "the text index is the site's");
    let env =
        [("LW_LOG", log.display().to_string()), ("LW_USER", "viewer".to_owned()), ("LW_PASSWORD", "v1ewer".to_owned())];
    let figures = scenario("tls", &format!("{base}/"), &env, |c| Err(format!("unexpected request {c}")));
    println!("console tls figures: {figures:?}");
}

#[test]
fn curl_gets_the_text_index_and_a_browser_the_page_with_its_headers() {
    let lw = Leakwatch::start(&[]);
    let text = get(lw.addr, "/", &[]);
    assert_eq!(text.status, 200);
    assert!(text.text().starts_with("leakwatch\n") && text.text().contains("/api/history"), "{}", text.text());
    assert_eq!(get(lw.addr, "/index.txt", &[("Accept", "text/html")]).text(), text.text());
    let page = get(lw.addr, "/", &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")]);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(page.text().contains("<script src=\"/console/console.js\""));
    let script = get(lw.addr, "/console/console.js", &[]);
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").is_some_and(|t| t.starts_with("text/javascript")));
    assert_eq!(script.header("x-content-type-options"), Some("nosniff"));
}

/// Pages of `/api/history` until `more` is false, from `after_seq`.
fn all_points(lw: &Leakwatch, limit: usize) -> Vec<serde_json::Value> {
    let mut cursor = 0;
    let mut out = Vec::new();
    loop {
        let page = get(lw.addr, &format!("/api/history?limit={limit}&after_seq={cursor}"), &[]).json();
        out.extend(page["points"].as_array().expect("points").iter().cloned());
        cursor = page["next_after_seq"].as_u64().expect("cursor");
        if !page["more"].as_bool().expect("more") {
            return out;
        }
    }
}

#[test]
fn the_history_pages_without_gap_keeps_its_cap_is_listed_and_is_trimmed_by_cleanup() {
    let dir = TempDir::new("console-history");
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123").expect("write token");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, format!("console:\n  history_max_points: 20\nadmin:\n  token_file: {}\n", token.display()))
        .expect("write config");
    let lw = Leakwatch::start(&["--config", config.to_str().unwrap()]);
    // 200 ms interval: 30 samples in about 6 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let points = loop {
        let points = all_points(&lw, 3);
        let newest = points.last().and_then(|p| p["seq"].as_u64()).unwrap_or(0);
        if newest >= 30 {
            break points;
        }
        assert!(Instant::now() < deadline, "30 samples never arrived: {newest}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Paged while samples arrive, the points run on past the cap; one page shows the ring.
    let seqs: Vec<u64> = points.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    let ring = get(lw.addr, "/api/history", &[]).json();
    let held = ring["points"].as_array().expect("points").len();
    assert!((15..=20).contains(&held) && ring["held"] == held && ring["max_points"] == 20, "the cap holds: {ring}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "consecutive, no gap or duplicate: {seqs:?}");
    let p = &points[points.len() - 1];
    assert!(p["rss_bytes"].as_u64().unwrap() > 0 && p["threads"].as_u64().unwrap() >= 1, "{p}");
    assert!(p["utilization"].as_f64().unwrap() > 0.0 && p["connections"]["listen"].as_u64().unwrap() >= 1, "{p}");
    // since: only points at or after that time.
    let since = points[points.len() - 3]["at"].as_f64().unwrap();
    let page = get(lw.addr, &format!("/api/history?since={since}"), &[]).json();
    assert!(page["points"].as_array().unwrap().iter().all(|p| p["at"].as_f64().unwrap() >= since));
    assert!(page["points"].as_array().unwrap().len() >= 3, "since={since}: {page}");
    for (query, param) in
        [("limit=0", "limit"), ("since=yesterday", "since"), ("after_seq=-1", "after_seq"), ("x=1", "x")]
    {
        let r = get(lw.addr, &format!("/api/history?{query}"), &[]);
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.json()["param"], param, "{query}");
    }
    let status = get(lw.addr, "/status", &[]).json();
    let entry = status["structures"].as_array().unwrap().iter().find(|s| s["name"] == "history_points").cloned();
    let entry = entry.expect("history_points in /status");
    assert_eq!(entry["max"], 20);
    assert!(entry["len"].as_u64().unwrap() <= 20 && entry["capacity"].as_u64().unwrap() <= 21 + 8, "{entry}");
    let metrics = lw.scrape();
    assert_eq!(metrics.get(n::STRUCTURE_MAX_ENTRIES, &[("structure", "history_points")]), Some(20.0));
    assert!(metrics.get(n::STRUCTURE_ENTRIES, &[("structure", "history_points")]).is_some_and(|n| n <= 20.0));
    // An admin cleanup trims it like every other structure (nothing spare here: the report may
    // not name it, and no point is lost).
    let bearer = format!("Bearer {}", "0123456789abcdef0123");
    let report = crate::support::http::post(lw.addr, "/admin/cleanup", &[("Authorization", &bearer)]);
    assert_eq!(report.status, 200, "{}", report.text());
    let after = all_points(&lw, 1000);
    assert!(after.len() >= held - 1, "cleanup keeps live points: {held} then {}", after.len());
}
