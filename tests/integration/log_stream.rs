//! `GET /logs/{source}/stream` on the real binary: 50 live subscribers while a writer appends at
//! a steady rate, one of them stalled for 20 s; resume with `Last-Event-ID`; the subscriber cap;
//! shutdown ending open streams.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support::http::{get, seq, SseClient};
use crate::support::{Leakwatch, TempDir};
use leakwatch::metric_names as n;

const SUBSCRIBERS: usize = 50;
/// Lines written per second, and for how long.
const RATE: u64 = 3000;
const SECONDS: u64 = 22;
const TOTAL: u64 = RATE * SECONDS;
/// The ring holds 8 s of lines (7.4 MB, under the 16 MiB `max_bytes` the test sets): a reading
/// subscriber on a busy machine has that much slack (a clean-clone CI run missed lines with 2 s;
/// a run beside three compiling engineers, with 4 s), and the stalled one ([`STALL`] unread,
/// 18 MB) still falls out of it with the kernel's socket buffers (up to 4 MiB each way) holding
/// part of what it did not read.
const RING_LINES: usize = 24_000;
/// How long the stalled subscriber reads nothing.
const STALL: Duration = Duration::from_secs(20);

fn line(seq: u64) -> String {
    let mut l = format!("seq={seq:09} ");
    l.push_str(&"x".repeat(280 + (seq % 17) as usize));
    l.push('\n');
    l
}

fn seq_of(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[4..13]).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad line"))
}

/// Starts leakwatch on an empty `app.log`; `release` runs the release binary.
fn start(dir: &TempDir, max_lines: usize, max_subscribers: usize, release: bool) -> (Leakwatch, std::path::PathBuf) {
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"").expect("create the log file");
    let config = dir.path().join("leakwatch.yaml");
    let yaml = format!(
        "logs:\n  max_lines: {max_lines}\n  max_bytes: 16MiB\n  max_subscribers: {max_subscribers}\n  sources:\n    - name: app\n      path: {}\n",
        path.display()
    );
    std::fs::write(&config, yaml).expect("write the config");
    let args = ["--config", config.to_str().expect("utf-8 path")];
    let lw = if release {
        // The fan-out test measures throughput: the binary as it ships (a debug build's SSE
        // encoding alone cannot keep up with 50 × 3 000 lines/s on a loaded machine).
        Leakwatch::start_cmd(std::process::Command::new(crate::support::release_binary()), &args)
    } else {
        Leakwatch::start(&args)
    };
    (lw, path)
}

/// Appends lines `from..=to` in one write.
fn append(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open the log file");
    let text: String = (from..=to).map(line).collect();
    f.write_all(text.as_bytes()).expect("append to the log file");
}

/// What one subscriber saw: every line's seq in order, and each `missed` event's count with the
/// seq of the line before it.
#[derive(Default)]
struct Seen {
    seqs: Vec<u64>,
    missed: Vec<(u64, u64)>,
}

