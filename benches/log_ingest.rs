//! Log ingest throughput from a file, against baselines measured on the same file in the same run.
//!
//! ```text
//! cargo bench --bench log_ingest
//! ```
//!
//! A file of realistic lines of varying length (512 MiB by default; `LEAKWATCH_BENCH_MIB`
//! overrides) is generated in a temp dir (removed afterwards) and read once to warm the page
//! cache. Then, in the same process:
//!
//! 1. `cat FILE > /dev/null`: the cost of getting the bytes at all;
//! 2. a plain line scan: a `BufRead::read_until` loop into one reused buffer, storing nothing —
//!    the floor for any line-oriented reader;
//! 3. a naive ring: `VecDeque<String>` with the same line and byte caps (one heap allocation per
//!    line), with the heap it holds at the end;
//! 4. leakwatch's ingest path: 64 KiB reads, the [`LineSplitter`] and a [`LogRing`] writer per
//!    chunk (lines stored contiguously), with the ring's held bytes + per-line overhead.
//!
//! Each row reports lines/s, MB/s and the ratio to the scan. Without `--bench` (under
//! `cargo test --all-targets`) it runs on 8 MiB as a smoke test.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use leakwatch::logs::lines::LineSplitter;
use leakwatch::logs::ring::{LogRing, RingLimits, LINE_OVERHEAD_BYTES};

const MAX_LINES: usize = 10_000;
const MAX_BYTES: usize = 8 << 20;
const MAX_LINE_BYTES: usize = 64 << 10;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let mib: u64 = match std::env::var("LEAKWATCH_BENCH_MIB").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if benching => 512,
        None => 8,
    };
    let dir = std::env::temp_dir().join(format!("leakwatch-bench-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("app.log");
    let (bytes, lines) = generate(&path, mib << 20);
    let _ = std::fs::read(&path).map(|v| v.len()); // warm the page cache
    println!(
        "log ingest: {:.0} MiB, {lines} lines (avg {:.0} B), caps {MAX_LINES} lines / {} MiB{}",
        bytes as f64 / 1048576.0,
        bytes as f64 / lines as f64,
        MAX_BYTES >> 20,
        if benching { "" } else { " (smoke run: `cargo bench --bench log_ingest` to measure)" }
    );
    let cat = time(|| {
        let status = Command::new("cat").arg(&path).stdout(Stdio::null()).status().expect("run cat");
        assert!(status.success());
        (lines, None)
    });
    let scan = time(|| (scan(&path), None));
    let naive = time(|| naive_ring(&path));
    let ring = time(|| leakwatch_ring(&path));
    println!("{:<34} {:>12} {:>10} {:>9} {:>14}", "reader", "lines/s", "MB/s", "vs scan", "held (MiB)");
    for (name, (secs, n, held)) in [
        ("cat FILE > /dev/null", cat),
        ("read_until scan (stores nothing)", scan),
        ("naive VecDeque<String> ring", naive),
        ("leakwatch LineSplitter + LogRing", ring),
    ] {
        assert_eq!(n, lines, "{name} saw every line");
        println!(
            "{name:<34} {:>12.0} {:>10.0} {:>8.2}x {:>14}",
            lines as f64 / secs,
            bytes as f64 / secs / 1e6,
            scan.0 / secs,
            held.map_or("-".to_owned(), |h: usize| format!("{:.2}", h as f64 / 1048576.0)),
        );
    }
    println!(
        "(vs scan = scan time / this time: 1.00x is as fast as the scan; held = heap the buffer holds at the end)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` once, returning (seconds, lines, bytes held).
fn time(f: impl FnOnce() -> (u64, Option<usize>)) -> (f64, u64, Option<usize>) {
    let t = Instant::now();
    let (n, held) = f();
    (t.elapsed().as_secs_f64(), n, held)
}

/// Writes lines like a web service's log, 40..400 bytes, until `target` bytes.
fn generate(path: &Path, target: u64) -> (u64, u64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, File::create(path).expect("create the bench file"));
    let paths = ["/api/v1/orders", "/api/v1/users/42/cart", "/healthz", "/static/app.3f9c1.js", "/api/v2/search"];
    let (mut bytes, mut n, mut x) = (0u64, 0u64, 0x2545F4914F6CDD1Du64);
    while bytes < target {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let extra = "k=v ".repeat((x % 80) as usize);
        let line = format!(
            "2026-01-01T12:00:{:02}.{:06}Z INFO request id={x:016x} method=GET path={} status={} dur_ms={} {extra}\n",
            n % 60,
            n % 1_000_000,
            paths[(x % 5) as usize],
            [200, 200, 200, 404, 500][(x >> 8) as usize % 5],
            x % 997
        );
        f.write_all(line.as_bytes()).expect("write the bench file");
        bytes += line.len() as u64;
        n += 1;
    }
    f.flush().expect("flush the bench file");
    (bytes, n)
}

fn scan(path: &Path) -> u64 {
    let mut r = BufReader::with_capacity(64 << 10, File::open(path).expect("open"));
    let mut buf = Vec::with_capacity(1024);
    let mut n = 0;
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => return n,
            Ok(_) => n += 1,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn naive_ring(path: &Path) -> (u64, Option<usize>) {
    let mut r = BufReader::with_capacity(64 << 10, File::open(path).expect("open"));
    let mut ring: VecDeque<String> = VecDeque::new();
    let (mut held, mut n) = (0usize, 0u64);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("read: {e}"),
        }
        n += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        buf.truncate(MAX_LINE_BYTES);
        let line = String::from_utf8_lossy(&buf).into_owned();
        while ring.len() >= MAX_LINES || held + line.len() > MAX_BYTES {
            if let Some(old) = ring.pop_front() {
                held -= old.len();
            }
        }
        held += line.len();
        ring.push_back(line);
    }
    // What the naive ring really holds: each String's capacity plus the deque's slots.
    let heap: usize = ring.iter().map(String::capacity).sum::<usize>() + ring.capacity() * size_of::<String>();
    (n, Some(heap))
}

fn leakwatch_ring(path: &Path) -> (u64, Option<usize>) {
    let ring = LogRing::new(RingLimits {
        max_lines: MAX_LINES,
        max_bytes: MAX_BYTES,
        max_line_bytes: MAX_LINE_BYTES,
        max_subscribers: 1,
    });
    let mut file = File::open(path).expect("open");
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        let mut w = ring.writer();
        splitter.feed(&buf[..n], |line, cut| {
            w.push(line, cut);
        });
    }
    splitter.flush(|line, cut| {
        ring.push(line, cut);
    });
    let stats = ring.stats();
    (stats.lines_total, Some(stats.bytes + stats.lines * LINE_OVERHEAD_BYTES))
}
