//! Fan-out of one log source to 100 live subscribers, against ingest alone, in the same run.
//!
//! ```text
//! cargo bench --bench log_fanout
//! ```
//!
//! A file of web-service-like lines (64 MiB by default; `LEAKWATCH_BENCH_MIB` overrides) is
//! generated in a temp dir (removed afterwards) and held in memory. Then:
//!
//! 1. **ingest alone**: the lines go through a [`LineSplitter`] into a [`LogRing`] with the
//!    default caps (10 000 lines / 8 MiB) and no subscriber;
//! 2. **ingest with 100 subscribers**: the same, while 100 subscribers (tasks on a one-thread
//!    runtime of their own, so ingest keeps one core) read pages of at most 512 lines / 64 KiB
//!    and encode every line as a Server-Sent Event, as `/logs/{source}/stream` does. A subscriber
//!    that cannot keep up misses lines (counted); ingest never waits for one. Measured twice: at
//!    full speed (the file 8 times over: lock contention at tens of millions of lines/s), and
//!    paced at 50 000 lines/s (a very busy service), where the figure is the writer's own time
//!    per line with and without the subscribers;
//! 3. **fan-out throughput**: a ring large enough to hold the whole file, filled first; then 100
//!    subscribers each read and encode every line from the start. Aggregate lines/s and MB/s
//!    delivered, and the per-subscriber rate.
//!
//! Without `--bench` (under `cargo test --all-targets`) it runs on 1 MiB as a smoke test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use leakwatch::http::sse;
use leakwatch::logs::lines::LineSplitter;
use leakwatch::logs::ring::{LogRing, ReadLimits, RingLimits, LINE_OVERHEAD_BYTES};

