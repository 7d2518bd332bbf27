//! Configuration with the real binary: flag > environment > file > default, and config errors
//! exit with 64 naming the problem.

use std::process::Command;
use std::time::Duration;

use crate::support::{binary, run_to_exit, Leakwatch, TempDir};
use leakwatch::metric_names as n;

fn target_label(lw: &Leakwatch) -> String {
    let m = lw.wait_for(Duration::from_secs(10), "a first sample", |m| m.get(n::TARGET_PROCESSES, &[]).is_some());
    let names = m.label_values(n::TARGET_PROCESSES, "target");
    assert_eq!(names.len(), 1, "{names:?}");
    names[0].clone()
}

fn start(config: Option<&std::path::Path>, env: Option<&str>, flag: Option<&str>) -> Leakwatch {
    let mut cmd = Command::new(binary());
    if let Some(name) = env {
        cmd.env("LEAKWATCH_TARGET_NAME", name);
    } else {
        cmd.env_remove("LEAKWATCH_TARGET_NAME");
    }
    let mut args = Vec::new();
    if let Some(path) = config {
        args.extend(["--config", path.to_str().expect("UTF-8 path")]);
    }
    if let Some(name) = flag {
        args.extend(["--target-name", name]);
    }
    Leakwatch::start_cmd(cmd, &args)
}

#[test]
fn flags_beat_environment_beats_file_beats_default() {
    let dir = TempDir::new("config");
    let file = dir.path().join("leakwatch.yaml");
    std::fs::write(&file, "interval: 300ms\ntarget:\n  name: from-file\n").unwrap();

    assert_eq!(target_label(&start(None, None, None)), "leakwatch");
    assert_eq!(target_label(&start(Some(&file), None, None)), "from-file");
    assert_eq!(target_label(&start(Some(&file), Some("from-env"), None)), "from-env");
    assert_eq!(target_label(&start(Some(&file), Some("from-env"), Some("from-flag"))), "from-flag");
}

#[test]
fn with_no_configuration_leakwatch_watches_itself() {
    let lw = start(None, None, None);
    let m = lw.wait_for(Duration::from_secs(10), "own process info", |m| {
        !m.label_values(n::TARGET_PROCESS_INFO, "pid").is_empty()
    });
    assert_eq!(m.label_values(n::TARGET_PROCESS_INFO, "pid"), vec![lw.child.id().to_string()]);
    assert!(m.get(n::HOST_MEMORY_TOTAL_BYTES, &[]).unwrap_or(0.0) > 0.0, "host memory is reported");
}

fn exit_of(args: &[&str]) -> (Option<i32>, String) {
    let out = run_to_exit(args);
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn config_errors_exit_64_and_name_the_problem() {
    let dir = TempDir::new("config-bad");
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "interval: 5s\ntarget:\n  pidd: 3\n").unwrap();
    let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("pidd") && stderr.contains("line 3"), "names the key and its line: {stderr}");

    let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", "--interval", "0s"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("interval"), "{stderr}");

    let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", "--config", "/nonexistent/leakwatch.yaml"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("/nonexistent/leakwatch.yaml"), "{stderr}");
}

#[test]
fn a_validation_problem_is_named_by_its_key_path_and_line() {
    let dir = TempDir::new("config-am-ca");
    let file = dir.path().join("am.yaml");
    let yaml = "interval: 5s\nalerts:\n  alertmanager:\n    url: https://127.0.0.1:9093\n    ca_file: /nonexistent/am-ca.pem\n";
    std::fs::write(&file, yaml).unwrap();
    let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("alerts.alertmanager.ca_file: /nonexistent/am-ca.pem: "), "{stderr}");
    assert!(stderr.contains("(line 5)"), "the line comes from the key path: {stderr}");
}

#[test]
fn errors_for_files_that_are_not_yaml_contain_no_line_of_the_file() {
    let dir = TempDir::new("config-not-yaml");
    // Shapes of files a path may name by mistake: a shadow file, a key, an env file, a script.
    let files = [
        "root:*:20228:0:99999:7:::\ndaemon:*:20228:0:99999:7:::\n",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
        "DB_PASSWORD=hunter2 secret\nAPI_KEY=abc:def\n",
        "interval: \"hunter2 secret\"\n",
        "target:\n  pid: \"hunter2 secret\"\n",
        "#!/bin/sh\nexec app --token s3cr3t:x\n",
    ];
    for (i, text) in files.iter().enumerate() {
        let file = dir.path().join(format!("file{i}"));
        std::fs::write(&file, text).unwrap();
        for flag in ["--config", "--web.config.file"] {
            let (code, stderr) = exit_of(&["--listen", "127.0.0.1:0", flag, file.to_str().unwrap()]);
            assert_eq!(code, Some(64), "{flag} {text:?}: {stderr}");
            for line in text.lines().map(str::trim).filter(|l| l.len() > 3) {
                assert!(!stderr.contains(line), "{flag}: the error repeats {line:?}: {stderr}");
            }
            for secret in ["hunter2", "s3cr3t", "20228", "MIIEv"] {
                assert!(!stderr.contains(secret), "{flag}: the error repeats {secret:?}: {stderr}");
            }
        }
    }
}

#[test]
fn listen_takes_a_host_name() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    // The helper puts `--listen 127.0.0.1:0` before the subcommand; the one after `serve` wins.
    let lw = Leakwatch::start(&["serve", "--listen", &format!("localhost:{port}")]);
    assert!(lw.addr.ip().is_loopback() && lw.addr.port() == port, "{}", lw.addr);
    lw.wait_for(Duration::from_secs(20), "a scrape over localhost", |m| m.get(n::TARGET_PROCESSES, &[]).is_some());
}

#[test]
fn a_pid_target_is_labelled_by_its_command_name() {
    let mut child = Command::new("sleep").arg("600").spawn().expect("spawn sleep");
    let pid = child.id().to_string();
    let lw = Leakwatch::start_cmd(Command::new(binary()), &["--pid", &pid]);
    assert_eq!(target_label(&lw), "sleep");
    drop(lw);
    let _ = child.kill();
    let _ = child.wait();
    let lw = Leakwatch::start_cmd(Command::new(binary()), &["--pid", "999999"]);
    assert_eq!(target_label(&lw), "pid-999999");
}