fn read_until(client: &mut SseClient, last: u64, seen: &mut Seen) {
    while seen.seqs.last().copied().unwrap_or(0) < last {
        let Some(event) = client.next_event(Duration::from_secs(30)) else {
            panic!("stream ended or went silent after seq {:?}", seen.seqs.last());
        };
        match event.name.as_str() {
            "message" => {
                let s = seq(&event);
                assert_eq!(seq_of(&event.data), s, "the event id is the line's seq");
                seen.seqs.push(s);
            }
            "missed" => {
                let v: serde_json::Value = serde_json::from_slice(&event.data).expect("missed event is JSON");
                seen.missed.push((seen.seqs.last().copied().unwrap_or(0), v["missed"].as_u64().expect("missed count")));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[test]
fn fifty_subscribers_one_stalled_the_others_get_every_line_and_the_stalled_one_is_told_what_it_missed() {
    let dir = TempDir::new("stream");
    let (lw, path) = start(&dir, RING_LINES, SUBSCRIBERS, true);
    let addr = lw.addr;
    let mut clients: Vec<SseClient> =
        (0..SUBSCRIBERS).map(|_| SseClient::connect(addr, "/logs/app/stream?backlog=0", &[])).collect();
    assert!(clients.iter().all(|c| c.status == 200));
    let over = SseClient::connect(addr, "/logs/app/stream", &[]);
    assert_eq!(over.status, 503, "the cap of {SUBSCRIBERS} subscribers");
    assert!(over.headers.iter().any(|(n, _)| n == "retry-after"));
    drop(over);

    let written = Arc::new(AtomicU64::new(0));
    let go = Arc::new(Barrier::new(SUBSCRIBERS + 1));
    let slow = {
        let mut client = clients.pop().unwrap();
        let (go, written) = (go.clone(), written.clone());
        std::thread::spawn(move || {
            go.wait();
            let mut seen = Seen::default();
            read_until(&mut client, RATE, &mut seen);
            let stalled_at = written.load(Ordering::Acquire);
            std::thread::sleep(STALL);
            let resumed_at = written.load(Ordering::Acquire);
            read_until(&mut client, TOTAL, &mut seen);
            (seen, stalled_at, resumed_at)
        })
    };
    let fast: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                let mut seen = Seen::default();
                read_until(&mut client, TOTAL, &mut seen);
                seen
            })
        })
        .collect();

    // The writer: RATE lines/s in 10 ms batches, on a fixed schedule.
    go.wait();
    let started = Instant::now();
    let mut ingest = Vec::new(); // (seconds, lines written, lines stored)
    let mut next = 1u64;
    while next <= TOTAL {
        let due = (started.elapsed().as_secs_f64() * RATE as f64) as u64;
        if due >= next {
            let to = due.min(TOTAL);
            append(&path, next, to);
            next = to + 1;
            written.store(to, Ordering::Release);
        }
        if ingest.last().is_none_or(|(t, _, _): &(f64, u64, u64)| started.elapsed().as_secs_f64() - t >= 0.5) {
            let stored = get(addr, "/logs", &[]).json()["sources"][0]["lines_total"].as_u64().unwrap();
            ingest.push((started.elapsed().as_secs_f64(), next - 1, stored));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let write_seconds = started.elapsed().as_secs_f64();

    let mut lagged_expected = 0;
    for (i, handle) in fast.into_iter().enumerate() {
        let seen = handle.join().unwrap_or_else(|_| panic!("fast subscriber {i} failed"));
        assert!(seen.missed.is_empty(), "fast subscriber {i} missed lines: {:?}", seen.missed);
        assert_eq!(seen.seqs.len() as u64, TOTAL, "fast subscriber {i}");
        assert!(seen.seqs.iter().copied().eq(1..=TOTAL), "fast subscriber {i}: every line once, in order");
    }
    let (seen, stalled_at, resumed_at) = slow.join().expect("the stalled subscriber");
    assert!(!seen.missed.is_empty(), "the stalled subscriber fell out of the buffer and was told so");
    // Every gap in what it received is exactly the count its `missed` event announced there.
    let mut expect = 1u64;
    let mut gaps = seen.missed.iter().peekable();
    for &s in &seen.seqs {
        if s != expect {
            let &(before, n) = gaps.next().unwrap_or_else(|| panic!("an unannounced gap before seq {s}"));
            assert_eq!(before, expect - 1, "the missed event comes right where the gap is");
            assert_eq!(s, expect + n, "missed {n} after seq {before}, next line {s}");
            lagged_expected += n;
        }
        expect = s + 1;
    }
    assert!(gaps.next().is_none(), "every missed event matches a gap");
    assert_eq!(expect, TOTAL + 1);

    // Ingestion kept pace throughout: it never waited for the stalled subscriber (which is why
    // the stalled subscriber has gaps) and stored every line written.
    let m = lw.wait_for(Duration::from_secs(10), "all lines stored and the lag counted", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "app")]) == Some(TOTAL as f64)
            && m.get(n::LOG_LINES_DROPPED_TOTAL, &[("source", "app"), ("reason", "subscriber_lag")])
                == Some(lagged_expected as f64)
    });
    assert_eq!(m.get(n::LOG_READ_ERRORS_TOTAL, &[("source", "app")]), Some(0.0));
    let rate = |from: f64, to: f64| {
        let window: Vec<_> = ingest.iter().filter(|(t, _, _)| (from..=to).contains(t)).collect();
        match (window.first(), window.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.2 - a.2) as f64 / (b.0 - a.0),
            _ => f64::NAN,
        }
    };
    let stall = (stalled_at as f64 / RATE as f64, resumed_at as f64 / RATE as f64);
    let max_lag = ingest.iter().map(|(_, w, s)| w.saturating_sub(*s)).max().unwrap_or(0);
    eprintln!(
        "{TOTAL} lines at {RATE}/s in {write_seconds:.1} s to {SUBSCRIBERS} subscribers: ingest {:.0} lines/s before the \
         stall, {:.0} lines/s during it ({:.1}..{:.1} s); largest written-but-not-stored gap seen {max_lag} lines; \
         the stalled subscriber missed {lagged_expected} lines in {} gaps",
        rate(0.0, stall.0),
        rate(stall.0, stall.1),
        stall.0,
        stall.1,
        seen.missed.len(),
    );
}

