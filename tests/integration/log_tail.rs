//! Following files across rotation: the library tailer (content checked line by line) and the
//! real binary (checked through `/metrics`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakwatch::logs::ring::{Cursor, ReadLimits, RingLimits, CUT_MARKER};
use leakwatch::logs::tail::{TailThread, Tailer};
use leakwatch::logs::{LogSource, SourceKind};

use crate::support::logwriter::{self, line, seq_of, Rotation};
use crate::support::{http_get, vmrss, Leakwatch, Metrics, TempDir};
use leakwatch::metric_names as n;

const ROTATIONS: u64 = 100;
const LINES_PER_FILE: u64 = 1000;
const ALL: ReadLimits = ReadLimits { lines: usize::MAX, bytes: usize::MAX };

fn file_source(name: &str, path: &Path, limits: RingLimits) -> Arc<LogSource> {
    Arc::new(LogSource::new(name, SourceKind::File { pattern: path.to_string_lossy().into_owned() }, limits))
}

fn big_limits() -> RingLimits {
    RingLimits { max_lines: 1_000_000, max_bytes: 256 << 20, max_line_bytes: 64 << 10, max_subscribers: 4 }
}

fn wait_until(timeout: Duration, what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every line written arrives exactly once and in order, across 100 rotations of `kind`.
fn exactly_once_across_rotations(kind: Rotation) {
    let dir = TempDir::new(&format!("tail-{}", kind.name()));
    let path = dir.path().join("app.log");
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    let counted = |s: &LogSource| {
        let st = s.stats();
        if kind == Rotation::CopyTruncate {
            st.truncations
        } else {
            st.rotations
        }
    };
    let written = logwriter::write_and_rotate(kind, dir.path(), &path, ROTATIONS, LINES_PER_FILE, |r, bytes| {
        // Rotation r may happen once the follower saw rotation r-1 and read from the current file
        // (a file deleted or truncated before anyone opened it is lost to every reader).
        counted(&source) >= r - 1 && source.stats().bytes_read > bytes
    });
    eprintln!(
        "{kind:?}: {} lines in {:.2}s of writing = {:.0} lines/s",
        written.lines,
        written.seconds,
        written.lines as f64 / written.seconds
    );
    wait_until(Duration::from_secs(30), "every line in the ring", || source.stats().ring.lines_total >= written.lines);
    tail.stop();
    let stats = source.stats();
    assert_eq!(counted(&source), ROTATIONS, "{kind:?}: {stats:?}");
    assert_eq!(stats.lost_lines, 0);
    // No false counts: every file that arrived at the path was opened.
    assert_eq!((stats.unknown_losses.rotation, stats.unknown_losses.overflow), (0, 0), "{kind:?}: {stats:?}");
    let page = source.ring.read(Cursor::After(0), ALL, None);
    let seqs: Vec<u64> = page.iter().map(|l| seq_of(l.text)).collect();
    let unique: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
    eprintln!(
        "{kind:?}: {ROTATIONS} rotations, {} lines written, {} lost, {} duplicated, {} reported lost",
        written.lines,
        written.lines - unique.len() as u64,
        seqs.len() - unique.len(),
        stats.lost_lines
    );
    let expected: Vec<u64> = (0..written.lines).collect();
    if seqs != expected {
        let dup = seqs.windows(2).find(|w| w[1] <= w[0]);
        let gap = seqs.windows(2).find(|w| w[1] > w[0] + 1);
        panic!(
            "{kind:?}: {} lines stored for {} written; first disorder {dup:?}, first gap {gap:?}",
            seqs.len(),
            written.lines
        );
    }
    for l in page.iter().take(2000) {
        assert_eq!(
            l.text,
            line(seq_of(l.text)).strip_suffix('\n').expect("newline").as_bytes(),
            "lines are stored intact"
        );
    }
    assert_eq!(stats.bytes_read, written.bytes, "every byte read exactly once");
}

#[test]
fn log_tail_rename_and_create_100_rotations_exactly_once() {
    exactly_once_across_rotations(Rotation::RenameCreate);
}

#[test]
fn log_tail_delete_and_recreate_100_rotations_exactly_once() {
    exactly_once_across_rotations(Rotation::DeleteRecreate);
}

#[test]
fn log_tail_symlink_switch_100_rotations_exactly_once() {
    exactly_once_across_rotations(Rotation::Symlink);
}

#[test]
fn log_tail_copytruncate_100_truncations_recovered_from_the_copy() {
    exactly_once_across_rotations(Rotation::CopyTruncate);
}

/// The real binary, four sources rotated four ways at once, verified through `/metrics`.
#[test]
fn log_tail_binary_counts_every_line_and_rotation_of_each_kind() {
    let dir = TempDir::new("tail-binary");
    let mut yaml = String::from("logs:\n  max_lines: 1000000\n  max_bytes: 64MiB\n  sources:\n");
    for kind in logwriter::ALL {
        let sub = dir.path().join(kind.name());
        std::fs::create_dir_all(&sub).unwrap();
        yaml += &format!("    - name: {}\n      path: {}\n", kind.name(), sub.join("app.log").display());
    }
    let config = dir.path().join("leakwatch.yaml");
    std::fs::write(&config, yaml).unwrap();
    let lw = Leakwatch::start(&["--config", config.to_str().unwrap()]);
    let addr = lw.addr;
    let results: Vec<(Rotation, u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = logwriter::ALL
            .into_iter()
            .map(|kind| {
                let sub = dir.path().join(kind.name());
                scope.spawn(move || {
                    let metric =
                        if kind == Rotation::CopyTruncate { n::LOG_TRUNCATIONS_TOTAL } else { n::LOG_ROTATIONS_TOTAL };
                    let written = logwriter::write_and_rotate(
                        kind,
                        &sub,
                        &sub.join("app.log"),
                        ROTATIONS,
                        LINES_PER_FILE,
                        |r, bytes| {
                            let m = Metrics::parse(&http_get(addr, "/metrics").1);
                            let source = [("source", kind.name())];
                            m.get(metric, &source).unwrap_or(0.0) >= (r - 1) as f64
                                && m.get(n::LOG_BYTES_TOTAL, &source).unwrap_or(0.0) > bytes as f64
                        },
                    );
                    (kind, written.lines, written.bytes)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).collect()
    });
    let m = lw.wait_for(Duration::from_secs(30), "every line of every source", |m| {
        results
            .iter()
            .all(|(kind, lines, _)| m.get(n::LOG_LINES_TOTAL, &[("source", kind.name())]) == Some(*lines as f64))
    });
    for (kind, lines, bytes) in &results {
        let source = [("source", kind.name())];
        let get = |name: &str| m.get(name, &source).unwrap_or(-1.0);
        let (rotations, truncations) = if *kind == Rotation::CopyTruncate { (0.0, 100.0) } else { (100.0, 0.0) };
        assert_eq!(get(n::LOG_ROTATIONS_TOTAL), rotations, "{kind:?}");
        assert_eq!(get(n::LOG_TRUNCATIONS_TOTAL), truncations, "{kind:?}");
        assert_eq!(get(n::LOG_BYTES_TOTAL), *bytes as f64, "{kind:?}: every byte read once");
        assert_eq!(get(n::LOG_BUFFER_LINES), *lines as f64, "{kind:?}");
        assert_eq!(
            m.get(n::LOG_LINES_DROPPED_TOTAL, &[("source", kind.name()), ("reason", "truncation")]),
            Some(0.0),
            "{kind:?}"
        );
        assert_eq!(get(n::LOG_READ_ERRORS_TOTAL), 0.0, "{kind:?}");
    }
}

#[test]
fn log_tail_fills_from_the_end_of_the_file_at_start() {
    let dir = TempDir::new("tail-start");
    let path = dir.path().join("app.log");
    let mut f = std::fs::File::create(&path).unwrap();
    for seq in 0..10_000 {
        f.write_all(line(seq).as_bytes()).unwrap();
    }
    let limits = RingLimits { max_lines: 100_000, max_bytes: 4096, max_line_bytes: 1024, max_subscribers: 1 };
    let source = file_source("app", &path, limits);
    let mut tailer = Tailer::new(source.clone()).unwrap();
    tailer.step();
    let page = source.ring.read(Cursor::After(0), ALL, None);
    let seqs: Vec<u64> = page.iter().map(|l| seq_of(l.text)).collect();
    assert_eq!(seqs.last(), Some(&9999), "the newest line is there");
    assert!(seqs.len() > 20 && seqs.windows(2).all(|w| w[1] == w[0] + 1), "a contiguous tail: {seqs:?}");
    for l in page.iter() {
        assert_eq!(
            l.text,
            line(seq_of(l.text)).strip_suffix('\n').unwrap().as_bytes(),
            "the first partial line was dropped"
        );
    }
    assert!(source.stats().bytes_read <= 4096, "only the tail was read");
    // And it follows from there.
    f.write_all(line(10_000).as_bytes()).unwrap();
    tailer.step();
    let last = source.ring.read(Cursor::Before(u64::MAX), ReadLimits { lines: 1, bytes: 1 << 20 }, None);
    assert_eq!(last.iter().map(|l| seq_of(l.text)).collect::<Vec<_>>(), vec![10_000]);
}

#[test]
fn log_tail_crlf_invalid_utf8_and_a_partial_line_flushed_on_timeout() {
    let dir = TempDir::new("tail-bytes");
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"").unwrap();
    let source = file_source("app", &path, big_limits());
    let mut tailer = Tailer::new(source.clone()).unwrap();
    tailer.step();
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"windows\r\n\xff\xfe bad \xc3\n\x00\x00nul\n\nunfinished").unwrap();
    tailer.step();
    let texts = |s: &LogSource| -> Vec<Vec<u8>> {
        s.ring.read(Cursor::After(0), ALL, None).iter().map(|l| l.text.to_vec()).collect()
    };
    assert_eq!(
        texts(&source),
        vec![b"windows".to_vec(), b"\xff\xfe bad \xc3".to_vec(), b"\x00\x00nul".to_vec(), vec![]]
    );
    std::thread::sleep(leakwatch::logs::tail::PARTIAL_LINE_TIMEOUT + Duration::from_millis(100));
    tailer.step();
    assert_eq!(texts(&source).last().unwrap(), b"unfinished", "flushed after the timeout");
}

#[test]
fn log_tail_late_writes_to_a_renamed_file_still_arrive() {
    let dir = TempDir::new("tail-late");
    let path = dir.path().join("app.log");
    // The app's own handle: it keeps writing to it until it reopens its log.
    let mut app = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let source = file_source("app", &path, big_limits());
    let mut tailer = Tailer::new(source.clone()).unwrap();
    tailer.step();
    app.write_all(b"before rotation\nhalf a ").unwrap();
    tailer.step();
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&path, b"new file\n").unwrap();
    tailer.step();
    assert_eq!(source.stats().rotations, 1);
    // Written after leakwatch switched files: the old file is still being read.
    app.write_all(b"line, late\nlate too\n").unwrap();
    tailer.step();
    let texts: Vec<String> = source
        .ring
        .read(Cursor::After(0), ALL, None)
        .iter()
        .map(|l| String::from_utf8_lossy(l.text).into_owned())
        .collect();
    assert_eq!(texts, vec!["before rotation", "new file", "half a line, late", "late too"]);
}

