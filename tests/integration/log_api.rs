//! `GET /logs` and `GET /logs/{source}` on the real binary following a real file: every
//! parameter, every invalid value (400 naming the parameter), and pagination in both directions
//! while lines keep arriving.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::http::get;
use crate::support::{Leakwatch, TempDir};

fn start(dir: &TempDir, max_lines: usize) -> (Leakwatch, std::path::PathBuf) {
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"").expect("create the log file");
    let config = dir.path().join("leakwatch.yaml");
    let yaml =
        format!("logs:\n  max_lines: {max_lines}\n  sources:\n    - name: app\n      path: {}\n", path.display());
    std::fs::write(&config, yaml).expect("write the config");
    let lw = Leakwatch::start(&["--config", config.to_str().expect("utf-8 path")]);
    (lw, path)
}

fn append(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open the log file");
    let mut text = String::new();
    for i in from..=to {
        text.push_str(&format!("line {i}{}\n", if i % 10 == 0 { " ERROR" } else { "" }));
    }
    f.write_all(text.as_bytes()).expect("append to the log file");
}

fn wait_lines(lw: &Leakwatch, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = get(lw.addr, "/logs", &[]).json();
        if v["sources"][0]["lines_total"].as_u64() == Some(n) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {n} lines: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn texts(v: &serde_json::Value) -> Vec<String> {
    v["lines"].as_array().expect("lines array").iter().map(|l| l["text"].as_str().expect("text").to_owned()).collect()
}

fn seqs(v: &serde_json::Value) -> Vec<u64> {
    v["lines"].as_array().expect("lines array").iter().map(|l| l["seq"].as_u64().expect("seq")).collect()
}

fn page(lw: &Leakwatch, query: &str) -> serde_json::Value {
    let r = get(lw.addr, &format!("/logs/app?{query}"), &[]);
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

#[test]
fn every_retrieval_parameter_works() {
    let dir = TempDir::new("logapi");
    let (lw, path) = start(&dir, 1000);
    append(&path, 1, 300);
    wait_lines(&lw, 300);

    let list = get(lw.addr, "/logs", &[]).json();
    let app = &list["sources"][0];
    assert_eq!((app["name"].as_str(), app["kind"].as_str()), (Some("app"), Some("file")));
    assert_eq!(
        (app["lines"].as_u64(), app["max_lines"].as_u64(), app["next_seq"].as_u64()),
        (Some(300), Some(1000), Some(301))
    );

    // Default: the newest 100, oldest first, with cursors.
    let v = page(&lw, "");
    assert_eq!(seqs(&v), (201..=300).collect::<Vec<_>>());
    assert_eq!(
        (v["oldest_seq"].as_u64(), v["newest_seq"].as_u64(), v["more"].as_bool()),
        (Some(201), Some(300), Some(true))
    );
    assert!(v["lines"][0]["ts"].as_str().unwrap().starts_with("20"));
    assert_eq!(texts(&page(&lw, "lines=3")), ["line 298", "line 299", "line 300 ERROR"]);
    assert_eq!(texts(&page(&lw, "limit=2")), ["line 299", "line 300 ERROR"]);
    // Cursors.
    assert_eq!(seqs(&page(&lw, "before_seq=11&lines=3")), [8, 9, 10]);
    assert_eq!(seqs(&page(&lw, "after_seq=295")), [296, 297, 298, 299, 300]);
    let v = page(&lw, "after_seq=300");
    assert_eq!((v["count"].as_u64(), v["more"].as_bool()), (Some(0), Some(false)), "caught up: an empty page");
    // Filters.
    let v = page(&lw, "contains=ERROR&lines=3");
    assert_eq!(texts(&v), ["line 280 ERROR", "line 290 ERROR", "line 300 ERROR"]);
    assert_eq!(texts(&page(&lw, "regex=%5Eline%20(7%7C77)%24&lines=10")), ["line 7", "line 77"]);
    assert_eq!(
        texts(&page(&lw, "regex=%5Eline%202&contains=ERROR&lines=2&before_seq=300")),
        ["line 280 ERROR", "line 290 ERROR"]
    );
    // A byte cap cuts at whole lines, keeps the newest and says so.
    let full = get(lw.addr, "/logs/app?lines=10", &[]).json();
    let one_line = serde_json::to_string(&full["lines"][9]).unwrap().len();
    let v = page(&lw, &format!("lines=10&max_bytes={}", one_line * 3 + 2));
    assert_eq!(seqs(&v), [298, 299, 300]);
    assert_eq!(v["truncated"].as_bool(), Some(true));
    let v = page(&lw, "lines=10&max_bytes=1");
    assert_eq!((v["count"].as_u64(), v["truncated"].as_bool()), (Some(0), Some(true)));
    assert_eq!(page(&lw, "lines=2&max_bytes=1MiB")["truncated"].as_bool(), Some(false));
    // Text on request, by parameter or Accept header; figures in headers.
    for r in [
        get(lw.addr, "/logs/app?lines=2&format=text", &[]),
        get(lw.addr, "/logs/app?lines=2", &[("Accept", "text/plain")]),
    ] {
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "line 299\nline 300 ERROR\n");
        assert_eq!(r.header("x-leakwatch-oldest-seq"), Some("299"));
        assert_eq!(r.header("x-leakwatch-truncated"), Some("false"));
    }
    let r = get(lw.addr, "/logs/app?lines=10&format=text&max_bytes=20", &[]);
    assert_eq!(r.text(), "line 300 ERROR\n", "whole lines within 20 bytes");
    assert_eq!(r.header("x-leakwatch-truncated"), Some("true"));
}

#[test]
fn every_invalid_value_is_a_400_that_names_the_parameter() {
    let dir = TempDir::new("logapi-bad");
    let (lw, path) = start(&dir, 1000);
    append(&path, 1, 20);
    wait_lines(&lw, 20);
    let cases: &[(&str, &str, &str)] = &[
        ("lines=0", "lines", "1..=100000"),
        ("lines=-1", "lines", "1..=100000"),
        ("lines=10abc", "lines", "1..=100000"),
        ("lines=1e9", "lines", "1..=100000"),
        ("lines=100001", "lines", "1..=100000"),
        ("lines=1&lines=2", "lines", "more than once"),
        ("lines=1&limit=1", "limit", "only one"),
        ("limit=99999999999", "limit", "1..=100000"),
        ("max_bytes=0", "max_bytes", "1..=67108864"),
        ("max_bytes=65MiB", "max_bytes", "1..=67108864"),
        ("max_bytes=lots", "max_bytes", "byte count"),
        ("before_seq=5&after_seq=2", "after_seq", "one way"),
        ("before_seq=0", "before_seq", "integer 1..="),
        ("before_seq=99", "before_seq", "beyond the newest line (20)"),
        ("after_seq=21", "after_seq", "beyond the newest line (20)"),
        ("after_seq=18446744073709551616", "after_seq", "integer 0..="),
        ("regex=(unclosed", "regex", "not a valid regex"),
        (&format!("regex={}", "a".repeat(1025)), "regex", "1..=1024"),
        ("regex=%FF", "regex", "UTF-8"),
        ("contains=", "contains", "1..=1024"),
        ("format=xml", "format", "json or text"),
        ("colour=red", "colour", "unknown parameter"),
    ];
    for (query, param, needle) in cases {
        let r = get(lw.addr, &format!("/logs/app?{query}"), &[]);
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        let v = r.json();
        assert_eq!(v["param"].as_str(), Some(*param), "{query}: {v}");
        let message = v["error"].as_str().unwrap();
        assert!(message.starts_with(&format!("{param}: ")) && message.contains(needle), "{query}: {message}");
    }
    // Raw bytes are fine as a needle: no line holds them.
    assert_eq!(page(&lw, "contains=%FF")["count"].as_u64(), Some(0));
    let r = get(lw.addr, "/logs/app", &[("Accept", "image/png")]);
    assert_eq!((r.status, r.json()["param"].as_str()), (406, Some("Accept")));
    for name in ["nope", "..", "%2F", "%C3%A9", "", "app/", "app/extra"] {
        let r = get(lw.addr, &format!("/logs/{name}"), &[]);
        assert_eq!(r.status, 404, "/logs/{name}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("sources: app"));
    }
    // Nothing collected was lost to the bad requests.
    assert_eq!(page(&lw, "lines=100")["count"].as_u64(), Some(20));
}

/// Pages forward with `after_seq` and backward with `before_seq` while a writer keeps appending:
/// no line comes twice, none is skipped.
#[test]
fn pagination_is_stable_while_lines_keep_arriving() {
    let dir = TempDir::new("logapi-page");
    let (lw, path) = start(&dir, 1_000_000);
    append(&path, 1, 500);
    wait_lines(&lw, 500);
    let written = Arc::new(AtomicU64::new(500));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop, path) = (written.clone(), stop.clone(), path.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let n = written.load(Ordering::Acquire);
                append(&path, n + 1, n + 50);
                written.store(n + 50, Ordering::Release);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Backward from the newest at the time of the first page, down to line 1.
    let first = page(&lw, "lines=37");
    let mut backward: Vec<u64> = seqs(&first);
    let mut cursor = first["oldest_seq"].as_u64().unwrap();
    while cursor > 1 {
        let v = page(&lw, &format!("before_seq={cursor}&lines=37"));
        let s = seqs(&v);
        assert_eq!(s.last().copied(), Some(cursor - 1), "pages join up");
        backward.splice(0..0, s);
        cursor = v["oldest_seq"].as_u64().unwrap();
    }
    let newest_then = *backward.last().unwrap();
    assert_eq!(backward, (1..=newest_then).collect::<Vec<_>>());
    // Forward from the start until the writer has added 5000 more lines and we caught up.
    let target = newest_then + 5000;
    let mut forward: Vec<u64> = Vec::new();
    let mut after = 0u64;
    loop {
        let v = page(&lw, &format!("after_seq={after}&limit=113"));
        assert_eq!(v["missed"].as_u64(), Some(0));
        for (seq, text) in seqs(&v).into_iter().zip(texts(&v)) {
            assert_eq!(text.split_whitespace().nth(1), Some(seq.to_string().as_str()), "line text matches its seq");
            forward.push(seq);
        }
        after = v["newest_seq"].as_u64().unwrap_or(after);
        if after >= target {
            break;
        }
        if v["count"].as_u64() == Some(0) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    assert_eq!(forward, (1..=after).collect::<Vec<_>>(), "every line once, in order");
    eprintln!("paged back over {} lines and forward over {} while the writer appended", backward.len(), forward.len());
}