#[test]
fn resuming_with_last_event_id_has_no_gap_and_no_duplicate() {
    let dir = TempDir::new("stream-resume");
    let (lw, path) = start(&dir, 10_000, 8, false);
    append(&path, 1, 100);
    let mut first = SseClient::connect(lw.addr, "/logs/app/stream?backlog=100000", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.headers.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.as_str()),
        Some("text/event-stream")
    );
    let mut seen = Seen::default();
    read_until(&mut first, 60, &mut seen);
    drop(first); // the connection drops after line 60 (more may have been in flight, unread)
    let last = *seen.seqs.last().unwrap();
    append(&path, 101, 200);
    for (path, headers) in [
        ("/logs/app/stream".to_owned(), vec![("Last-Event-ID", last.to_string())]),
        (format!("/logs/app/stream?after_seq={last}"), vec![]),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let mut again = SseClient::connect(lw.addr, &path, &headers);
        assert_eq!(again.status, 200);
        let mut resumed = Seen::default();
        read_until(&mut again, 200, &mut resumed);
        assert!(resumed.missed.is_empty());
        assert_eq!(resumed.seqs, (last + 1..=200).collect::<Vec<_>>(), "{path}: continues right after {last}");
    }
    // A resume point beyond the newest line: leakwatch restarted. The client is told, and gets
    // the whole buffer.
    let mut after_restart = SseClient::connect(lw.addr, "/logs/app/stream", &[("Last-Event-ID", "5000")]);
    let reset = after_restart.next_event(Duration::from_secs(10)).expect("a reset event");
    assert_eq!(reset.name, "reset");
    assert_eq!(seq(&after_restart.next_event(Duration::from_secs(10)).unwrap()), 1);
    // Filters apply to the stream too; JSON on request.
    let mut errors =
        SseClient::connect(lw.addr, "/logs/app/stream?backlog=50&contains=seq%3D00000017&format=json", &[]);
    let e = errors.next_event(Duration::from_secs(10)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
    assert_eq!((v["seq"].as_u64(), seq(&e)), (Some(170), 170), "of the last 50 lines, 170..=179 match: {v}");
    assert!(v["text"].as_str().unwrap().starts_with("seq=000000170 ") && v["ts"].is_string());
    // Bad resume points and formats are refused with the parameter named.
    for (path, headers, status, param) in [
        ("/logs/app/stream", vec![("Last-Event-ID", "-3")], 400, "Last-Event-ID"),
        ("/logs/app/stream?backlog=5", vec![("Last-Event-ID", "3")], 400, "backlog"),
        ("/logs/app/stream?backlog=100001", vec![], 400, "backlog"),
        ("/logs/app/stream?lines=5", vec![], 400, "lines"),
        ("/logs/app/stream", vec![("Accept", "application/json")], 406, "Accept"),
    ] {
        let r = get(lw.addr, path, &headers);
        assert_eq!(r.status, status, "{path} {headers:?}: {}", r.text());
        assert_eq!(r.json()["param"].as_str(), Some(param));
    }
    assert_eq!(get(lw.addr, "/logs/nope/stream", &[]).status, 404);
}

#[test]
fn shutdown_ends_open_streams_and_frees_their_slots() {
    let dir = TempDir::new("stream-stop");
    let (lw, path) = start(&dir, 1000, 2, false);
    append(&path, 1, 3);
    let mut a = SseClient::connect(lw.addr, "/logs/app/stream", &[]);
    let b = SseClient::connect(lw.addr, "/logs/app/stream", &[]);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(SseClient::connect(lw.addr, "/logs/app/stream", &[]).status, 503);
    drop(b);
    // The dropped client's slot is freed once the server notices (its next write fails, or at once).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        append(&path, 4, 4);
        let c = SseClient::connect(lw.addr, "/logs/app/stream", &[]);
        if c.status == 200 {
            break c;
        }
        assert!(Instant::now() < deadline, "the dropped subscriber's slot was never freed");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seq(&a.next_event(Duration::from_secs(5)).unwrap()), 1);
    assert!(c.next_event(Duration::from_secs(5)).is_some());
    let status = lw.terminate();
    assert!(status.success(), "{status:?}");
    // The streams were ended by leakwatch (a final chunk), not cut when its grace period ran out.
    while a.next_event(Duration::from_secs(5)).is_some() {}
    while c.next_event(Duration::from_secs(5)).is_some() {}
    assert!(a.ended && c.ended, "both streams end cleanly on shutdown");
}