#[test]
fn log_tail_a_10_byte_file_is_tailed_at_once() {
    let dir = TempDir::new("tail-tiny");
    let path = dir.path().join("tiny.log");
    std::fs::write(&path, b"123456789\n").unwrap();
    let arg = format!("tiny={}", path.display());
    let lw = Leakwatch::start(&["--tail", &arg]);
    let m = lw.wait_for(Duration::from_secs(10), "the one line", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "tiny")]) == Some(1.0)
    });
    assert_eq!(m.get(n::LOG_BYTES_TOTAL, &[("source", "tiny")]), Some(10.0));
    assert_eq!(m.label_values(n::LOG_SOURCE_INFO, "path"), vec![path.display().to_string()]);
}

/// The file watcher thread asks for nice -10 (a file living a few ms is opened, a size noted
/// before a truncation, ahead of busy threads): granted with CAP_SYS_NICE, else logged.
#[test]
fn log_tail_the_file_watcher_thread_runs_at_nice_minus_10_or_says_why_not() {
    let dir = TempDir::new("tail-nice");
    let path = dir.path().join("app.log");
    std::fs::write(&path, b"first\n").unwrap();
    let arg = format!("app={}", path.display());
    let lw = Leakwatch::start(&["--tail", &arg]);
    lw.wait_for(Duration::from_secs(10), "the first line", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "app")]) == Some(1.0)
    });
    // An event reaches the watcher thread.
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"second\n").unwrap();
    lw.wait_for(Duration::from_secs(10), "the second line", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "app")]) == Some(2.0)
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).expect("CapEff");
    let sys_nice = u64::from_str_radix(caps.trim(), 16).expect("hex caps") & (1 << 23) != 0;
    let nices: Vec<i64> = std::fs::read_dir(format!("/proc/{}/task", lw.child.id()))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|stat| stat.contains("(notify-rs inoti"))
        .map(|stat| stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse().unwrap())
        .collect();
    eprintln!("CAP_SYS_NICE: {sys_nice}; watcher threads' nice: {nices:?}");
    if sys_nice {
        assert_eq!(nices, vec![-10], "the watcher thread is prioritized");
    } else {
        assert_eq!(nices, vec![0]);
        // Panics unless the refusal is logged.
        lw.log_until(Duration::from_secs(10), "saying the watcher thread runs at the default priority", |l| {
            l.contains("file watcher thread at the default priority")
        });
    }
}

