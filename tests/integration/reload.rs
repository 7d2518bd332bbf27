//! Hot reload on the real binary: a valid change (a rule level, a new log source) takes effect
//! within 2 s without losing buffered lines or subscribers; YAML errors, unknown keys and
//! out-of-range values keep the running config and flip `leakwatch_config_last_reload_successful`
//! to 0 (a later good file flips it back, with a newer timestamp); the Kubernetes `..data`
//! symlink swap; SIGHUP; `POST /-/reload` behind the admin token.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::http::{get, post, SseClient};
use crate::support::{signal, Leakwatch, TempDir};
use leakwatch::metric_names as n;

/// The reload budget the issue sets.
const WITHIN: Duration = Duration::from_secs(2);
const ALERT: &str = "LeakwatchLogBufferFull";

/// A config with a 4 KiB buffer per source and one rule on buffer fill at `level` (no `for`).
fn config(level: f64, sources: &[(&str, &Path)]) -> String {
    let mut y = String::from("logs:\n  max_bytes: 4KiB\n  sources:\n");
    for (name, path) in sources {
        y.push_str(&format!("    - name: {name}\n      path: {}\n", path.display()));
    }
    y.push_str(&format!(
        "alerts:\n  rules:\n    - ratio: log_buffer_fill\n      levels: {{warning: {level}}}\n      for: 0s\n"
    ));
    y
}

/// Replaces `path` as editors do: a temporary file renamed over it.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write the new config");
    std::fs::rename(&tmp, path).expect("rename it over the config");
}

fn append(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the log file");
    let text: String = (from..to).map(|i| format!("line {i:04} of the application log\n")).collect();
    f.write_all(text.as_bytes()).expect("append");
}

