//! Hostile inputs and storms (issue 16), each on the real binary: a FIFO at every path leakwatch
//! reads, YAML alias and nesting bombs (on start and on reload), an empty config on reload, the
//! request-head limit, 200 parallel scrapes, SIGTERM with a half-sent head, 50 streams and pages
//! in flight.
//!
//! `LEAKWATCH_BEFORE_BIN` runs the same attacks against another build (e.g. one from before the
//! fixes, to see them fail); by default the tests run the binary under test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::http::{get, post, SseClient};
use crate::support::{release_binary, signal, wait_timeout, Leakwatch, TempDir};
use leakwatch::metric_names as n;

/// The binary attacked: `LEAKWATCH_BEFORE_BIN` or the one under test.
fn bin() -> PathBuf {
    std::env::var_os("LEAKWATCH_BEFORE_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::support::binary()))
}

fn start(args: &[&str]) -> Leakwatch {
    Leakwatch::start_cmd(Command::new(bin()), args)
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// GET `path` with the whole exchange bounded by `within`; `None` when no answer came in time.
fn get_within(addr: SocketAddr, path: &str, within: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, within).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `/healthz` answers 200 within 1 s (polled a few times, for a loaded machine).
fn assert_healthy(lw: &Leakwatch, what: &str) {
    for _ in 0..3 {
        if get_within(lw.addr, "/healthz", Duration::from_secs(1)) == Some(200) {
            return;
        }
    }
    panic!("{what}: /healthz did not answer within 1 s");
}

/// SIGTERM ends the process within 2 s; gives the time it took.
fn assert_exits_on_sigterm(mut lw: Leakwatch, what: &str) -> Duration {
    let t0 = Instant::now();
    signal(lw.child.id() as i32, "TERM");
    let status = wait_timeout(&mut lw.child, Duration::from_secs(2));
    let took = t0.elapsed();
    assert!(status.is_some(), "{what}: still running 2 s after SIGTERM");
    eprintln!("{what}: exited {took:?} after SIGTERM");
    took
}

fn wait_until(timeout: Duration, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reloads(lw: &Leakwatch, result: &str) -> f64 {
    lw.scrape().get(n::CONFIG_RELOADS_TOTAL, &[("result", result)]).unwrap_or(0.0)
}

#[test]
fn a_fifo_at_the_config_path_fails_the_reload_and_blocks_nothing() {
    let dir = TempDir::new("hostile-fifo-config");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, "interval: 200ms\n").expect("write the config");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    mkfifo(&config);
    signal(lw.child.id() as i32, "HUP");
    wait_until(Duration::from_secs(10), "the FIFO refused as a failed reload", || reloads(&lw, "failure") >= 1.0);
    assert_healthy(&lw, "FIFO at the config path");
    // A second reload is served too (the reloader is not stuck).
    signal(lw.child.id() as i32, "HUP");
    wait_until(Duration::from_secs(10), "a second failed reload", || reloads(&lw, "failure") >= 2.0);
    assert_exits_on_sigterm(lw, "FIFO at the config path");
}

#[test]
fn a_fifo_at_the_web_config_path_keeps_the_previous_one_and_blocks_nothing() {
    let dir = TempDir::new("hostile-fifo-web");
    let web = dir.path().join("web.yaml");
    std::fs::write(&web, "http_server_config:\n  headers:\n    X-Frame-Options: deny\n").expect("write the web config");
    let lw = start(&["--web.config.file", web.to_str().expect("utf-8")]);
    mkfifo(&web);
    assert_healthy(&lw, "FIFO at the web config path");
    assert_eq!(get(lw.addr, "/healthz", &[]).header("x-frame-options"), Some("deny"), "the previous web config stays");
    assert_exits_on_sigterm(lw, "FIFO at the web config path");
}

#[test]
fn a_fifo_at_the_admin_token_path_is_a_503_and_blocks_nothing() {
    let dir = TempDir::new("hostile-fifo-token");
    let (config, token) = (dir.path().join("leakwatch.yaml"), dir.path().join("token"));
    std::fs::write(&token, "s3cret-token-0123456789\n").expect("write the token");
    std::fs::write(&config, format!("admin:\n  token_file: {}\n", token.display())).expect("write the config");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    let auth = [("Authorization", "Bearer s3cret-token-0123456789")];
    assert_eq!(post(lw.addr, "/-/reload", &auth).status, 200);
    mkfifo(&token);
    let t0 = Instant::now();
    let reply = post(lw.addr, "/-/reload", &auth);
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(t0.elapsed() < Duration::from_secs(3), "answered in {:?}", t0.elapsed());
    assert_healthy(&lw, "FIFO at the admin token path");
    assert_exits_on_sigterm(lw, "FIFO at the admin token path");
}

#[test]
fn a_fifo_at_the_tls_key_path_keeps_the_previous_key_and_blocks_nothing() {
    let dir = TempDir::new("hostile-fifo-tls");
    let (cert, key, web) = (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("web.yaml"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .args([&key, Path::new("-out"), &cert])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(
        &web,
        format!("tls_server_config:\n  cert_file: {}\n  key_file: {}\n", cert.display(), key.display()),
    )
    .expect("write the web config");
    let lw = start(&["--web.config.file", web.to_str().expect("utf-8")]);
    let curl = |timeout: &str| {
        let url = format!("https://{}/healthz", lw.addr);
        let out = Command::new("curl")
            .args(["-sk", "--max-time", timeout, "-o", "/dev/null", "-w", "%{http_code}", &url])
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("5"), "200");
    mkfifo(&key);
    let t0 = Instant::now();
    assert_eq!(curl("3"), "200", "the previous key is still served");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The key put back: served again (nothing stayed hung).
    std::fs::remove_file(&key).expect("remove the FIFO");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .args([&key, Path::new("-out"), &cert])
        .output()
        .expect("run openssl");
    assert!(out.status.success());
    assert_eq!(curl("5"), "200");
    let mut lw = lw;
    let t0 = Instant::now();
    signal(lw.child.id() as i32, "TERM");
    assert!(wait_timeout(&mut lw.child, Duration::from_secs(2)).is_some(), "FIFO at the TLS key: still running");
    eprintln!("FIFO at the TLS key path: exited {:?} after SIGTERM", t0.elapsed());
}

#[test]
fn a_fifo_at_a_tailed_path_blocks_nothing() {
    let dir = TempDir::new("hostile-fifo-log");
    let (config, log) = (dir.path().join("leakwatch.yaml"), dir.path().join("app.log"));
    mkfifo(&log);
    std::fs::write(&config, format!("logs:\n  sources:\n    - name: app\n      path: {}\n", log.display()))
        .expect("write the config");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    std::thread::sleep(Duration::from_millis(500));
    assert_healthy(&lw, "FIFO at a tailed path");
    assert_exits_on_sigterm(lw, "FIFO at a tailed path");
}

/// The 1 043 917-byte alias bomb of the issue: one 380 KB anchored string, 45 000 aliases.
fn alias_bomb() -> String {
    let mut y = format!("target:\n  name: &s {}\nlogs:\n  sources:\n", "x".repeat(380_000));
    let mut n = 0;
    while y.len() < 1_043_917 - 40 {
        y.push_str(&format!("    - {{name: *s, path: /l{n}}}\n"));
        n += 1;
    }
    y
}

fn nesting_bomb() -> String {
    format!("target:\n  name: {}\n", "[".repeat(100_000))
}

/// Runs the release binary on `config` until it exits; gives (exit code, stderr, wall time,
/// peak RSS in KiB). A python3 parent reads the peak from the kernel's rusage of its one child,
/// and caps the child's address space at 1 GiB and its time at 60 s, so a regression fails the
/// test instead of taking the machine's memory.
fn run_measured(config: &Path) -> (i32, String, Duration, u64) {
    const WRAPPER: &str = "import resource, subprocess, sys\n\
        def cap():\n    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n\
        try:\n    p = subprocess.run(sys.argv[1:], preexec_fn=cap, timeout=60)\n    code = p.returncode\n\
        except subprocess.TimeoutExpired:\n    code = -9\n\
        print('maxrss_kib=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let t0 = Instant::now();
    let out = Command::new("python3")
        .args(["-c", WRAPPER])
        .arg(release_binary())
        .args(["--listen", "127.0.0.1:0", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("run leakwatch under python3");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {stderr}"));
    (out.status.code().unwrap_or(-1), stderr, took, rss)
}

#[test]
fn yaml_bombs_are_refused_at_start_within_1s_under_64_mib() {
    let dir = TempDir::new("hostile-yaml-start");
    for (name, text) in [("alias bomb", alias_bomb()), ("100 000 [", nesting_bomb())] {
        let config = dir.path().join("bomb.yaml");
        std::fs::write(&config, &text).expect("write the bomb");
        let (code, stderr, took, rss_kib) = run_measured(&config);
        eprintln!("{name} ({} bytes) at start: exit {code} in {took:?}, peak RSS {} KiB", text.len(), rss_kib);
        assert_eq!(code, 64, "{name}: {stderr}");
        assert!(stderr.contains("bomb.yaml"), "{name}: the error names the file: {stderr}");
        assert!(took < Duration::from_secs(3), "{name}: took {took:?}");
        assert!(rss_kib < 64 << 10, "{name}: peak RSS {rss_kib} KiB");
    }
}

/// Peak RSS (VmHWM) of a running process, KiB.
fn vmhwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn yaml_bombs_on_reload_keep_the_running_config_under_64_mib() {
    let dir = TempDir::new("hostile-yaml-reload");
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, "target:\n  name: kept\n").expect("write the config");
    // Under a 1 GiB address-space cap (prlimit execs the binary in place): a regression fails
    // the test instead of taking the machine's memory.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--as=1073741824").arg(release_binary());
    let lw = Leakwatch::start_cmd(cmd, &["--config", config.to_str().expect("utf-8")]);
    lw.wait_for(Duration::from_secs(10), "a first sample", |m| m.get(n::SAMPLES_TOTAL, &[]).is_some());
    for (i, text) in [alias_bomb(), nesting_bomb()].iter().enumerate() {
        let tmp = dir.path().join("new.yaml");
        std::fs::write(&tmp, text).expect("write the bomb");
        let t0 = Instant::now();
        std::fs::rename(&tmp, &config).expect("swap it in");
        wait_until(Duration::from_secs(10), "the bomb refused", || reloads(&lw, "failure") >= (i + 1) as f64);
        eprintln!("bomb {i} refused on reload after {:?}", t0.elapsed());
        assert_healthy(&lw, "a YAML bomb on reload");
    }
    let hwm = vmhwm_kib(lw.child.id());
    eprintln!("peak RSS after both bombs on reload: {hwm} KiB");
    assert!(hwm < 64 << 10, "peak RSS {hwm} KiB");
    let m = lw.scrape();
    assert!(m.text.contains("target=\"kept\""), "the running config stays");
}

#[test]
fn an_empty_or_truncated_config_on_reload_keeps_the_running_one() {
    let dir = TempDir::new("hostile-empty");
    let (config, log) = (dir.path().join("leakwatch.yaml"), dir.path().join("app.log"));
    std::fs::write(&log, "a line\n").expect("write the log");
    let good = format!("logs:\n  sources:\n    - name: app\n      path: {}\n", log.display());
    std::fs::write(&config, &good).expect("write the config");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    let sources = || get(lw.addr, "/logs", &[]).json()["sources"].as_array().map_or(0, Vec::len);
    assert_eq!(sources(), 1);
    for (i, bad) in ["", "# saved halfway\n", "logs"].iter().enumerate() {
        std::fs::write(&config, bad).expect("truncate the config");
        wait_until(Duration::from_secs(10), "a failed reload", || reloads(&lw, "failure") >= (i + 1) as f64);
        assert_eq!(sources(), 1, "{bad:?}: the log source is still served");
        assert_eq!(lw.scrape().get(n::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(0.0));
    }
    // `{}` says "all defaults" explicitly.
    std::fs::write(&config, "{}\n").expect("write {}");
    wait_until(Duration::from_secs(10), "a successful reload", || reloads(&lw, "success") >= 1.0);
    assert_eq!(sources(), 0);
}

#[test]
fn the_request_head_limit_is_64_kib() {
    let lw = start(&[]);
    let status_for = |head_bytes: usize| {
        let start = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: ";
        let pad = head_bytes - start.len() - "\r\n\r\n".len();
        let head = format!("{start}{}\r\n\r\n", "a".repeat(pad));
        assert_eq!(head.len(), head_bytes);
        let mut s = TcpStream::connect(lw.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let _ = s.write_all(head.as_bytes());
        let mut reply = [0u8; 12];
        s.read_exact(&mut reply).expect("a status line");
        String::from_utf8_lossy(&reply[9..12]).into_owned()
    };
    assert_eq!(status_for(64 << 10), "200", "a 64 KiB head is served");
    for size in [(64 << 10) + 1, 80 << 10, 112 << 10, 120 << 10] {
        assert_eq!(status_for(size), "431", "a {size}-byte head");
    }
}

#[test]
fn two_hundred_parallel_scrapes_are_all_answered() {
    let lw = start(&[]);
    lw.wait_for(Duration::from_secs(10), "a first sample", |m| m.get(n::SAMPLES_TOTAL, &[]).is_some());
    let addr = lw.addr;
    for round in 0..3 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
        let workers: Vec<_> = (0..200)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // All at once: connect and send (a scraper sends its request right away; a
                    // connection silent for over a second is idle, and evictable).
                    barrier.wait();
                    let mut s = TcpStream::connect(addr).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
                    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                    let mut reply = Vec::new();
                    let _ = s.read_to_end(&mut reply);
                    String::from_utf8_lossy(&reply).split_whitespace().nth(1).unwrap_or("none").to_owned()
                })
            })
            .collect();
        let codes: Vec<String> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
        let unanswered = codes.iter().filter(|c| *c != "200" && *c != "503").count();
        let busy = codes.iter().filter(|c| *c == "503").count();
        eprintln!(
            "round {round}: {} answered 200, {busy} 503, {unanswered} unanswered",
            codes.len() - busy - unanswered
        );
        assert_eq!(unanswered, 0, "every request is answered: {codes:?}");
    }
}

#[test]
fn sigterm_exits_within_2s_with_a_half_sent_head_50_streams_and_pages_in_flight() {
    let dir = TempDir::new("hostile-shutdown");
    let (config, log) = (dir.path().join("leakwatch.yaml"), dir.path().join("app.log"));
    let line = format!("{}\n", "x".repeat(200));
    std::fs::write(&log, line.repeat(40_000)).expect("write 8 MB of log");
    std::fs::write(
        &config,
        format!(
            "logs:\n  max_lines: 100000\n  max_bytes: 64MiB\n  sources:\n    - name: app\n      path: {}\n",
            log.display()
        ),
    )
    .expect("write the config");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    wait_until(Duration::from_secs(20), "the log read", || {
        get(lw.addr, "/logs", &[]).json()["sources"][0]["lines_total"].as_u64() == Some(40_000)
    });
    let mut half = TcpStream::connect(lw.addr).expect("connect");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Half: ").expect("half a head");
    let streams: Vec<SseClient> =
        (0..50).map(|_| SseClient::connect(lw.addr, "/logs/app/stream?backlog=0", &[])).collect();
    assert!(streams.iter().all(|s| s.status == 200));
    // Pages requested and not read: their bodies wait in the server.
    let pages: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(lw.addr).expect("connect");
            s.write_all(b"GET /logs/app?lines=100000&max_bytes=64MiB&format=json HTTP/1.1\r\nHost: t\r\n\r\n")
                .expect("ask for a page");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let took = assert_exits_on_sigterm(lw, "half-sent head + 50 streams + 4 pages");
    assert!(took < Duration::from_secs(2));
    drop((half, streams, pages));
}

/// A config following `log` (as source `app`), with `extra` YAML under `logs:` and an admin token.
fn log_config(dir: &Path, log: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let (config, token) = (dir.join("leakwatch.yaml"), dir.join("secrets").join("token"));
    std::fs::create_dir_all(token.parent().expect("parent")).expect("mkdir secrets");
    std::fs::write(&token, "s3cret-token-0123456789\n").expect("write the token");
    let yaml = format!(
        "admin:\n  token_file: {}\nlogs:\n{extra}  sources:\n    - name: app\n      path: {}\n",
        token.display(),
        log.display()
    );
    std::fs::write(&config, yaml).expect("write the config");
    (config, token)
}

fn log_entry(lw: &Leakwatch) -> serde_json::Value {
    get(lw.addr, "/logs", &[]).json()["sources"][0].clone()
}

fn served_text(lw: &Leakwatch) -> String {
    get(lw.addr, "/logs/app?lines=1000&format=text", &[]).text()
}

/// A case: what it is, and how to make it at the tailed path.
type Link<'a> = (&'static str, Box<dyn Fn() + 'a>);

#[test]
fn links_to_secrets_at_a_tailed_path_are_refused_counted_and_shown() {
    let dir = TempDir::new("hostile-links");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir logs");
    let app = logs.join("app.log");
    std::fs::write(&app, "a first line\n").expect("write the log");
    let (config, token) = log_config(dir.path(), &app, "");
    let lw = start(&["--config", config.to_str().expect("utf-8")]);
    wait_until(Duration::from_secs(10), "the first line", || served_text(&lw).contains("a first line"));
    let links: [Link<'_>; 4] = [
        ("a symlink to the admin token", Box::new(|| std::os::unix::fs::symlink(&token, &app).expect("symlink"))),
        ("a hard link to the admin token", Box::new(|| std::fs::hard_link(&token, &app).expect("hard link"))),
        (
            "a symlink to /proc/self/environ",
            Box::new(|| std::os::unix::fs::symlink("/proc/self/environ", &app).expect("symlink")),
        ),
        ("a symlink to the config file", Box::new(|| std::os::unix::fs::symlink(&config, &app).expect("symlink"))),
    ];
    let mut last = String::new();
    for (what, make) in &links {
        std::fs::remove_file(&app).expect("remove the log");
        make();
        wait_until(Duration::from_secs(10), &format!("{what}: refused"), || {
            log_entry(&lw)["refused"].as_str().is_some_and(|r| r != last)
        });
        last = log_entry(&lw)["refused"].as_str().unwrap_or_default().to_owned();
        eprintln!("{what}: {last}");
        std::thread::sleep(Duration::from_millis(1000));
        let text = served_text(&lw);
        assert!(!text.contains("s3cret") && !text.contains("PATH=") && !text.contains("token_file"), "{what}: {text}");
        let status = get(lw.addr, "/status", &[]).text();
        assert!(status.contains(&last), "{what}: /status shows the refusal");
        let m = lw.scrape();
        assert!(m.get(n::LOG_REFUSALS_TOTAL, &[("source", "app")]).unwrap_or(0.0) >= 1.0, "{what}");
    }
    // A regular file again: followed, and the refusal cleared.
    std::fs::remove_file(&app).expect("remove the link");
    std::fs::write(&app, "back to normal\n").expect("write the log");
    wait_until(Duration::from_secs(10), "the log followed again", || served_text(&lw).contains("back to normal"));
    assert!(log_entry(&lw)["refused"].is_null());
}

/// CPU seconds (user + system) the process has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = stat.rsplit_once(')').expect("comm").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

#[test]
fn a_special_file_or_a_directory_at_a_tailed_path_is_refused_without_spinning() {
    for (what, make) in [
        (
            "a symlink to /proc/self/status",
            (|p: &Path| std::os::unix::fs::symlink("/proc/self/status", p)) as fn(&Path) -> std::io::Result<()>,
        ),
        ("a directory", |p: &Path| std::fs::create_dir(p)),
    ] {
        let dir = TempDir::new("hostile-spin");
        let app = dir.path().join("app.log");
        make(&app).expect("make the special path");
        let (config, _) = log_config(dir.path(), &app, "");
        // The release build: the CPU figure is the shipped binary's (its sampling every 200 ms
        // included).
        let lw = Leakwatch::start_cmd(Command::new(release_binary()), &["--config", config.to_str().expect("utf-8")]);
        std::thread::sleep(Duration::from_secs(1));
        let pid = lw.child.id();
        let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
        std::thread::sleep(Duration::from_secs(10));
        let share = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
        let entry = log_entry(&lw);
        eprintln!("{what}: {:.1} % of a core over 10 s; {entry}", share * 100.0);
        assert!(share < 0.05, "{what}: {:.1} % of a core", share * 100.0);
        assert_eq!(entry["lines"], 0, "{what}: nothing stored");
        assert!(entry["refusals"].as_u64().unwrap_or(0) >= 1, "{what}: counted");
        assert!(entry["refused"].as_str().is_some(), "{what}: shown");
        let warnings = lw.log.try_iter().filter(|l| l.contains("refused")).count();
        assert!(warnings <= 2, "{what}: logged {warnings} times (rate-limited: once while it lasts)");
    }
}

#[test]
fn two_clients_alternating_the_largest_page_are_both_served() {
    let dir = TempDir::new("hostile-pages");
    let log = dir.path().join("app.log");
    let line = format!("{}\n", "y".repeat(1000));
    std::fs::write(&log, line.repeat(65_000)).expect("write 65 MB of log");
    let (config, _) = log_config(dir.path(), &log, "  max_lines: 100000\n  max_bytes: 64MiB\n");
    let cmd = Command::new(release_binary());
    let lw = Leakwatch::start_cmd(cmd, &["--config", config.to_str().expect("utf-8")]);
    wait_until(Duration::from_secs(30), "the log read", || log_entry(&lw)["bytes"].as_u64().unwrap_or(0) > 60 << 20);
    let addr = lw.addr;
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = move |honour_retry_after: bool| {
        let (mut ok, mut busy) = (0u32, 0u32);
        while Instant::now() < deadline {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            s.write_all(b"GET /logs/app?lines=100000&max_bytes=64MiB HTTP/1.0\r\nHost: t\r\n\r\n").expect("ask");
            let mut reply = Vec::new();
            let _ = s.read_to_end(&mut reply);
            let head = String::from_utf8_lossy(&reply[..reply.len().min(300)]).into_owned();
            if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
                ok += 1;
            } else {
                busy += 1;
                if honour_retry_after {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        (ok, busy)
    };
    let a = std::thread::spawn(move || client(false));
    let b = std::thread::spawn(move || client(true));
    let (a, b) = (a.join().expect("client a"), b.join().expect("client b"));
    eprintln!("in 20 s: eager client {} pages ({} busy), Retry-After client {} pages ({} busy)", a.0, a.1, b.0, b.1);
    assert!(a.0 >= 2 && b.0 >= 2, "both are served in turn: {a:?} {b:?}");
}