const SUBSCRIBERS: usize = 100;
const FRAME: ReadLimits = ReadLimits { lines: 512, bytes: 64 << 10 };
/// Full-speed runs ingest the file this many times, to last long enough to measure.
const REPEAT: usize = 8;
/// Lines per second of the paced runs.
const PACE: u64 = 50_000;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mib: usize = match std::env::var("LEAKWATCH_BENCH_MIB").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if benching => 64,
        None => 1,
    };
    let data = generate(mib << 20);
    let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
    println!(
        "log fan-out: {:.0} MiB, {lines} lines (avg {:.0} B), {SUBSCRIBERS} subscribers{}",
        data.len() as f64 / 1048576.0,
        data.len() as f64 / lines as f64,
        if benching { "" } else { " (smoke run: `cargo bench --bench log_fanout` to measure)" }
    );
    let default_caps =
        RingLimits { max_lines: 10_000, max_bytes: 8 << 20, max_line_bytes: 64 << 10, max_subscribers: SUBSCRIBERS };

    // 1. Ingest alone, at full speed and paced.
    let ring = Arc::new(LogRing::new(default_caps));
    let alone = ingest(&ring, &data, REPEAT, None);
    assert_eq!(ring.stats().lines_total, lines * REPEAT as u64);
    let ring = Arc::new(LogRing::new(default_caps));
    let paced_alone = ingest(&ring, &data, 1, Some(PACE));

    // 2. The same while 100 subscribers read along.
    let along = |pace: Option<u64>| {
        let ring = Arc::new(LogRing::new(default_caps));
        let (delivered, missed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let done = Arc::new(AtomicBool::new(false));
        let readers = subscribers(&ring, 0, Some(done.clone()), delivered.clone(), missed.clone());
        std::thread::sleep(std::time::Duration::from_millis(50)); // let every subscriber start waiting
        let busy = ingest(&ring, &data, if pace.is_some() { 1 } else { REPEAT }, pace);
        std::thread::sleep(std::time::Duration::from_millis(20)); // the last lines reach the readers
        done.store(true, Ordering::Release);
        ring.push(b"end", false); // wakes subscribers so they see `done`
        readers.join().expect("subscriber runtime");
        (busy, delivered.load(Ordering::Relaxed), missed.load(Ordering::Relaxed))
    };
    let (full_along, d, m) = along(None);
    let (paced_along, paced_d, paced_m) = along(Some(PACE));

    // 3. Fan-out throughput from a full ring.
    // `max_bytes` caps the texts and the 16-byte entry of every line.
    let held = data.len() + (lines as usize + 1) * LINE_OVERHEAD_BYTES + 1;
    let big = RingLimits { max_lines: lines as usize + 1, max_bytes: held, ..default_caps };
    let ring = Arc::new(LogRing::new(big));
    ingest(&ring, &data, 1, None);
    let (fan_delivered, fan_missed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let t = Instant::now();
    subscribers(&ring, lines, None, fan_delivered.clone(), fan_missed.clone()).join().expect("subscriber runtime");
    let fan_secs = t.elapsed().as_secs_f64();
    let fan_lines = fan_delivered.load(Ordering::Relaxed);
    assert_eq!(fan_lines, lines * SUBSCRIBERS as u64, "every subscriber got every line");
    assert_eq!(fan_missed.load(Ordering::Relaxed), 0);

    let bytes = data.len() as f64;
    let offered = |repeat: u64| lines * repeat * SUBSCRIBERS as u64;
    println!("{:<52} {:>14} {:>10} {:>10}", "full-speed ingest", "lines/s", "MB/s", "vs alone");
    let row = |name: &str, secs: f64, base: f64| {
        let n = lines as f64 * REPEAT as f64;
        println!("{name:<52} {:>14.0} {:>10.0} {:>9.2}x", n / secs, bytes * REPEAT as f64 / secs / 1e6, base / secs);
    };
    row("ingest alone (no subscriber)", alone, alone);
    row(&format!("ingest with {SUBSCRIBERS} subscribers reading along"), full_along, alone);
    println!(
        "  the subscribers received {d} lines ({:.1} % of {} offered) and were told they missed {m}",
        100.0 * d as f64 / offered(REPEAT as u64) as f64,
        offered(REPEAT as u64)
    );
    println!(
        "paced ingest at {PACE} lines/s: writer time {:.0} ns/line alone, {:.0} ns/line with {SUBSCRIBERS} subscribers \
         ({:.2}x); the subscribers received {:.1} % of {} lines offered, missed {paced_m}",
        paced_alone * 1e9 / lines as f64,
        paced_along * 1e9 / lines as f64,
        paced_along / paced_alone,
        100.0 * paced_d as f64 / offered(1) as f64,
        offered(1),
    );
    println!(
        "fan-out from a full ring to {SUBSCRIBERS} subscribers: {:.0} lines/s, {:.0} MB/s in all \
         ({:.0} lines/s per subscriber), SSE-encoded, in {fan_secs:.2} s",
        fan_lines as f64 / fan_secs,
        bytes * SUBSCRIBERS as f64 / fan_secs / 1e6,
        lines as f64 / fan_secs,
    );
}

/// Feeds `data` (`repeat` times) through a splitter into `ring` in 64 KiB chunks; returns the
/// seconds spent in the writer. With `pace` (lines/s), chunks are held back to that rate and the
/// pauses are not counted.
fn ingest(ring: &LogRing, data: &[u8], repeat: usize, pace: Option<u64>) -> f64 {
    let started = Instant::now();
    let mut busy = 0.0;
    let mut splitter = LineSplitter::new(ring.limits().max_line_bytes);
    let mut stored = 0u64;
    for _ in 0..repeat {
        for chunk in data.chunks(64 << 10) {
            if let Some(rate) = pace {
                let due = std::time::Duration::from_secs_f64(stored as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            let t = Instant::now();
            let mut w = ring.writer();
            splitter.feed(chunk, |line, cut| {
                w.push(line, cut);
                stored += 1;
            });
            drop(w);
            busy += t.elapsed().as_secs_f64();
        }
    }
    busy
}

/// Starts 100 subscribers from the oldest line on a one-thread runtime in its own thread. Each
/// reads until it has `until` lines (when `until > 0`) or until `done` is set, encoding every
/// line as an SSE event.
fn subscribers(
    ring: &Arc<LogRing>,
    until: u64,
    done: Option<Arc<AtomicBool>>,
    delivered: Arc<AtomicU64>,
    missed: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let subs: Vec<_> = (0..SUBSCRIBERS).map(|_| ring.subscribe(0).expect("below the subscriber cap")).collect();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let tasks: Vec<_> = subs
                .into_iter()
                .map(|mut sub| {
                    let (done, delivered, missed) = (done.clone(), delivered.clone(), missed.clone());
                    tokio::spawn(async move {
                        let mut got = 0u64;
                        let mut frame = Vec::with_capacity(128 << 10);
                        let mut lost = 0u64;
                        // Lines missed count towards `until` too: a subscriber that fell out of
                        // the ring must not wait for lines that will never come.
                        while until == 0 || got + lost < until {
                            if done.as_ref().is_some_and(|d| d.load(Ordering::Acquire)) {
                                break;
                            }
                            let Some(page) = sub.next_page(FRAME).await else { break };
                            frame.clear();
                            for line in page.iter() {
                                sse::event(&mut frame, "message", Some(line.seq), line.text);
                            }
                            got += page.len() as u64;
                            lost += page.missed;
                            missed.fetch_add(page.missed, Ordering::Relaxed);
                            std::hint::black_box(&frame);
                        }
                        delivered.fetch_add(got, Ordering::Relaxed);
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        });
    })
}

/// Lines like a web service's log, 40..400 bytes, until `target` bytes.
fn generate(target: usize) -> Vec<u8> {
    let paths = ["/api/v1/orders", "/api/v1/users/42/cart", "/healthz", "/static/app.3f9c1.js", "/api/v2/search"];
    let mut out = Vec::with_capacity(target + 512);
    let (mut n, mut x) = (0u64, 0x2545F4914F6CDD1Du64);
    while out.len() < target {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let extra = "k=v ".repeat((x % 80) as usize);
        out.extend_from_slice(
            format!(
                "2026-01-01T12:00:{:02}.{:06}Z INFO request id={x:016x} path={} status={} {extra}\n",
                n % 60,
                n % 1_000_000,
                paths[(x % 5) as usize],
                [200, 200, 200, 404, 500][(x >> 8) as usize % 5],
            )
            .as_bytes(),
        );
        n += 1;
    }
    out
}