/// Polls `f` every 50 ms until it gives a value, up to `timeout`.
fn wait<T>(timeout: Duration, what: &str, f: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sequence numbers `/logs/{source}` holds, oldest first.
fn seqs(lw: &Leakwatch, source: &str) -> Vec<u64> {
    let v = get(lw.addr, &format!("/logs/{source}?lines=10000&format=json"), &[]).json();
    v["lines"].as_array().map(|a| a.iter().filter_map(|l| l["seq"].as_u64()).collect()).unwrap_or_default()
}

fn source_names(lw: &Leakwatch) -> Vec<String> {
    let v = get(lw.addr, "/logs", &[]).json();
    v["sources"].as_array().expect("sources").iter().filter_map(|s| s["name"].as_str().map(str::to_owned)).collect()
}

/// The rule's instance in `/alerts` (listed while pending, firing or recently resolved): (state, level).
fn alert(lw: &Leakwatch) -> Option<(String, f64)> {
    let v = get(lw.addr, "/alerts", &[]).json();
    let a = v["alerts"].as_array()?.iter().find(|a| a["alert"] == ALERT)?.clone();
    Some((a["state"].as_str()?.to_owned(), a["level"].as_f64()?))
}

fn metric(lw: &Leakwatch, name: &str, labels: &[(&str, &str)]) -> f64 {
    lw.scrape().get(name, labels).unwrap_or_else(|| panic!("{name} is exported"))
}

/// Reloads with `result` so far: a result's series appears with its first reload (0 until then).
fn reloads(lw: &Leakwatch, result: &str) -> f64 {
    lw.scrape().get(n::CONFIG_RELOADS_TOTAL, &[("result", result)]).unwrap_or(0.0)
}

/// Starts leakwatch on `config_path` (plus `args`) and waits for its first sample.
fn start(config_path: &Path, args: &[&str]) -> Leakwatch {
    let mut all = vec!["--config", config_path.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let lw = Leakwatch::start(&all);
    lw.wait_for(Duration::from_secs(10), "the first sample", |m| m.get(n::SAMPLES_TOTAL, &[]).is_some());
    lw
}

struct Setup {
    _dir: TempDir,
    config: PathBuf,
    app: PathBuf,
    extra: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let dir = TempDir::new(tag);
    let (config, app, extra) =
        (dir.path().join("leakwatch.yaml"), dir.path().join("app.log"), dir.path().join("extra.log"));
    std::fs::write(&app, "").expect("create app.log");
    Setup { _dir: dir, config, app, extra }
}

#[test]
fn a_new_rule_level_and_a_new_source_take_effect_within_2s_and_no_buffered_line_is_lost() {
    let s = setup("reload-valid");
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the config");
    let lw = start(&s.config, &[]);
    // 50 lines of 36 bytes: the 4 KiB buffer is 44 % full, under the 90 % level.
    append(&s.app, 0, 50);
    wait(Duration::from_secs(10), "50 lines in app", || (seqs(&lw, "app").len() == 50).then_some(()));
    let mut stream = SseClient::connect(lw.addr, "/logs/app/stream?backlog=0", &[]);
    assert_eq!(stream.status, 200);
    assert_eq!(alert(&lw), None, "not firing at 90 %");
    assert_eq!(metric(&lw, n::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
    let started_at = metric(&lw, n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]);
    let hash_before = metric(&lw, n::CONFIG_HASH, &[]);

    std::fs::write(&s.extra, "already there\n").expect("create extra.log");
    let t0 = Instant::now();
    replace(&s.config, &config(0.2, &[("app", &s.app), ("extra", &s.extra)]));
    wait(WITHIN, "the new level to fire and the new source to be served", || {
        let firing = alert(&lw).is_some_and(|(state, level)| state == "firing" && level == 0.2);
        (firing && source_names(&lw) == ["app", "extra"]).then_some(())
    });
    let took = t0.elapsed();
    eprintln!("reload took effect after {took:?}");
    assert_eq!(seqs(&lw, "app"), (1..=50).collect::<Vec<_>>(), "every buffered line of app is still there");
    let m = lw.scrape();
    assert_eq!(m.get(n::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(1.0));
    assert_eq!(m.get(n::CONFIG_RELOADS_TOTAL, &[("result", "success")]), Some(1.0));
    assert!(m.get(n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]).expect("timestamp") >= started_at);
    assert_ne!(m.get(n::CONFIG_HASH, &[]), Some(hash_before), "the hash follows the file");
    assert!(m.get(n::LOG_BUFFER_BYTES, &[("source", "extra")]).is_some(), "{}", m.text);

    // New lines keep coming, to the page and to the subscriber that was connected before.
    append(&s.app, 50, 60);
    wait(Duration::from_secs(5), "60 lines in app", || {
        (seqs(&lw, "app") == (1..=60).collect::<Vec<_>>()).then_some(())
    });
    let streamed: Vec<u64> = (0..10)
        .filter_map(|_| stream.next_event(Duration::from_secs(5)))
        .map(|e| crate::support::http::seq(&e))
        .collect();
    assert_eq!(streamed, (51..=60).collect::<Vec<_>>(), "the stream opened before the reload continues");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&s.extra)
        .and_then(|mut f| f.write_all(b"new line\n"))
        .expect("append");
    wait(Duration::from_secs(5), "the new source's new line", || (seqs(&lw, "extra").len() == 2).then_some(()));
}

#[test]
fn invalid_files_keep_the_running_config_and_flip_the_reload_metric() {
    let s = setup("reload-invalid");
    std::fs::write(&s.config, config(0.2, &[("app", &s.app)])).expect("write the config");
    let lw = start(&s.config, &[]);
    append(&s.app, 0, 50);
    wait(Duration::from_secs(10), "the rule to fire", || {
        alert(&lw).is_some_and(|(state, level)| state == "firing" && level == 0.2).then_some(())
    });
    let hash = metric(&lw, n::CONFIG_HASH, &[]);
    let good_at = metric(&lw, n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]);
    let path = s.config.display().to_string();
    let bad: [(&str, String, &str); 3] = [
        ("a YAML syntax error", "logs:\n  sources: [\n".to_owned(), "line"),
        ("an unknown key", format!("{}  max_linez: 5\n", config(0.5, &[("app", &s.app)])), "unknown field `max_linez`"),
        (
            "an out-of-range value",
            format!("target:\n  max_processes: 0\n{}", config(0.5, &[("app", &s.app)])),
            "target.max_processes: must be 1..=10000, got 0 (line 2)",
        ),
    ];
    for (i, (what, text, needle)) in bad.iter().enumerate() {
        std::fs::write(&s.config, text).expect("write the bad config");
        wait(WITHIN, &format!("the reload of {what} to fail"), || {
            (reloads(&lw, "failure") == (i + 1) as f64).then_some(())
        });
        let m = lw.scrape();
        assert_eq!(m.get(n::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(0.0), "{what}");
        assert_eq!(m.get(n::CONFIG_HASH, &[]), Some(hash), "{what}: the running config's hash stays");
        assert_eq!(m.get(n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]), Some(good_at), "{what}");
        assert_eq!(source_names(&lw), ["app"], "{what}: the old source is still served");
        assert_eq!(seqs(&lw, "app").len(), 50, "{what}: with its lines");
        assert_eq!(alert(&lw), Some(("firing".to_owned(), 0.2)), "{what}: the old rule is still there");
        let logged = wait(Duration::from_secs(2), "the reason in the log", || {
            lw.log.try_iter().find(|l| l.contains("configuration reload failed"))
        });
        assert!(
            logged.contains(&path) && logged.contains(needle) && logged.contains("line "),
            "{what}: the log names the file, {needle:?} and the line: {logged}"
        );
    }
    // The YAML error names its line.
    std::fs::write(&s.config, "logs:\n  sources:\n    - name: app\n      path: [\n").expect("write");
    wait(WITHIN, "the fourth failure", || (reloads(&lw, "failure") == 4.0).then_some(()));
    let logged = wait(Duration::from_secs(2), "the reason", || {
        lw.log.try_iter().find(|l| l.contains("configuration reload failed"))
    });
    assert!(logged.contains("line 4") || logged.contains("line 5"), "the YAML error names its line: {logged}");

    // The next valid file is applied and flips the metric back, with a newer timestamp.
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the good config");
    wait(WITHIN, "the good reload", || (reloads(&lw, "success") == 1.0).then_some(()));
    let m = lw.scrape();
    assert_eq!(m.get(n::CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(1.0));
    assert!(m.get(n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]).expect("timestamp") > good_at);
    wait(WITHIN, "the raised level to resolve the alert", || {
        (alert(&lw) == Some(("resolved".to_owned(), 0.9))).then_some(())
    });
    assert_eq!(seqs(&lw, "app").len(), 50);
}

#[test]
fn a_kubernetes_configmap_symlink_swap_reloads() {
    let s = setup("reload-k8s");
    let dir = s.config.parent().expect("temp dir").to_path_buf();
    let mount = dir.join("mount");
    std::fs::create_dir(&mount).expect("mount dir");
    // What the kubelet writes: a timestamped directory, `..data` pointing at it, and the key as
    // a symlink through `..data`.
    let write_version = |name: &str, text: &str| {
        let d = mount.join(name);
        std::fs::create_dir(&d).expect("version dir");
        std::fs::write(d.join("config.yaml"), text).expect("config in the version dir");
    };
    write_version("..2026_12_01_21_00_00.000000001", &config(0.9, &[("app", &s.app)]));
    std::os::unix::fs::symlink("..2026_12_01_21_00_00.000000001", mount.join("..data")).expect("..data");
    std::os::unix::fs::symlink("..data/config.yaml", mount.join("config.yaml")).expect("config.yaml");
    let lw = start(&mount.join("config.yaml"), &[]);
    append(&s.app, 0, 20);
    wait(Duration::from_secs(10), "20 lines", || (seqs(&lw, "app").len() == 20).then_some(()));

    write_version("..2026_12_01_21_05_00.000000002", &config(0.9, &[("app", &s.app), ("extra", &s.extra)]));
    let t0 = Instant::now();
    std::os::unix::fs::symlink("..2026_12_01_21_05_00.000000002", mount.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).expect("swap ..data");
    std::fs::remove_dir_all(mount.join("..2026_12_01_21_00_00.000000001")).expect("remove the old version");
    wait(WITHIN, "the new source after the swap", || (source_names(&lw) == ["app", "extra"]).then_some(()));
    eprintln!("the ..data swap took effect after {:?}", t0.elapsed());
    assert_eq!(seqs(&lw, "app"), (1..=20).collect::<Vec<_>>());
    assert_eq!(reloads(&lw, "success"), 1.0);
}

#[test]
fn sighup_reloads_even_an_unchanged_file() {
    let s = setup("reload-sighup");
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the config");
    let lw = start(&s.config, &[]);
    // File events for content already running do not count as reloads; SIGHUP always reloads.
    assert_eq!(reloads(&lw, "success"), 0.0);
    signal(lw.child.id() as i32, "HUP");
    wait(WITHIN, "the SIGHUP reload", || (reloads(&lw, "success") == 1.0).then_some(()));
    // And it applies what changed.
    std::fs::write(&s.extra, "x\n").expect("extra.log");
    let text = config(0.9, &[("app", &s.app), ("extra", &s.extra)]);
    std::fs::write(&s.config, &text).expect("write the config");
    signal(lw.child.id() as i32, "HUP");
    wait(WITHIN, "the new source", || (source_names(&lw) == ["app", "extra"]).then_some(()));
    // Removing it again ends its live streams (cleanly: the final chunk) and stops serving it.
    let mut stream = SseClient::connect(lw.addr, "/logs/extra/stream?backlog=0", &[]);
    assert_eq!(stream.status, 200);
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the config");
    signal(lw.child.id() as i32, "HUP");
    assert!(stream.next_event(Duration::from_secs(5)).is_none() && stream.ended, "the stream ended");
    assert_eq!(source_names(&lw), ["app"]);
    assert_eq!(get(lw.addr, "/logs/extra", &[]).status, 404);
}

#[test]
fn post_reload_needs_the_admin_token_and_reports_a_bad_file() {
    let s = setup("reload-http");
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the config");
    let without = start(&s.config, &[]);
    assert_eq!(post(without.addr, "/-/reload", &[]).status, 404, "no admin token file: no admin endpoints");
    drop(without);

    let token_file = s.config.with_file_name("token");
    std::fs::write(&token_file, "reload-token-0123456789\n").expect("token file");
    let lw = start(&s.config, &["--admin-token-file", token_file.to_str().expect("utf-8")]);
    let wrong = post(lw.addr, "/-/reload", &[("Authorization", "Bearer not-the-token-0000")]);
    assert_eq!(wrong.status, 401);
    assert_eq!(reloads(&lw, "success"), 0.0, "a refused request reloads nothing");
    let auth = [("Authorization", "Bearer reload-token-0123456789")];
    let ok = post(lw.addr, "/-/reload", &auth);
    assert_eq!((ok.status, ok.text()), (200, "configuration reloaded\n".to_owned()));
    assert_eq!(reloads(&lw, "success"), 1.0, "the answer comes after the reload");

    // A bad file: the watcher fails first; an explicit reload fails too, naming the problem.
    std::fs::write(&s.config, "interval: [\n").expect("write");
    wait(WITHIN, "the watcher's failed reload", || (reloads(&lw, "failure") == 1.0).then_some(()));
    let failed = post(lw.addr, "/-/reload", &auth);
    assert_eq!(failed.status, 500);
    assert!(
        failed.text().starts_with("failed to reload config: ") && failed.text().contains("leakwatch.yaml"),
        "{}",
        failed.text()
    );
    assert_eq!(reloads(&lw, "failure"), 2.0);
}

/// A process's thread names (sorted) without the runtime's blocking pool (at most 4 threads,
/// started and ended on demand), and its open descriptors.
fn threads_and_fds(pid: u32) -> (Vec<String>, usize) {
    let mut threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c != "tokio-rt-worker")
        .collect();
    threads.sort();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd dir").count();
    (threads, fds)
}

