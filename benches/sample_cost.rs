//! What one sampling pass and one `/metrics` render cost, measured against the floor: reading
//! the very same kernel files into memory with no parsing at all.
//!
//! ```text
//! cargo bench --bench sample_cost
//! ```
//!
//! Everything runs in one process on this machine's real `/proc` and cgroup filesystem, with the
//! three operations interleaved in every iteration (so drift in the machine's load hits them
//! alike):
//!
//! - **raw reads**: `std::fs::read` of `/proc/meminfo`, `/proc/pressure/memory`,
//!   `/proc/PID/{stat,status,limits,smaps_rollup,cgroup}`, every link of `/proc/PID/fd`, the
//!   memory-controller files of the target's cgroup, `/proc/uptime`, every `/proc/N/stat` (the
//!   child-process scan) and every `/proc/PID/task/TID/status`: the files one pass opens;
//! - **`Sampler::sample()`**: one full pass, the same reads plus parsing and the snapshot, plus
//!   the `sock_diag` dumps of the socket tables (netlink, not files: `benches/conn_sample.rs`
//!   measures them against the `/proc/net` files);
//! - **`metrics::render()`**: the `/metrics` text for that pass's snapshot (no file reads);
//! - **`History::record()`**: that snapshot recorded into the console's history, kept full at its
//!   default cap (3600 points), so every record also evicts the oldest point: what the history
//!   task adds to each pass.
//!
//! Two targets: the bench process itself (the default `leakwatch` with no config), and, when
//! `python3` is available, a child holding 100 MiB (a `--pid` target: its files, plus the bench
//! process's own `stat/status/limits/fd` for the `process_*` metrics).
//!
//! Iterations default to 3000 after 300 warm-up passes; `LEAKWATCH_BENCH_ITERS` overrides the
//! count. Without cargo bench's `--bench` argument (that is, under `cargo test --all-targets`) it
//! runs a few iterations as a smoke test.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use leakwatch::alert::AlertState;
use leakwatch::config::{DEFAULT_MAX_PROCESSES, DEFAULT_PSS_MAX_RSS, DEFAULT_PSS_TIME_BUDGET};
use leakwatch::history::{History, HistorySettings};
use leakwatch::metrics::{render, StaticInfo};
use leakwatch::roots::Roots;
use leakwatch::sample::target::TargetSpec;
use leakwatch::sample::{Sampler, SamplerSettings};
use leakwatch::snapshot::{CgroupVersion, Snapshot};

mod common;
use common::{human, ratio, Run, Stats};

const DEFAULT_ITERATIONS: usize = 3000;
const WARM_UP: usize = 300;
const SMOKE_ITERATIONS: usize = 5;

fn main() {
    let Run { benching, iterations, warm_up } = Run::from_args(DEFAULT_ITERATIONS, 10, WARM_UP, SMOKE_ITERATIONS);
    let roots = Roots::default();
    let info = StaticInfo::from_env(|k| std::env::var(k).ok());
    let own_pid = std::process::id() as i32;

    println!(
        "sample_cost: {iterations} iterations after {warm_up} warm-up{}; times are per operation",
        if benching { "" } else { " (smoke run: pass --bench, i.e. `cargo bench --bench sample_cost`, to measure)" }
    );
    let mut rows = Vec::new();
    rows.extend(run_case("own process", TargetSpec::Own, own_pid, &roots, &info, iterations, warm_up));
    match Hog::start(100) {
        Ok(hog) => rows.extend(run_case(
            "python child, 100 MiB",
            TargetSpec::Pid(hog.pid()),
            hog.pid(),
            &roots,
            &info,
            iterations,
            warm_up,
        )),
        Err(e) => println!("\n(python child case skipped: cannot start python3: {e})"),
    }
    print_table(&rows);
}

