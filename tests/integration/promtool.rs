//! The exposition is checked by Prometheus's own linter, `promtool check metrics`: once on a live
//! leakwatch watching a real process (host, process, cgroup and own-process families all present)
//! and once on a snapshot with every field set (families this machine cannot produce, such as
//! cgroup v2 pressure or a cgroup limit). docs/metrics.md's metric table is checked against the same
//! full render, so a new family cannot go undocumented.
//!
//! promtool is found through `LEAKWATCH_PROMTOOL`, then `PATH`, then `.cache/tools/bin/` (where
//! `tests/run.sh` puts it). A missing promtool fails the tests: it never skips them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use leakwatch::alert::{rules, AlertState, Engine};
use leakwatch::cleanup::{ByTrigger, CleanupSettings, CleanupStats, Report, Trigger};
use leakwatch::info::StaticInfo;
use leakwatch::logs::ring::RingLimits;
use leakwatch::logs::{LogSource, LogSourceStats, SourceKind};
use leakwatch::measure::{Structure, Trimmed};
use leakwatch::metrics::Scrape;
use leakwatch::parse::pressure::{Pressure, PressureLine};
use leakwatch::reload::ReloadStatus;
use leakwatch::snapshot::{
    Basis, CgroupSample, CgroupVersion, CgroupVia, ErrorCounts, ErrorReason, ErrorSource, FdKind, FdSample, Freshness,
    HostMemory, HostSample, Listener, PeerSample, PidsSample, ProcState, ProcessIdentity, ProcessMemory, Protocol,
    PssCost, Snapshot, SockState, SocketMethod, SocketSample, TargetSample, TaskSample, Utilization,
};

use crate::support::{Leakwatch, MemHog};
use leakwatch::metric_names as n;

/// The promtool binary, or a failure that says how to get one.
pub fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("LEAKWATCH_PROMTOOL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "LEAKWATCH_PROMTOOL={} is not a file", path.display());
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("promtool")).find(|p| p.is_file()))
        .unwrap_or_default();
    if let Some(path) = on_path {
        return path;
    }
    let cached = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/tools/bin/promtool");
    assert!(
        cached.is_file(),
        "promtool not found (not in LEAKWATCH_PROMTOOL, PATH or {}): run `bash tests/run.sh`, which \
         installs it from Debian's prometheus package",
        cached.display()
    );
    cached
}

/// Runs `promtool check metrics` on an exposition and fails with promtool's report unless it
/// exits 0 and reports nothing.
fn assert_promtool_clean(body: &str) {
    let promtool = promtool();
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = body.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("promtool runs");
    writer.join().expect("writer thread").expect("write the exposition to promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {} with report:\n{report}\n--- exposition ---\n{body}",
        out.status
    );
}

/// The `# TYPE` names of an exposition.
pub fn families(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_live_scrape_of_a_real_target_passes_promtool() {
    let hog = MemHog::start(64);
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "hog"]);
    let m = lw.wait_for(Duration::from_secs(15), "host, process, cgroup and own-process metrics", |m| {
        m.get(n::HOST_MEMORY_TOTAL_BYTES, &[]).is_some()
            && m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[("target", "hog")]).is_some()
            && m.get(n::CGROUP_INFO, &[("target", "hog")]).is_some()
            && m.get(r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &[("target", "hog")]).is_some()
            && m.get(n::OWN_RESIDENT_MEMORY_BYTES, &[]).is_some()
    });
    assert_promtool_clean(&m.text);
}

#[test]
fn every_family_of_a_fully_populated_snapshot_passes_promtool() {
    let body = full_render();
    let names = families(&body);
    assert!(names.len() >= 60, "expected every family in the full render, got {}: {names:?}", names.len());
    assert_promtool_clean(&body);
}

#[test]
fn the_docs_metric_table_lists_exactly_the_rendered_families() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
        .expect("docs/metrics.md");
    let rendered = families(&full_render());
    let undocumented: Vec<&String> = rendered.iter().filter(|n| !readme.contains(&format!("`{n}`"))).collect();
    assert!(undocumented.is_empty(), "docs/metrics.md does not document: {undocumented:?}");
    // Table rows name the metric in their first cell: `| `name` | ...`.
    let documented: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("leakwatch_") || n.starts_with("process_"))
        .collect();
    let stale: Vec<&&str> = documented.iter().filter(|n| !rendered.iter().any(|r| r == *n)).collect();
    assert!(stale.is_empty(), "docs/metrics.md documents metrics that are not rendered: {stale:?}");
}