#[test]
fn a_hundred_reloads_that_add_and_remove_a_source_leak_no_thread_or_descriptor() {
    let s = setup("reload-repeat");
    std::fs::write(&s.extra, "x\n").expect("extra.log");
    let token_file = s.config.with_file_name("token");
    std::fs::write(&token_file, "reload-token-0123456789\n").expect("token file");
    let auth = [("Authorization", "Bearer reload-token-0123456789")];
    let one = config(0.9, &[("app", &s.app)]);
    let two = config(0.9, &[("app", &s.app), ("extra", &s.extra)]);
    std::fs::write(&s.config, &one).expect("write the config");
    let lw = start(&s.config, &["--admin-token-file", token_file.to_str().expect("utf-8")]);
    let pid = lw.child.id();
    // Settle: one reload of each shape, so lazily created threads (the blocking pool) exist.
    for text in [&two, &one] {
        std::fs::write(&s.config, text).expect("write");
        assert_eq!(post(lw.addr, "/-/reload", &auth).status, 200);
    }
    // The watcher thread of a stopped tail ends asynchronously: let the last one go.
    std::thread::sleep(Duration::from_millis(500));
    let baseline = threads_and_fds(pid);
    assert!(baseline.0.iter().any(|t| t == "tail-app"), "{baseline:?}");
    for i in 0..100 {
        std::fs::write(&s.config, if i % 2 == 0 { &two } else { &one }).expect("write");
        let r = post(lw.addr, "/-/reload", &auth);
        assert_eq!(r.status, 200, "reload {i}: {}", r.text());
    }
    assert_eq!(source_names(&lw), ["app"], "the last file has one source");
    // Stopped tail threads and their watchers end shortly after the reload that removed them.
    let after = wait(Duration::from_secs(5), &format!("threads and descriptors back to {baseline:?}"), || {
        let now = threads_and_fds(pid);
        (now == baseline).then_some(now)
    });
    eprintln!("threads (without the blocking pool), fds: {after:?} before and after 100 reloads");
    assert!(reloads(&lw, "success") >= 102.0);
}