#[test]
fn log_tail_a_100_mib_line_stays_under_the_cap_and_later_lines_are_intact() {
    let dir = TempDir::new("tail-long");
    let path = dir.path().join("long.log");
    std::fs::write(&path, b"before\n").unwrap();
    let arg = format!("long={}", path.display());
    let lw = Leakwatch::start(&["--tail", &arg]);
    lw.wait_for(Duration::from_secs(10), "the first line", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "long")]) == Some(1.0)
    });
    let pid = lw.child.id() as i32;
    let base = vmrss(pid);
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut peak = base;
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
        peak = peak.max(vmrss(pid));
    }
    f.write_all(b"\nafter\n").unwrap();
    let m = lw.wait_for(Duration::from_secs(30), "the cut line and the next", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "long")]) == Some(3.0)
    });
    peak = peak.max(vmrss(pid));
    assert_eq!(m.get(n::LOG_LINES_CUT_TOTAL, &[("source", "long")]), Some(1.0));
    assert_eq!(m.get(n::LOG_BYTES_TOTAL, &[("source", "long")]), Some((7 + (100 << 20) + 7) as f64));
    // Buffers: 8 MiB text cap by default, and one line is at most max_line_bytes (64 KiB).
    assert!(peak < base + (16 << 20), "RSS grew from {base} to {peak} for a 100 MiB line");
    eprintln!("100 MiB line: RSS {base} -> peak {peak}");
}