/// One target: interleaved raw reads, sampling passes and renders.
fn run_case(
    label: &str,
    spec: TargetSpec,
    target_pid: i32,
    roots: &Roots,
    info: &StaticInfo,
    iterations: usize,
    warm_up: usize,
) -> Vec<Row> {
    let own_pid = std::process::id() as i32;
    let mut sampler = Sampler::new(SamplerSettings {
        roots: roots.clone(),
        spec: spec.clone(),
        target_name: "bench".into(),
        max_processes: DEFAULT_MAX_PROCESSES,
        pss_max_rss: DEFAULT_PSS_MAX_RSS,
        pss_time_budget: DEFAULT_PSS_TIME_BUDGET,
        logs: Default::default(),
        conns: Default::default(),
        tasks: Default::default(),
    });
    let files = files_of_a_pass(roots, target_pid, (target_pid != own_pid).then_some(own_pid));

    let mut raw = Vec::with_capacity(iterations);
    let mut sample = Vec::with_capacity(iterations);
    let mut rendering = Vec::with_capacity(iterations);
    let mut recording = Vec::with_capacity(iterations);
    let (history, alerts) = (&mut full_history(&mut sampler), AlertState::default());
    let mut last: Option<Snapshot> = None;
    let mut body_len = 0;
    for i in 0..warm_up + iterations {
        let t = Instant::now();
        let bytes = files.read_all();
        let raw_took = t.elapsed();
        std::hint::black_box(bytes);

        let t = Instant::now();
        let mut snapshot = sampler.sample();
        let sample_took = t.elapsed();

        let t = Instant::now();
        let body = render(&snapshot, info);
        let render_took = t.elapsed();
        body_len = std::hint::black_box(body).len();

        // Past the prefilled points (the history ignores a snapshot it has seen).
        snapshot.seq += PREFILL_SEQ;
        let t = Instant::now();
        let stored = history.record(&snapshot, &alerts);
        let record_took = t.elapsed();
        assert!(stored, "the history stores every new snapshot");

        if i >= warm_up {
            raw.push(raw_took);
            sample.push(sample_took);
            rendering.push(render_took);
            recording.push(record_took);
        }
        last = Some(snapshot);
    }

    let snapshot = last.expect("at least one pass ran");
    describe(label, &snapshot, &files, body_len);
    assert!(snapshot.host.memory.is_some(), "{label}: /proc/meminfo was not sampled");
    assert!(snapshot.target.memory.is_some(), "{label}: the target was not sampled");
    assert!(body_len > 0, "{label}: empty /metrics body");
    if snapshot.target.pss.skipped_budget > 0 || snapshot.target.pss.skipped_rss > 0 {
        println!("  note: PSS reads were skipped in some passes, so sample() did less work than the raw reads");
    }

    assert_eq!(history.len(), HistorySettings::default().max_points, "the history stayed full");
    let (raw, sample, recording) = (Stats::of(raw), Stats::of(sample), Stats::of(recording));
    println!(
        "  History::record() adds {:.2} % to a sampling pass (median {} of {})",
        recording.median.as_secs_f64() / sample.median.as_secs_f64() * 100.0,
        human(recording.median),
        human(sample.median)
    );
    vec![
        Row { case: label.to_owned(), op: "raw reads (no parsing)", stats: raw, ratio_to: None },
        Row { case: label.to_owned(), op: "Sampler::sample()", stats: sample, ratio_to: Some(raw) },
        Row { case: label.to_owned(), op: "metrics::render()", stats: Stats::of(rendering), ratio_to: Some(raw) },
        Row { case: label.to_owned(), op: "History::record()", stats: recording, ratio_to: Some(raw) },
    ]
}

/// Where the prefilled history's sequence numbers end.
const PREFILL_SEQ: u64 = 1_000_000;

/// A history at its default cap, from copies of one real snapshot over the last hour.
fn full_history(sampler: &mut Sampler) -> History {
    let settings = HistorySettings::default();
    let mut history = History::new(settings);
    let first = sampler.sample();
    let n = settings.max_points as u64;
    for i in 1..=n {
        let mut s = first.clone();
        s.seq = i;
        s.taken_at = SystemTime::now() - Duration::from_secs_f64((n - i) as f64 * 0.9 + 1.0);
        history.record(&s, &AlertState::default());
    }
    assert_eq!(history.len(), settings.max_points);
    history
}

fn describe(label: &str, s: &Snapshot, files: &PassFiles, body_len: usize) {
    let mib = |b: Option<u64>| b.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0)).unwrap_or_else(|| "?".into());
    let t = &s.target;
    let pids: Vec<String> = t.processes.iter().map(|p| format!("{} ({})", p.pid, p.comm)).collect();
    let (rss, pss) = (mib(t.memory.and_then(|m| m.rss)), mib(t.memory.and_then(|m| m.pss)));
    println!("\n{label}: pid {}; RSS {rss}, PSS {pss}", pids.join(", "));
    match &t.cgroup {
        Some(c) => {
            let (version, via, usage) = (c.version.as_str(), c.via.as_str(), mib(c.usage));
            println!("  cgroup {version} {} (found {via}), usage {usage}", c.path);
        }
        None => println!("  no memory cgroup found: no cgroup files in either column"),
    }
    println!(
        "  one pass opens {} files, scans /proc and the task list, and reads every link of {} fd director{}; /metrics body: {} bytes, {} samples",
        files.files.len(),
        files.fd_dirs.len(),
        if files.fd_dirs.len() == 1 { "y" } else { "ies" },
        body_len,
        render_samples(s)
    );
}