#[test]
fn a_default_scrape_leaves_out_exactly_the_families_the_docs_mark_detail() {
    let (snapshot, alerts) = (full_snapshot(), full_alert_state());
    let default = families(&render_with(&snapshot, &alerts, false));
    let all = families(&render_with(&snapshot, &alerts, true));
    assert!(default.iter().all(|f| all.contains(f)), "a default scrape is a part of a detail one");
    let detail_only: Vec<&String> = all.iter().filter(|f| !default.contains(f)).collect();
    assert!(detail_only.len() >= 20, "the detail families: {detail_only:?}");
    assert_promtool_clean(&render_with(&snapshot, &alerts, false));
    // docs/metrics.md marks each detail family's row with "detail", and no other row.
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
        .expect("docs/metrics.md");
    for family in &all {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{family}` |"))).unwrap_or_else(|| {
            panic!("docs/metrics.md has no table row for {family}");
        });
        let marked = row.contains("*(detail)*");
        assert_eq!(marked, detail_only.contains(&family), "{family}: marked detail {marked} in docs/metrics.md: {row}");
    }
}

/// Sockets from both methods, a listener with a backlog and a peer group.
fn sockets() -> SocketSample {
    SocketSample {
        methods: [(Protocol::Tcp, SocketMethod::SockDiag), (Protocol::Unix, SocketMethod::ProcNet)]
            .into_iter()
            .collect(),
        held: [
            ((Protocol::Tcp, SockState::Established), 18),
            ((Protocol::Tcp, SockState::CloseWait), 2),
            ((Protocol::Tcp, SockState::Listen), 1),
        ]
        .into_iter()
        .collect(),
        netns: [((Protocol::Tcp, SockState::Established), 40), ((Protocol::Tcp, SockState::TimeWait), 7)]
            .into_iter()
            .collect(),
        listeners: vec![Listener { protocol: Protocol::Tcp, port: 8080, queued: 3, backlog: Some(128) }],
        accept_queue_utilization: Some(3.0 / 128.0),
        peers: vec![PeerSample {
            name: "postgres".into(),
            limit: 20,
            by_state: [(SockState::Established, 18), (SockState::CloseWait, 1)].into_iter().collect(),
            connections: 19,
            stale: 1,
            utilization: 0.95,
        }],
        stale: 1,
        stale_after: Duration::from_secs(3600),
        tracked: 21,
        tracked_max: 65536,
        untracked: 0,
        duration: Duration::from_micros(250),
    }
}

/// The full snapshot with the alert state of an engine that watched its memory, fds and tasks
/// grow for 75 minutes (so that every alert and trend family is present).
pub fn full_render() -> String {
    render_all(&full_snapshot(), &full_alert_state())
}

/// What `/metrics?detail=1` serves for a snapshot and its alert state: every family, the
/// structure, cleanup (cleanups of every trigger done) and HTTP families included.
pub fn render_all(snapshot: &Snapshot, alerts: &AlertState) -> String {
    render_with(snapshot, alerts, true)
}

/// What `/metrics` serves for a snapshot and its alert state, with or without the detail families.
pub fn render_with(snapshot: &Snapshot, alerts: &AlertState, detail: bool) -> String {
    let all: Vec<Structure> = snapshot.structures.iter().chain(&alerts.structures).cloned().collect();
    let (reload, info, cleanup, http) = (full_reload_status(), full_info(), full_cleanup_stats(), http_figures());
    Scrape {
        alerts: Some(alerts),
        reload: Some(&reload),
        structures: &all,
        cleanup: Some(&cleanup),
        http: Some(&http),
        detail,
        ..Scrape::new(snapshot, &info)
    }
    .render()
}

/// Cleanups by every trigger, the last of which freed a log buffer's spare entries.
fn full_cleanup_stats() -> CleanupStats {
    let trimmed = Trimmed {
        name: "log_lines",
        source: Some("app".into()),
        len_before: 3,
        len_after: 3,
        capacity_before: 1024,
        capacity_after: 3,
        bytes_before: 24 * 1024,
        bytes_after: 72,
        freed_bytes: 24 * 1024 - 72,
    };
    CleanupStats {
        settings: CleanupSettings::default(),
        performed: ByTrigger { interval: 4, memory: 1, admin: 2 },
        freed_bytes_total: 1 << 20,
        last: Some(Report {
            trigger: Trigger::Admin,
            at: 1.7e9,
            duration_seconds: 0.001,
            freed_bytes: trimmed.freed_bytes,
            rss_before_bytes: Some(20 << 20),
            rss_after_bytes: Some(19 << 20),
            structures: vec![trimmed],
            unanswered: Vec::new(),
        }),
    }
}

/// The structures of a snapshot with `logs`: the log buffers' and a sampler's.
pub fn structures_of(logs: &[LogSourceStats]) -> Vec<Structure> {
    let mut out: Vec<Structure> = logs.iter().flat_map(LogSourceStats::structures).collect();
    let map: std::collections::HashMap<u64, u64> = (0..21).map(|i| (i, i)).collect();
    out.extend([
        Structure::map("conn_first_seen", &map, Some(65536)),
        Structure::deque::<[u8; 48]>("conn_table_rows", 40, 64, None),
        Structure::map("task_first_seen", &map, Some(4096)),
        Structure::counted("sample_errors", 2, None),
    ]);
    out
}

/// A reload status after a failed and a successful reload of a config file.
pub fn full_reload_status() -> ReloadStatus {
    ReloadStatus::started(Some([7; 32])).failed().succeeded(Some([9; 32])).failed()
}

/// The HTTP figures of a server that answered a scrape and evicted an idle connection (labelled
/// series appear on first use).
pub fn http_figures() -> leakwatch::http::HttpFigures {
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(leakwatch::http::PAGE_MEMORY_BUDGET >> 10));
    let stats = leakwatch::http::HttpStats::new(budget);
    stats.request(leakwatch::http::Route::Metrics, 200);
    stats.evicted(leakwatch::http::EvictReason::IdleCap);
    stats.figures()
}

fn full_alert_state() -> AlertState {
    alert_state_for(&full_snapshot())
}

/// The alert state of an engine with the built-in rules that watched `start`'s target grow for
/// 75 minutes (memory, fds and tasks rising).
pub fn alert_state_for(start: &Snapshot) -> AlertState {
    let mut engine = Engine::new(rules::defaults());
    let mut state = AlertState::default();
    for i in 0..300u64 {
        let mut s = start.clone();
        s.seq = i + 1;
        s.taken_at = start.taken_at + Duration::from_secs(15 * i);
        let grow = |base: u64, per_step: u64| base + per_step * i;
        if let Some(u) = s.target.utilization.as_mut() {
            u.used = grow(250 << 20, 1 << 20);
        }
        if let Some(m) = s.target.memory.as_mut() {
            m.open_fds = Some(grow(12, 2));
        }
        s.target.pids = Some(PidsSample { version: CgroupVersion::V2, current: Some(grow(10, 1)), max: Some(1000) });
        state = engine.evaluate(&s);
    }
    assert!(state.trends.iter().all(|t| t.trend.growing), "every resource grows: {:?}", state.trends);
    assert!(!state.history.is_empty(), "some alert changed state");
    state
}

/// A file source with some history and a `run`-mode stream.
fn log_sources() -> Vec<LogSourceStats> {
    let limits = RingLimits { max_lines: 3, max_bytes: 4096, max_line_bytes: 64, max_subscribers: 2 };
    let file = LogSource::new("app", SourceKind::File { pattern: "/var/log/app/*.log".into() }, limits);
    for line in ["one", "two", "three", "four"] {
        file.ring.push(line.as_bytes(), false);
    }
    file.ring.push(&[b'x'; 100], false);
    file.counters.rotations.store(2, std::sync::atomic::Ordering::Relaxed);
    let stdout = LogSource::new("stdout", SourceKind::Stdout, limits);
    vec![file.stats(), stdout.stats()]
}

pub fn full_info() -> StaticInfo {
    let env = |k: &str| {
        Some(match k {
            "POD_NAMESPACE" => "shop".to_owned(),
            "POD_NAME" => "checkout-7d9f".to_owned(),
            "CONTAINER_NAME" => "app".to_owned(),
            "NODE_NAME" => "node-1".to_owned(),
            _ => return None,
        })
    };
    StaticInfo::from_env(env)
}

/// A snapshot with every optional field set, as a cgroup v2 host with PSI would give it.
pub fn full_snapshot() -> Snapshot {
    let line = |avg10, total_us| PressureLine { avg10, avg60: 0.5, avg300: 0.25, total_us };
    let pressure = Pressure { some: Some(line(1.5, 123_456)), full: Some(line(0.5, 42_000)) };
    let memory = ProcessMemory {
        rss: Some(200 << 20),
        rss_anon: Some(190 << 20),
        rss_file: Some(10 << 20),
        rss_shmem: Some(0),
        pss: Some(195 << 20),
        swap: Some(0),
        rss_peak: Some(210 << 20),
        virtual_size: Some(400 << 20),
        threads: Some(4),
        open_fds: Some(12),
        max_fds: Some(1024),
        cpu_seconds: Some(3.5),
        start_time_seconds: Some(1.7e9),
    };
    let mut errors = ErrorCounts::default();
    errors.record(ErrorSource::SmapsRollup, ErrorReason::PermissionDenied);
    errors.record(ErrorSource::Stat, ErrorReason::NotFound);
    let oom = leakwatch::snapshot::oom::OomStatus {
        target: "app".into(),
        up: true,
        kills_total: 3,
        inferred_total: 1,
        last_kill_at: Some(1.7e9),
        max_reports: 8,
        reports: Vec::new(),
        watch_events_dropped: 0,
    };
    Snapshot {
        oom,
        logs: log_sources(),
        seq: 42,
        taken_at: SystemTime::now(),
        duration: Duration::from_micros(900),
        host: HostSample {
            memory: Some(HostMemory {
                total: 16 << 30,
                available: Some(8 << 30),
                free: Some(4 << 30),
                buffers: Some(1 << 20),
                cached: Some(2 << 30),
                swap_total: Some(1 << 30),
                swap_free: Some(1 << 30),
            }),
            pressure: Some(pressure),
        },
        target: TargetSample {
            name: "app".into(),
            processes: vec![
                ProcessIdentity { pid: 7, start_ticks: 100, comm: "app".into() },
                ProcessIdentity { pid: 9, start_ticks: 120, comm: "app-worker".into() },
            ],
            matched: 2,
            memory: Some(memory),
            cgroup: Some(CgroupSample {
                version: CgroupVersion::V2,
                via: CgroupVia::ProcRoot,
                path: "/../../kubepods/pod1/ctr".into(),
                usage: Some(300 << 20),
                limit: Some(512 << 20),
                working_set: Some(250 << 20),
                rss: Some(200 << 20),
                cache: Some(100 << 20),
                shmem: Some(0),
                inactive_file: Some(50 << 20),
                swap: Some(0),
                oom_kills: Some(1),
                limit_hits: Some(3),
                pressure: Some(pressure),
            }),
            utilization: Some(Utilization { basis: Basis::CgroupWorkingSet, used: 250 << 20, limit: 512 << 20 }),
            pss: PssCost {
                last_read: Some(Duration::from_micros(300)),
                read_seconds_total: 0.25,
                skipped_rss: 1,
                skipped_budget: 2,
            },
            changes: 1,
            sockets: Some(sockets()),
            fds: Some(FdSample {
                by_kind: FdKind::ALL.iter().zip([30, 5, 2, 4, 1]).map(|(k, n)| (*k, n)).collect(),
                utilization: Some(0.42),
            }),
            tasks: Some(TaskSample {
                children: 3,
                descendants: [(ProcState::Sleeping, 3), (ProcState::Zombie, 1)].into_iter().collect(),
                stale: 2,
                stale_after: Duration::from_secs(3600),
                tracked: 4,
                tracked_max: 4096,
                untracked: 0,
                voluntary_switches: Some(1520),
                involuntary_switches: Some(37),
            }),
            pids: Some(PidsSample { version: CgroupVersion::V2, current: Some(40), max: Some(1000) }),
            freshness: Freshness {
                fds: Some(Duration::from_secs(5)),
                pss: Some(Duration::ZERO),
                sockets: Some(Duration::from_secs(5)),
                tasks: Some(Duration::ZERO),
                expensive_every: 12,
            },
        },
        own_process: Some(ProcessMemory { pss: None, ..memory }),
        errors,
        structures: structures_of(&log_sources()),
    }
}