#[test]
fn target_and_buffer_caps_change_in_place() {
    let s = setup("reload-target");
    std::fs::write(&s.config, config(0.9, &[("app", &s.app)])).expect("write the config");
    let lw = start(&s.config, &[]);
    append(&s.app, 0, 30);
    wait(Duration::from_secs(10), "30 lines", || (seqs(&lw, "app").len() == 30).then_some(()));
    let mut stream = SseClient::connect(lw.addr, "/logs/app/stream?backlog=0", &[]);
    assert!(lw.scrape().get(n::TARGET_PROCESSES, &[("target", "leakwatch")]).is_some());

    // A new target name, and a line cap below what the buffer holds.
    let text = config(0.9, &[("app", &s.app)])
        .replace("logs:\n", "logs:\n  max_lines: 10\n")
        .replace("alerts:", "target:\n  name: renamed\nalerts:");
    replace(&s.config, &text);
    lw.wait_for(WITHIN, "the new target label", |m| m.get(n::TARGET_PROCESSES, &[("target", "renamed")]).is_some());
    let v = get(lw.addr, "/logs", &[]).json();
    let app = &v["sources"][0];
    assert_eq!((app["max_lines"].as_u64(), app["lines"].as_u64()), (Some(10), Some(10)), "{app}");
    assert_eq!(seqs(&lw, "app"), (21..=30).collect::<Vec<_>>(), "only the oldest lines went");
    assert_eq!(app["subscribers"].as_u64(), Some(1), "the subscriber stays");
    append(&s.app, 30, 31);
    let next = stream.next_event(Duration::from_secs(5)).expect("the subscriber gets the next line");
    assert_eq!(crate::support::http::seq(&next), 31);
}