fn render_samples(s: &Snapshot) -> usize {
    render(s, &StaticInfo::default()).lines().filter(|l| !l.starts_with('#')).count()
}

/// The files one sampling pass opens, in the order it opens them.
struct PassFiles {
    files: Vec<PathBuf>,
    fd_dirs: Vec<PathBuf>,
    /// Directories whose entries' `stat` (the `/proc` scan) or `status` (a task list) are read.
    scans: Vec<(PathBuf, &'static str)>,
}

impl PassFiles {
    /// Reads every file into a `Vec`, every fd link, and the files of every scanned directory;
    /// returns the bytes read. Errors are ignored: a failed open costs a syscall in the sampler too.
    fn read_all(&self) -> usize {
        let mut n = 0;
        for f in &self.files {
            n += std::fs::read(f).map(|b| b.len()).unwrap_or(0);
        }
        for d in &self.fd_dirs {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                n += std::fs::read_link(e.path()).map(|l| l.as_os_str().len()).unwrap_or(0);
            }
        }
        for (d, file) in &self.scans {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let numeric = e.file_name().to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
                if numeric {
                    n += std::fs::read(e.path().join(file)).map(|b| b.len()).unwrap_or(0);
                }
            }
        }
        n
    }
}

/// Mirrors `Sampler::sample`: host files; the target's stat, status, limits, fd, smaps_rollup;
/// for a target other than the bench process, the bench process's stat, status, limits and fd
/// (no PSS); the target's `/proc/PID/cgroup` and its memory-controller files.
fn files_of_a_pass(roots: &Roots, target: i32, own: Option<i32>) -> PassFiles {
    let mut files = vec![roots.proc_file("meminfo"), roots.proc_file("pressure/memory")];
    let mut fd_dirs = Vec::new();
    let dir = roots.pid(target);
    files.extend(["stat", "status", "limits"].map(|f| dir.join(f)));
    fd_dirs.push(dir.join("fd"));
    files.push(dir.join("smaps_rollup"));
    if let Some(own) = own {
        let own = roots.pid(own);
        files.extend(["stat", "status", "limits"].map(|f| own.join(f)));
        fd_dirs.push(own.join("fd"));
    }
    let cgroup_file = dir.join("cgroup");
    files.push(cgroup_file.clone());
    let members = std::fs::read(&cgroup_file)
        .ok()
        .and_then(|b| leakwatch::parse::cgroup::memberships(&b).ok())
        .unwrap_or_default();
    if let Some(loc) = leakwatch::sample::cgroup::locate(roots, target, &members) {
        let names: &[&str] = match loc.version {
            CgroupVersion::V2 => &[
                "memory.current",
                "memory.max",
                "memory.stat",
                "memory.swap.current",
                "memory.events",
                "memory.pressure",
            ],
            CgroupVersion::V1 => &[
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "memory.stat",
                "memory.oom_control",
                "memory.failcnt",
            ],
        };
        files.extend(names.iter().map(|n| loc.dir.join(n)));
    }
    files.push(dir.join("ns/net"));
    files.push(roots.proc_file("uptime"));
    let scans = vec![(roots.procfs().to_path_buf(), "stat"), (dir.join("task"), "status")];
    PassFiles { files, fd_dirs, scans }
}

struct Row {
    case: String,
    op: &'static str,
    stats: Stats,
    ratio_to: Option<Stats>,
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<24} {:<24} {:>10} {:>10} {:>14} {:>11}",
        "target", "operation", "median", "p90", "x raw median", "x raw p90"
    );
    println!("{}", "-".repeat(98));
    for r in rows {
        let (m, p) = match r.ratio_to {
            Some(raw) => (ratio(r.stats.median, raw.median, 2), ratio(r.stats.p90, raw.p90, 2)),
            None => ("1.00".into(), "1.00".into()),
        };
        println!(
            "{:<24} {:<24} {:>10} {:>10} {:>14} {:>11}",
            r.case,
            r.op,
            human(r.stats.median),
            human(r.stats.p90),
            m,
            p
        );
    }
}

/// A python3 child holding `mib` MiB of touched memory; killed on drop.
struct Hog(Child);

impl Hog {
    fn start(mib: u64) -> std::io::Result<Hog> {
        let script =
            format!("import time\nb=bytearray(b'\\x01')*({mib}<<20)\nprint('ready',flush=True)\ntime.sleep(3600)\n");
        let mut child =
            Command::new("python3").args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.as_mut() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let hog = Hog(child);
        if line.trim() != "ready" {
            return Err(std::io::Error::other("python3 did not report ready"));
        }
        Ok(hog)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