#[test]
fn log_tail_a_fifo_is_refused_and_counted() {
    let dir = TempDir::new("tail-fifo");
    let path = dir.path().join("pipe.log");
    let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    let arg = format!("pipe={}", path.display());
    let lw = Leakwatch::start(&["--tail", &arg]);
    lw.wait_for(Duration::from_secs(10), "read errors for the FIFO", |m| {
        m.get(n::LOG_READ_ERRORS_TOTAL, &[("source", "pipe")]).is_some_and(|n| n >= 1.0)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = lw
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a log line naming the FIFO");
        if line.contains("FIFO") && line.contains("pipe.log") {
            break;
        }
    }
    assert_eq!(lw.scrape().get(n::LOG_LINES_TOTAL, &[("source", "pipe")]), Some(0.0));
}

#[test]
fn log_tail_permission_errors_are_counted_and_retried() {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("tail-perm");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("secret.log");
    std::fs::write(&path, b"hidden\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let arg = format!("secret={}", path.display());
    let mut cmd = std::process::Command::new(crate::support::binary());
    cmd.uid(65534).gid(65534);
    let lw = Leakwatch::start_cmd(cmd, &["--tail", &arg]);
    let before = lw.wait_for(Duration::from_secs(10), "permission errors", |m| {
        m.get(n::LOG_READ_ERRORS_TOTAL, &[("source", "secret")]).is_some_and(|n| n >= 2.0)
    });
    assert_eq!(before.get(n::LOG_LINES_TOTAL, &[("source", "secret")]), Some(0.0));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    lw.wait_for(Duration::from_secs(10), "the line once readable", |m| {
        m.get(n::LOG_LINES_TOTAL, &[("source", "secret")]) == Some(1.0)
    });
}

/// Spins `n` threads until dropped: a loaded machine on purpose (the machine may be loaded already).
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(n: usize) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Extra busy threads: `LEAKWATCH_TEST_LOAD` (default `default`; 0 = only what else runs).
fn load_threads(default: usize) -> usize {
    std::env::var("LEAKWATCH_TEST_LOAD").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The seq numbers stored, checked to be `0..written` exactly once and in order.
fn assert_exactly_once(source: &LogSource, written: u64, what: &str) {
    let page = source.ring.read(Cursor::After(0), ALL, None);
    let seqs: Vec<u64> = page.iter().map(|l| seq_of(l.text)).collect();
    let dups = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
    let missing = written - seqs.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
    eprintln!("{what}: {written} lines written, {} stored, {missing} lost, {dups} duplicated", seqs.len());
    assert!(
        seqs == (0..written).collect::<Vec<_>>(),
        "{what}: {missing} lines lost, {dups} out of order or duplicated"
    );
}

/// (In about 1 run of 16 this once counted a file renamed between the watcher's look at the path
/// and its open as lost, though every line was read: `logs::tail` unit tests drive that window.)
#[test]
fn log_tail_rename_rotations_with_the_follower_starved_across_3_rotations_lose_nothing() {
    let dir = TempDir::new("tail-starved");
    let path = dir.path().join("app.log");
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    let _load = Load::start(load_threads(2));
    let kind = Rotation::RenameNumbered;
    // (rotation waited for, since when, told): a follower that does not catch up is described.
    let waiting = std::cell::Cell::new((0u64, Instant::now(), false));
    let written = logwriter::write_and_rotate(kind, dir.path(), &path, ROTATIONS, 500, |r, bytes| {
        // Rotations 4k+1, 4k+2 and 4k+3 happen while the follower is paused; before 4k+4 it
        // runs and catches up (the first file must be open before anything rotates).
        if r % 4 == 0 || r == 1 {
            tail.set_paused(false);
            let caught_up = source.stats().rotations >= r - 1 && source.stats().bytes_read > bytes;
            let (for_r, since, told) = waiting.get();
            if for_r != r {
                waiting.set((r, Instant::now(), false));
            } else if !caught_up && !told && since.elapsed() > Duration::from_secs(20) {
                let files: Vec<String> = std::fs::read_dir(dir.path())
                    .expect("list the directory")
                    .flatten()
                    .filter_map(|e| {
                        let m = e.metadata().ok()?;
                        Some(format!(
                            "{:?} ino {} {} B",
                            e.file_name(),
                            std::os::unix::fs::MetadataExt::ino(&m),
                            m.len()
                        ))
                    })
                    .collect();
                eprintln!("rotation {r} waits ({bytes} B before this file): {:?}; files {files:?}", source.stats());
                waiting.set((r, since, true));
            }
            if caught_up {
                tail.set_paused(true);
            }
            caught_up
        } else {
            true
        }
    });
    tail.set_paused(false);
    wait_until(Duration::from_secs(30), "every line", || source.stats().ring.lines_total >= written.lines);
    tail.stop();
    let stats = source.stats();
    assert_eq!((stats.rotations, stats.lost_lines, stats.lost_bytes), (ROTATIONS, 0, 0), "{stats:?}");
    assert_eq!(stats.unknown_losses, Default::default(), "the watcher opened every file: none unread");
    assert_exactly_once(&source, written.lines, "rename, starved across 3 rotations");
    assert_eq!(stats.bytes_read, written.bytes);
}

/// Writes `lines` lines to a new file at `path` over at least `life`, then deletes it. Returns
/// the bytes written and the file's inode.
fn short_lived_file(path: &Path, first: u64, lines: u64, life: Duration) -> (u64, u64) {
    let born = Instant::now();
    let mut f = std::fs::OpenOptions::new().create_new(true).append(true).open(path).expect("create the log");
    let ino = std::os::unix::fs::MetadataExt::ino(&f.metadata().expect("fstat"));
    let mut bytes = 0;
    for seq in first..first + lines {
        let l = line(seq);
        f.write_all(l.as_bytes()).expect("append");
        bytes += l.len() as u64;
        if seq % 5 == 4 {
            std::thread::sleep(life / (lines as u32 / 5 + 1));
        }
    }
    std::thread::sleep(life.saturating_sub(born.elapsed()));
    std::fs::remove_file(path).expect("delete the log");
    (bytes, ino)
}

#[test]
#[ignore = "run alone by tests/run.sh, under its own load: beside the parallel suite the watcher thread is at times scheduled more than 20 ms late"]
fn log_tail_1000_delete_and_recreate_rotations_of_20_ms_files_under_load_lose_nothing() {
    let dir = TempDir::new("tail-short-lived");
    let path = dir.path().join("app.log");
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    std::thread::sleep(Duration::from_millis(300)); // the directory is watched
                                                    // Run alone (tests/run.sh) with busy threads on every core: a loaded machine, but not the
                                                    // parallel suite's load 10, under which the watcher thread was sometimes scheduled more than
                                                    // 20 ms late and 1 or 2 of 1000 files were gone before it opened them (docs/logs.md, limits).
    let _load = Load::start(load_threads(2));
    let (files, per_file) = (1000u64, 20u64);
    let mut inodes = std::collections::HashSet::new();
    let (mut bytes, mut reused) = (0, 0);
    for n in 0..files {
        if n > 0 {
            assert!(!path.exists(), "the previous file is gone");
        }
        let (b, ino) = short_lived_file(&path, n * per_file, per_file, Duration::from_millis(20));
        reused += u64::from(!inodes.insert(ino));
        bytes += b;
    }
    let lines = files * per_file;
    let deadline = Instant::now() + Duration::from_secs(60);
    while source.stats().ring.lines_total < lines && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    tail.stop();
    let stats = source.stats();
    eprintln!("1000 files of 20 ms: {reused} inode reuses; {stats:?}");
    assert_eq!((stats.lost_lines, stats.lost_bytes), (0, 0), "{stats:?}");
    assert_exactly_once(&source, lines, "delete+recreate, 1000 files of 20 ms");
    assert_eq!(stats.bytes_read, bytes);
}

#[test]
fn log_tail_files_the_paused_follower_never_opened_are_counted_as_lost() {
    use leakwatch::logs::discover::MAX_PENDING_FILES;
    let dir = TempDir::new("tail-paused");
    let path = dir.path().join("app.log");
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    let per_file = 50u64;
    std::fs::write(&path, b"").unwrap();
    std::thread::sleep(leakwatch::logs::tail::POLL_INTERVAL * 3); // the follower has it open
    let mut bytes = 0;
    std::fs::remove_file(&path).unwrap();
    tail.set_paused(true);
    let files = MAX_PENDING_FILES as u64 + 4;
    let mut sizes = Vec::new();
    for n in 0..files {
        let (b, _) = short_lived_file(&path, n * per_file, per_file, Duration::from_millis(30));
        sizes.push(b);
        bytes += b;
    }
    tail.set_paused(false);
    let lines = files * per_file;
    // A file the watcher thread never saw (starved longer than the file lived, on a loaded
    // machine) is counted unread, whole.
    let accounted =
        |s: &leakwatch::logs::LogSourceStats| s.ring.lines_total + s.lost_lines + s.unknown_losses.rotation * per_file;
    wait_until(Duration::from_secs(30), "every line read or counted", || accounted(&source.stats()) >= lines);
    tail.stop();
    let stats = source.stats();
    eprintln!("paused over {files} files: {stats:?}");
    assert_eq!(accounted(&stats), lines, "every line read or counted once: {stats:?}");
    if stats.unknown_losses.rotation > 0 {
        eprintln!(
            "the watcher thread missed {} files (starved): the exact checks below need it to see them all",
            stats.unknown_losses.rotation
        );
        return;
    }
    let given_up = files - MAX_PENDING_FILES as u64;
    assert_eq!(stats.lost_lines, given_up * per_file, "the oldest files beyond the queue are counted, in lines");
    assert_eq!(stats.lost_bytes, sizes[..given_up as usize].iter().sum::<u64>(), "and in bytes");
    assert_eq!(stats.ring.lines_total, MAX_PENDING_FILES as u64 * per_file, "the others are read");
    assert_eq!(stats.bytes_read + stats.lost_bytes, bytes, "every byte read or counted");
    assert_eq!(stats.unknown_losses.rotation, 0, "files given up are counted by their size, not again as unread");
    let page = source.ring.read(Cursor::After(0), ALL, None);
    let first = given_up * per_file;
    assert!(page.iter().map(|l| seq_of(l.text)).eq(first..lines), "the newest files, in order, once");
}

/// A 50-byte line (with its newline): every line the same length, so lost bytes give lost lines.
fn fixed_line(seq: u64) -> String {
    format!("{:.<49}\n", format!("seq={seq:09} "))
}

fn append_fixed(f: &mut std::fs::File, seqs: std::ops::Range<u64>) {
    let text: String = seqs.map(fixed_line).collect();
    f.write_all(text.as_bytes()).expect("append");
}

#[test]
fn log_tail_truncation_loss_is_counted_exactly_when_the_size_was_seen() {
    let dir = TempDir::new("tail-trunc-exact");
    let path = dir.path().join("app.log");
    let mut app = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    append_fixed(&mut app, 0..100);
    let source = file_source("app", &path, big_limits());
    let mut tailer = Tailer::new(source.clone()).unwrap();
    tailer.step();
    append_fixed(&mut app, 100..140);
    tailer.step();
    // copytruncate: 30 more lines, the copy, 20 lines in the window (seen by a file event),
    // the truncation, 10 lines in the new file.
    append_fixed(&mut app, 140..170);
    std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
    append_fixed(&mut app, 170..190);
    tailer.observe();
    app.set_len(0).unwrap();
    append_fixed(&mut app, 190..200);
    tailer.step();
    let stats = source.stats();
    assert_eq!(stats.truncations, 1);
    assert_eq!((stats.lost_lines, stats.lost_bytes), (20, 20 * 50), "the window's lines, exactly: {stats:?}");
    let seqs: Vec<u64> = source.ring.read(Cursor::After(0), ALL, None).iter().map(|l| seq_of(l.text)).collect();
    assert_eq!(seqs, (0..170).chain(190..200).collect::<Vec<_>>(), "the copy's lines recovered, the window's lost");
    // A plain truncation (no copy): the 15 lines written after the last read are lost.
    append_fixed(&mut app, 200..220);
    tailer.step();
    append_fixed(&mut app, 220..235);
    tailer.observe();
    app.set_len(0).unwrap();
    append_fixed(&mut app, 235..236);
    tailer.step();
    let stats = source.stats();
    assert_eq!(stats.truncations, 2);
    assert_eq!((stats.lost_lines, stats.lost_bytes), (35, 35 * 50), "{stats:?}");
    // Unseen writes cannot be counted: the count is a lower bound.
    append_fixed(&mut app, 236..240);
    app.set_len(0).unwrap();
    tailer.step();
    assert_eq!(source.stats().lost_lines, 35, "4 lines written and truncated between two looks: unknowable");
    // Which is why every truncation is flagged: the follower cannot tell the first two (exact)
    // from this one (the file holds nothing of the 4 lines, and the truncation reset its times).
    let unknown = source.stats().unknown_losses;
    assert_eq!((unknown.truncation, unknown.rotation), (3, 0), "{unknown:?}");
}

/// The files of `app.log.1`-only rotations (or symlink switches) made while the watcher thread
/// and the follower are both paused, as starved ones: a file renamed over before anyone looked
/// (a symlink's target switched away from) is never opened, and its bytes are unknown; it is
/// counted from the directory events queued meanwhile, once the watcher runs again. Returns the
/// source and the lines written to the files read (the first and the last two, or one).
fn paused_across_rotations(kind: Rotation, rotations: u64) -> (Arc<LogSource>, Vec<u64>) {
    let dir = TempDir::new(&format!("tail-unread-{}", kind.name()));
    let path = dir.path().join("app.log");
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    std::thread::sleep(Duration::from_millis(300)); // the directory is watched
    let per_file = 100;
    let written = logwriter::write_and_rotate(kind, dir.path(), &path, rotations, per_file, |r, _| {
        if r == 1 {
            // The first file read, and every event of it handled: both threads paused.
            if source.stats().ring.lines_total < per_file {
                return false;
            }
            std::thread::sleep(Duration::from_millis(300));
            tail.pause_watcher(true);
            tail.set_paused(true);
            std::thread::sleep(Duration::from_millis(300));
        }
        true
    });
    tail.pause_watcher(false);
    std::thread::sleep(Duration::from_millis(300));
    tail.set_paused(false);
    // The first file, and the last two (rename: the one at `app.log.1`) or the last (symlink).
    let files_read = if kind == Rotation::Symlink { vec![0, rotations] } else { vec![0, rotations - 1, rotations] };
    let expected: Vec<u64> = files_read.iter().flat_map(|f| f * per_file..(f + 1) * per_file).collect();
    let read = expected.len() as u64;
    wait_until(Duration::from_secs(30), "the files left read", || source.stats().ring.lines_total >= read);
    std::thread::sleep(leakwatch::logs::tail::POLL_INTERVAL * 2); // and nothing more counted
    tail.stop();
    assert_eq!(written.lines, (rotations + 1) * per_file);
    (source, expected)
}

#[test]
fn log_tail_files_renamed_over_while_the_watcher_was_starved_are_counted_unread() {
    let rotations = 5;
    let (source, expected) = paused_across_rotations(Rotation::RenameCreate, rotations);
    let stats = source.stats();
    eprintln!("app.log.1 only, {rotations} rotations while paused: {stats:?}");
    let seqs: Vec<u64> = source.ring.read(Cursor::After(0), ALL, None).iter().map(|l| seq_of(l.text)).collect();
    assert_eq!(seqs, expected, "the first file and the two left, in order");
    // Files 1 to 3 were renamed over `app.log.1` before anyone looked.
    assert_eq!(stats.unknown_losses.rotation, rotations - 2, "{stats:?}");
    assert_eq!((stats.lost_lines, stats.lost_bytes, stats.unknown_losses.overflow), (0, 0, 0), "sizes never seen");
}

#[test]
fn log_tail_a_symlink_switched_twice_while_the_watcher_was_starved_counts_the_skipped_target() {
    let (source, expected) = paused_across_rotations(Rotation::Symlink, 2);
    let stats = source.stats();
    eprintln!("symlink switched twice while paused: {stats:?}");
    let seqs: Vec<u64> = source.ring.read(Cursor::After(0), ALL, None).iter().map(|l| seq_of(l.text)).collect();
    assert_eq!(seqs, expected, "the first target and the last");
    assert_eq!(stats.unknown_losses.rotation, 1, "pods/1.log, switched away from unopened: {stats:?}");
    assert_eq!((stats.lost_lines, stats.lost_bytes), (0, 0));
}

/// copytruncate on a loaded machine: the loss reported is a lower bound of the loss measured,
/// and cannot be made to reach it. Lost bytes = the last size known before the truncation − what
/// was read or recovered from the copy; the size is known only from an `fstat` (the follower's on
/// each pass, the watcher's on each IN_MODIFY event, which carries no size). Lines written after
/// the last `fstat` and truncated before the next one (here the 50 lines written after the copy,
/// 5 ms before the truncation, when neither thread ran in those 5 ms) leave no trace: the file no
/// longer holds them and no event says how long it was. A whole generation written and truncated
/// while the follower did not run is counted when the watcher saw it grow (a truncation per
/// shrink it saw). The figures are printed: reported lines / measured lines.
#[test]
fn log_tail_copytruncate_under_load_counts_a_lower_bound_of_what_it_loses() {
    let dir = TempDir::new("tail-trunc-timing");
    let path = dir.path().join("app.log");
    let mut app = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let source = file_source("app", &path, big_limits());
    let tail = TailThread::start(source.clone()).expect("start the tailer");
    std::thread::sleep(Duration::from_millis(300));
    let _load = Load::start(load_threads(2));
    let (mut seq, rotations) = (0u64, 50);
    for _ in 0..rotations {
        for _ in 0..20 {
            append_fixed(&mut app, seq..seq + 100);
            seq += 100;
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
        append_fixed(&mut app, seq..seq + 50); // the copytruncate window
        seq += 50;
        std::thread::sleep(Duration::from_millis(5));
        app.set_len(0).unwrap();
    }
    append_fixed(&mut app, seq..seq + 1);
    seq += 1;
    wait_until(Duration::from_secs(30), "the last line", || {
        source
            .ring
            .read(Cursor::Before(u64::MAX), ReadLimits { lines: 1, bytes: 1 << 20 }, None)
            .iter()
            .any(|l| seq_of(l.text) == seq - 1)
    });
    tail.stop();
    let stats = source.stats();
    let stored: std::collections::BTreeSet<u64> =
        source.ring.read(Cursor::After(0), ALL, None).iter().map(|l| seq_of(l.text)).collect();
    let measured = seq - stored.len() as u64;
    eprintln!(
        "copytruncate ×{rotations} under load: {seq} lines written, {} stored, {measured} lost; reported {} lines / {} bytes",
        stored.len(),
        stats.lost_lines,
        stats.lost_bytes
    );
    // Two truncations between two looks of the follower, the first not seen by a starved watcher
    // either (at load 13, beside other builds: 49 of 50 counted, the generation between them lost
    // and not counted), are one truncation for leakwatch: the count too is a lower bound.
    assert!((1..=rotations).contains(&stats.truncations), "{stats:?}");
    // A lower bound: never more than was lost (reads may stop mid-line, so bytes need not be
    // whole lines; two truncations between two looks of the follower lose a whole generation).
    assert!(stats.lost_lines <= measured, "never more than was lost: {stats:?}");
    assert!(stats.lost_bytes <= measured * 50, "{stats:?}");
    // Exact unless flagged: a count below the loss comes with an unknown loss counted.
    assert!(
        stats.lost_bytes >= measured * 50 || stats.unknown_losses.truncation > 0,
        "{} B reported, {} B lost, nothing flagged: {stats:?}",
        stats.lost_bytes,
        measured * 50
    );
    assert_eq!(stats.unknown_losses.truncation, stats.truncations, "every truncation flagged");
}

/// The closing table of issue 17: each rotation kind with a free-running writer (it never waits
/// for the follower): 50 rotations of 1000-line files, either paced (one file every 100 ms, about
/// 10 000 lines/s, each file written in one burst) or back to back (the next rotation right after
/// a file's last line). Lines lost, duplicated and garbled (stored, but not a line written) are
/// measured from the ring against the lines written; the loss reported is leakwatch's count. Run by `benches/rotation_table.sh`, quiet and
/// beside two busy loops (`LEAKWATCH_TEST_LOAD` adds busy threads of its own). Holds only what is
/// true at any load: no line is stored twice, and the bytes reported lost are never more than
/// were lost.
#[test]
#[ignore = "a measurement (about 60 s): benches/rotation_table.sh runs it quiet and loaded"]
fn log_tail_rotation_table() {
    use crate::support::logwriter::Rotation::{self, *};
    let _load = Load::start(load_threads(0));
    let (rotations, per_file) = (50u64, 1000u64);
    println!();
    println!(
        "| rotation | writer | lines written | lost (measured) | duplicated | cut | garbled | lost (reported) | rotations + truncations seen | unknown losses: rotation / truncation / overflow |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for file_time in [Duration::from_millis(100), Duration::ZERO] {
        // Back to back, a deleted file nobody opened yet gives its inode to the next one: the
        // writer cannot show that the path names another file, so delete+recreate is paced only
        // (and measured at 1000 files of 20 ms, loaded, by its own test).
        let kinds: &[Rotation] = if file_time.is_zero() {
            &[RenameCreate, RenameNumbered, Symlink, CopyTruncate, Truncate]
        } else {
            &[RenameCreate, RenameNumbered, DeleteRecreate, Symlink, CopyTruncate, Truncate]
        };
        for &kind in kinds {
            let dir = TempDir::new(&format!("table-{}", kind.name()));
            let path = dir.path().join("app.log");
            let source = file_source("app", &path, big_limits());
            let tail = TailThread::start(source.clone()).expect("start the tailer");
            std::thread::sleep(Duration::from_millis(300)); // the directory is watched
            let started = Instant::now();
            let written = logwriter::write_and_rotate(kind, dir.path(), &path, rotations, per_file, |r, _| {
                // Free-running: rotation r comes r file times after the start, whatever the follower does.
                started.elapsed() >= file_time * r as u32
            });
            // Settled: every line stored or counted, or nothing new for 2 s.
            let (mut last, mut still) = (0, Instant::now());
            while still.elapsed() < Duration::from_secs(2) {
                let s = source.stats();
                if s.ring.lines_total + s.lost_lines >= written.lines {
                    break;
                }
                if s.ring.lines_total != last {
                    (last, still) = (s.ring.lines_total, Instant::now());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tail.stop();
            let stats = source.stats();
            let page = source.ring.read(Cursor::After(0), ALL, None);
            // A line stored is intact when it is exactly a line written; others are garbled.
            let intact = |text: &[u8]| -> Option<u64> {
                let seq = std::str::from_utf8(text).ok()?.strip_prefix("seq=")?.get(..9)?.parse().ok()?;
                (line(seq).strip_suffix('\n') == std::str::from_utf8(text).ok()).then_some(seq)
            };
            let seqs: Vec<u64> = page.iter().filter_map(|l| intact(l.text)).collect();
            // A line whose end was truncated away is stored cut: the start of a line written,
            // marked. Anything else is garbled.
            let cut_short = |cut: bool, text: &[u8]| -> Option<()> {
                let start = text.strip_suffix(CUT_MARKER.as_bytes()).filter(|_| cut)?;
                let seq: u64 = std::str::from_utf8(start.get(..13)?).ok()?.strip_prefix("seq=")?.parse().ok()?;
                line(seq).as_bytes().starts_with(start).then_some(())
            };
            let cut = page.iter().filter(|l| intact(l.text).is_none() && cut_short(l.cut, l.text).is_some()).count();
            let garbled = page.len() - seqs.len() - cut;
            let unique: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
            let (lost, dup) = (written.lines - unique.len() as u64, seqs.len() as u64 - unique.len() as u64);
            let writer = if file_time.is_zero() { "back to back" } else { "paced" };
            println!(
                "| {} | {writer} | {} | {lost} | {dup} | {cut} | {garbled} | {} | {} | {} / {} / {} |",
                kind.name(),
                written.lines,
                stats.lost_lines,
                stats.truncations + stats.rotations,
                stats.unknown_losses.rotation,
                stats.unknown_losses.truncation,
                stats.unknown_losses.overflow
            );
            assert_eq!(dup, 0, "{kind:?}: no line stored twice");
            let odd: Vec<String> = page
                .iter()
                .filter(|l| intact(l.text).is_none() && cut_short(l.cut, l.text).is_none())
                .take(3)
                .map(|l| format!("{}: {:?}", l.seq, String::from_utf8_lossy(l.text)))
                .collect();
            assert_eq!(garbled, 0, "{kind:?}: no line stored that was never written: {odd:?}");
            // Lost lines are reported from lost bytes over the mean line length (these lines vary
            // from 14 to 190 bytes): the bytes are what must never be over-counted.
            let lost_bytes: u64 =
                (0..written.lines).filter(|s| !unique.contains(s)).map(|s| line(s).len() as u64).sum();
            assert!(
                stats.lost_bytes <= lost_bytes,
                "{kind:?}: {} B reported lost, {lost_bytes} B lost",
                stats.lost_bytes
            );
            // Exact unless flagged: a loss not counted in bytes comes with an unknown loss counted.
            let unknown = stats.unknown_losses;
            assert!(
                stats.lost_bytes == lost_bytes || unknown.rotation + unknown.truncation + unknown.overflow > 0,
                "{kind:?}: {} B reported lost, {lost_bytes} B lost, nothing flagged",
                stats.lost_bytes
            );
        }
    }
}