#[test]
fn in_run_mode_sighup_reloads_and_is_not_forwarded() {
    let s = setup("reload-run");
    std::fs::write(&s.config, "logs:\n  max_lines: 100\n").expect("write the config");
    let lw = Leakwatch::start(&["--config", s.config.to_str().expect("utf-8"), "run", "--", "sleep", "600"]);
    let m = lw.wait_for(Duration::from_secs(10), "the child", |m| m.get(n::TARGET_PROCESSES, &[]) == Some(1.0));
    let child: i32 = m.label_values(n::TARGET_PROCESS_INFO, "pid")[0].parse().expect("pid");
    // The wrapped command's streams take the new caps in place.
    std::fs::write(&s.config, "logs:\n  max_lines: 50\n").expect("write the config");
    signal(lw.child.id() as i32, "HUP");
    lw.wait_for(WITHIN, "the reload", |m| {
        m.get(n::LOG_BUFFER_MAX_LINES, &[("source", "stdout")]) == Some(50.0)
            && m.get(n::CONFIG_RELOADS_TOTAL, &[("result", "success")]) >= Some(1.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(Path::new(&format!("/proc/{child}")).exists(), "the wrapped command did not get SIGHUP");
    assert_eq!(lw.scrape().get(n::TARGET_PROCESSES, &[]), Some(1.0));
}
