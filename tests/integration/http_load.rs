//! `/metrics` keeps answering within 1 s while the log endpoints are under load: 8 clients loop
//! over maximum-size pages (`lines=100000&max_bytes=64MiB`) of a 60 MiB buffer that a writer
//! keeps growing (2000 lines/s), and 40 streams follow it. The page memory budget turns the excess into 503 with
//! `Retry-After`; no page request hangs. The HTTP families show the load. Runs the release binary
//! (`LEAKWATCH_RELEASE_BIN`, set by `tests/run.sh`), alone: run in parallel with the suite it would
//! slow the timing-sensitive tests, and they it (`tests/run.sh` runs it after them).

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::http::{get, SseClient};
use crate::support::{http_get, release_binary, Leakwatch, Metrics, TempDir};
use leakwatch::metric_names as n;

const PAGERS: usize = 8;
const STREAMS: usize = 40;
const LOAD: Duration = Duration::from_secs(15);

#[test]
#[ignore = "a load test that takes both cores: tests/run.sh runs it alone, after the suite (--ignored)"]
fn metrics_answer_within_a_second_while_pages_and_streams_load_the_log_endpoints() {
    let dir = TempDir::new("http-load");
    let path = dir.path().join("busy.log");
    // 60 000 lines of 1 KiB: 60 MiB held, so every page wants almost half the page budget.
    let line = format!("{}\n", "x".repeat(1023));
    std::fs::write(&path, line.repeat(60_000)).expect("write the log file");
    let config = dir.path().join("leakwatch.yaml");
    let yaml = format!(
        "logs:\n  sources:\n    - name: busy\n      path: {}\n      max_lines: 100000\n      max_bytes: 64MiB\n      max_line_bytes: 4KiB\n      max_subscribers: 100\n",
        path.display()
    );
    std::fs::write(&config, yaml).expect("write the config");
    // The binary as it ships: the bound is about the release build (a debug build copies pages
    // several times slower while holding the ring's lock).
    let lw = Leakwatch::start_cmd(Command::new(release_binary()), &["--config", config.to_str().expect("utf-8 path")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(lw.addr, "/logs", &[]).json()["sources"][0]["lines"].as_u64() < Some(60_000) {
        assert!(Instant::now() < deadline, "the 60 000 lines were not read in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    // A writer keeps the source busy: 20 lines every 10 ms.
    {
        let (stop, path) = (stop.clone(), path.clone());
        threads.push(std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open the log");
            let burst = "live line of a busy source\n".repeat(20);
            while !stop.load(Ordering::Relaxed) {
                f.write_all(burst.as_bytes()).expect("append");
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    let events = Arc::new(AtomicU64::new(0));
    for _ in 0..STREAMS {
        let (stop, events, addr) = (stop.clone(), events.clone(), lw.addr);
        threads.push(std::thread::spawn(move || {
            let mut sse = SseClient::connect(addr, "/logs/busy/stream?backlog=1000", &[]);
            assert_eq!(sse.status, 200, "a stream was refused");
            while !stop.load(Ordering::Relaxed) {
                if sse.next_event(Duration::from_secs(1)).is_some() {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let (ok, busy) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let page_bytes = Arc::new(AtomicU64::new(0));
    for _ in 0..PAGERS {
        let (stop, ok, busy, page_bytes, addr) = (stop.clone(), ok.clone(), busy.clone(), page_bytes.clone(), lw.addr);
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // `get` reads with a 20 s timeout and panics past it: a hung page fails the test.
                let r = get(addr, "/logs/busy?lines=100000&max_bytes=64MiB", &[]);
                match r.status {
                    200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        page_bytes.fetch_add(r.body.len() as u64, Ordering::Relaxed);
                    }
                    503 => {
                        assert!(r.header("retry-after").is_some(), "a 503 without Retry-After: {}", r.text());
                        busy.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    other => panic!("a page answered {other}: {}", r.text()),
                }
            }
        }));
    }

    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < LOAD {
        let t = Instant::now();
        let (status, body) = http_get(lw.addr, "/metrics?detail=1");
        let took = t.elapsed();
        assert_eq!(status, 200);
        assert!(body.contains("leakwatch_http_connections "), "the HTTP families are in the scrape");
        assert!(took < Duration::from_secs(1), "a scrape took {took:?} under load");
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    let during = Metrics::parse(&http_get(lw.addr, "/metrics?detail=1").1);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a load thread failed");
    }
    // The HTTP figures are those of the render (one per sample): wait for a sample taken after
    // the last scrape above, whose render counts every request answered before it.
    let seen = Metrics::parse(&http_get(lw.addr, "/metrics?detail=1").1).get(n::SAMPLES_TOTAL, &[]);
    let m = lw.wait_for(Duration::from_secs(30), "a new sample", |m| m.get(n::SAMPLES_TOTAL, &[]) > seen);
    latencies.sort();
    let (ok, busy) = (ok.load(Ordering::Relaxed), busy.load(Ordering::Relaxed));
    eprintln!(
        "{} scrapes under load: median {:?}, max {:?}; pages: {ok} answered 200 ({} MiB), {busy} answered 503; \
         {} stream events to {STREAMS} streams",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        page_bytes.load(Ordering::Relaxed) >> 20,
        events.load(Ordering::Relaxed),
    );
    assert!(ok > 0, "no page was answered");
    assert!(events.load(Ordering::Relaxed) > 0, "the streams received nothing");
    // The load is visible in leakwatch's own figures.
    let requests = |route: &str, class: &str| {
        m.get(n::HTTP_REQUESTS_TOTAL, &[("route", route), ("status_class", class)]).unwrap_or(0.0)
    };
    assert!(requests("logs", "2xx") >= 1.0 && requests("metrics", "2xx") >= latencies.len() as f64);
    assert_eq!(requests("logs", "5xx") as u64, busy, "every 503 is counted");
    assert!(during.get(n::HTTP_CONNECTIONS, &[]).expect("open connections") >= STREAMS as f64);
    assert_eq!(m.get(n::HTTP_PAGE_MEMORY_MAX_BYTES, &[]), Some((128u64 << 20) as f64));
}
