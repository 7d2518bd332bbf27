//! `leakwatch status`: fetches `/status` from a running leakwatch and prints its typed
//! `Summary`: alerts first (firing, then pending, with the leak detector's time to the
//! limit), then the target (or that it was not found), memory, fds, connections by state, tasks,
//! OOM kills and log sources; `-v` adds the internal structures and the last cleanup. `--json`
//! prints the document as served.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;

use crate::cli::client::{Access, ClientError, Server};
use crate::summary::{Summary, TargetState};

/// What to print.
#[derive(Debug, Clone)]
pub struct StatusArgs {
    /// The server and how to reach it.
    pub(crate) access: Access,
    /// Print the JSON document instead of the summary.
    pub(crate) json: bool,
    /// Also print the internal structures and the last cleanup.
    pub(crate) verbose: bool,
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The server could not be reached or refused, or `--server` is malformed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The answer was not the status document.
    #[error("the answer is not a status document: {0}")]
    Malformed(String),
    /// Standard output failed.
    #[error("writing to standard output: {0}")]
    Output(#[source] std::io::Error),
}

/// The part of the `/status` document the command reads.
#[derive(Debug, Deserialize)]
struct Document {
    summary: Summary,
}

/// Fetches and prints the status.
pub async fn run(args: StatusArgs) -> Result<(), StatusError> {
    let server = Server::connect(&args.access)?;
    let body = server.fetch("/status", &[("accept", "application/json")]).await?;
    let doc: Document = serde_json::from_slice(&body).map_err(|e| StatusError::Malformed(e.to_string()))?;
    let text =
        if args.json { String::from_utf8_lossy(&body).into_owned() } else { summary(&doc.summary, args.verbose) };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(StatusError::Output(e)),
        _ => Ok(()),
    }
}

/// The readable summary; `verbose` adds the structures and the cleanup.
pub(crate) fn summary(s: &Summary, verbose: bool) -> String {
    let mut out = String::new();
    alerts(&mut out, s);
    target(&mut out, s);
    logs(&mut out, s);
    let lw = &s.leakwatch;
    let _ = writeln!(
        out,
        "\nleakwatch {}  pid {}  up {}  rss {}  snapshot #{} at {} (took {:.1} ms)",
        lw.version,
        lw.pid,
        lw.uptime_seconds.map_or("?".into(), |u| humantime::format_duration(secs(u.floor())).to_string()),
        size(lw.rss_bytes),
        s.snapshot.seq,
        time(s.snapshot.taken_at),
        s.snapshot.duration_seconds * 1000.0,
    );
    if verbose {
        structures(&mut out, s);
        cleanup(&mut out, s);
    }
    out
}

fn alerts(out: &mut String, s: &Summary) {
    let firing = s.alerts.iter().filter(|a| a.state == "firing").count();
    let _ = writeln!(out, "alerts: {firing} firing, {} pending", s.alerts.len() - firing);
    for a in &s.alerts {
        let mut line = format!(
            "  {:<8} {:<9} {:<32} value {} (level {})",
            a.state.to_uppercase(),
            a.severity,
            a.alert,
            number(a.value),
            number(a.level)
        );
        if let Some(t) = a.seconds_to_limit {
            let _ = write!(line, ", limit in {}", humantime::format_duration(secs(t.floor())));
        }
        if let Some(t) = a.active_since {
            let _ = write!(line, ", since {}", time(t));
        }
        let _ = writeln!(out, "{line}\n           {}", a.summary);
    }
    for g in &s.growing {
        let until = g
            .seconds_to_limit
            .map_or("no limit".into(), |t| format!("limit in {}", humantime::format_duration(secs(t.floor()))));
        let _ = writeln!(out, "  {:<8} {} grows ({until}, from the peaks)", "GROWING", g.resource);
    }
}

fn target(out: &mut String, s: &Summary) {
    let t = &s.target;
    let pids: Vec<String> = t.processes.iter().map(|(pid, _)| pid.to_string()).collect();
    match t.state {
        TargetState::Up => {
            let _ = writeln!(out, "\ntarget {}: {} process(es) [{}]", t.name, pids.len(), pids.join(" "));
        }
        TargetState::NotFound => {
            let _ = writeln!(out, "\ntarget {}: NOT FOUND (no process matches; see leakwatch's log)", t.name);
        }
        TargetState::Starting => {
            let _ = writeln!(out, "\ntarget {}: no sample yet", t.name);
        }
    }
    let m = &s.memory;
    let mut line = format!("  {:<12} rss {}", "memory", size(m.rss));
    if m.cgroup_working_set.is_some() || m.cgroup_limit.is_some() {
        let _ = write!(line, "  cgroup working set {} / limit {}", size(m.cgroup_working_set), limit(m.cgroup_limit));
    }
    if let Some((used, lim, basis)) = &m.utilization {
        let _ = write!(line, "  used {} of {} ({}, {basis})", size(Some(*used)), size(Some(*lim)), pct(*used, *lim));
    }
    let _ = writeln!(out, "{line}");
    if let Some(f) = &s.fds {
        let open = f.open.map_or("?".into(), |n| n.to_string());
        let lim = f.limit.map_or("no limit".into(), |n| format!("limit {n}"));
        let share = f.utilization.map_or(String::new(), |u| format!(" ({:.1} % in the worst process)", u * 100.0));
        let _ = writeln!(out, "  {:<12} {open} open / {lim}{share}", "fds");
    }
    if let Some(c) = &s.connections {
        let states: Vec<String> = c.by_state.iter().map(|(st, n)| format!("{st} {n}")).collect();
        let held: u64 = c.by_state.values().sum();
        let _ = writeln!(
            out,
            "  {:<12} {held} held ({}); close_wait {}, {} stale",
            "connections",
            if states.is_empty() { "none".into() } else { states.join(", ") },
            c.close_wait,
            c.stale
        );
        for (name, n, l) in &c.peers {
            let _ = writeln!(out, "  {:<12} {name} {n} / {l} ({})", "peer", pct(*n, *l));
        }
    }
    if let Some(k) = &s.tasks {
        let mut line =
            format!("  {:<12} {} children, {} descendants, {} stale", "tasks", k.children, k.descendants, k.stale);
        if let Some(n) = k.threads {
            let _ = write!(line, "; {n} threads");
        }
        if let Some((current, max)) = k.pids {
            let _ = write!(
                line,
                "; pids {} / {}",
                current.map_or("?".into(), |c| c.to_string()),
                max.map_or("max".into(), |m| m.to_string())
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let mut line = format!("  {:<12} {} OOM kill(s)", "oom", s.oom.kills_total);
    if let Some(t) = s.oom.last_kill_at {
        let _ = write!(line, ", last at {}", time(t));
    }
    let _ = writeln!(out, "{line}");
}

fn logs(out: &mut String, s: &Summary) {
    if s.logs.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nlog sources");
    for l in &s.logs {
        let (lines, max_lines) = l.lines;
        let (bytes, max_bytes) = l.bytes;
        let _ = writeln!(
            out,
            "  {:<16} {:>8} lines / {:<8} ({:>6})  {:>10} / {:<10} ({:>6})  subscribers {} / {}",
            l.name,
            lines,
            max_lines,
            pct(lines as u64, max_lines as u64),
            size(Some(bytes as u64)),
            size(Some(max_bytes as u64)),
            pct(bytes as u64, max_bytes as u64),
            l.subscribers.0,
            l.subscribers.1,
        );
        if let Some(problem) = &l.problem {
            let _ = writeln!(out, "  {:<16} {problem}", "");
        }
    }
}

fn structures(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "\n  {:<32} {:>10} {:>10} {:>7} {:>10} {:>11}",
        "structure", "len", "max", "%", "capacity", "allocated"
    );
    for r in &s.structures {
        let _ = writeln!(
            out,
            "  {:<32} {:>10} {:>10} {:>7} {:>10} {:>11}",
            r.name,
            r.len,
            r.max.map_or("-".into(), |m| m.to_string()),
            r.max.map_or("-".into(), |m| pct(r.len, m)),
            r.capacity.map_or("-".into(), |c| c.to_string()),
            r.bytes.map_or("-".into(), |b| size(Some(b))),
        );
    }
}

fn cleanup(out: &mut String, s: &Summary) {
    let Some(c) = &s.cleanup else {
        let _ = writeln!(out, "\ncleanup: not running");
        return;
    };
    let _ = writeln!(
        out,
        "\ncleanup (every {}, and when own rss > {})",
        humantime::format_duration(secs(c.interval_seconds)),
        size(Some(c.memory_threshold)),
    );
    let (interval, memory, admin) = c.performed;
    let _ = writeln!(
        out,
        "  performed: interval {interval}, memory {memory}, admin {admin}; freed {} in all",
        size(Some(c.freed_bytes_total))
    );
    if let Some(last) = &c.last {
        let _ = writeln!(
            out,
            "  last: {} at {}, freed {} in {} structure(s); rss {} -> {}",
            last.trigger,
            time(last.at),
            size(Some(last.freed_bytes)),
            last.structures,
            size(last.rss.0),
            size(last.rss.1),
        );
    }
}

fn time(t: f64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + secs(t)).to_string()
}

/// A ratio or count, without trailing zeros.
fn number(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// Bytes in binary units, e.g. `12.3 MiB`.
fn size(bytes: Option<u64>) -> String {
    let Some(b) = bytes else { return "?".into() };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

fn limit(bytes: Option<u64>) -> String {
    bytes.map_or("none".into(), |b| size(Some(b)))
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares() {
        assert_eq!(size(Some(512)), "512 B");
        assert_eq!(size(Some(3 << 20)), "3.0 MiB");
        assert_eq!(size(None), "?");
        assert_eq!(pct(1, 4), "25.0 %");
        assert_eq!(pct(1, 0), "-");
    }

    fn example() -> Summary {
        use crate::summary::*;
        Summary {
            leakwatch: Own { version: "0.1.0".into(), pid: 7, uptime_seconds: Some(65.4), rss_bytes: Some(12 << 20) },
            snapshot: SnapshotInfo { seq: 3, taken_at: 1.7e9, duration_seconds: 0.0012 },
            target: Target {
                name: "app".into(),
                state: TargetState::Up,
                processes: vec![(42, "app".into())],
                matched: 1,
            },
            alerts: vec![
                Alert {
                    alert: "LeakwatchTargetOOMKilled".into(),
                    state: "firing".into(),
                    severity: "critical".into(),
                    value: 1.0,
                    level: 0.0,
                    seconds_to_limit: None,
                    active_since: Some(1.7e9),
                    summary: "app was OOM-killed".into(),
                },
                Alert {
                    alert: "LeakwatchMemoryLeak".into(),
                    state: "pending".into(),
                    severity: "warning".into(),
                    value: 0.81,
                    level: 0.5,
                    seconds_to_limit: Some(7380.0),
                    active_since: None,
                    summary: "memory grows".into(),
                },
            ],
            growing: vec![Growth {
                resource: "memory".into(),
                slope_per_second: Some(10.0),
                seconds_to_limit: Some(7380.0),
            }],
            memory: Memory {
                rss: Some(100 << 20),
                cgroup_working_set: Some(128 << 20),
                cgroup_limit: Some(512 << 20),
                utilization: Some((128 << 20, 512 << 20, "cgroup_working_set".into())),
            },
            fds: Some(Fds { open: Some(12), limit: Some(1024), utilization: Some(12.0 / 1024.0) }),
            connections: Some(Connections {
                by_state: [("close_wait".to_owned(), 2), ("established".to_owned(), 3)].into_iter().collect(),
                close_wait: 2,
                stale: 0,
                peers: vec![("db".into(), 3, 10)],
            }),
            tasks: Some(Tasks {
                children: 1,
                descendants: 2,
                stale: 0,
                threads: Some(5),
                pids: Some((Some(7), Some(100))),
            }),
            oom: Oom { kills_total: 1, last_kill_at: Some(1.7e9) },
            logs: vec![LogSource {
                name: "app".into(),
                kind: "file".into(),
                pattern: Some("/missing.log".into()),
                lines: (10, 1000),
                bytes: (100, 4096),
                subscribers: (0, 64),
                lines_total: 10,
                read_errors: 3,
                problem: Some("/missing.log does not exist".into()),
            }],
            structures: vec![StructureRow {
                name: "log_lines app".into(),
                len: 10,
                max: Some(1000),
                capacity: Some(16),
                bytes: Some(512),
            }],
            cleanup: Some(CleanupSummary {
                interval_seconds: 300.0,
                memory_threshold: 256 << 20,
                performed: (0, 0, 1),
                freed_bytes_total: 2048,
                last: Some(LastCleanup {
                    trigger: "admin".into(),
                    at: 1.7e9,
                    freed_bytes: 2048,
                    structures: 1,
                    rss: (Some(1), Some(1)),
                }),
            }),
        }
    }

    #[test]
    fn the_summary_begins_with_the_alerts_firing_first_then_the_target_and_hides_structures_without_v() {
        let text = summary(&example(), false);
        assert!(
            text.starts_with("alerts: 1 firing, 1 pending\n  FIRING   critical  LeakwatchTargetOOMKilled"),
            "{text}"
        );
        let order = [
            "FIRING",
            "PENDING  warning   LeakwatchMemoryLeak              value 0.81 (level 0.5), limit in 2h 3m",
            "GROWING  memory grows (limit in 2h 3m, from the peaks)",
            "target app: 1 process(es) [42]",
            "memory       rss 100.0 MiB  cgroup working set 128.0 MiB / limit 512.0 MiB  used 128.0 MiB of 512.0 MiB (25.0 %, cgroup_working_set)",
            "fds          12 open / limit 1024 (1.2 % in the worst process)",
            "connections  5 held (close_wait 2, established 3); close_wait 2, 0 stale",
            "peer         db 3 / 10 (30.0 %)",
            "tasks        1 children, 2 descendants, 0 stale; 5 threads; pids 7 / 100",
            "oom          1 OOM kill(s), last at 2023-11-14T22:13:20Z",
            "app                    10 lines / 1000     ( 1.0 %)",
            "/missing.log does not exist",
            "leakwatch 0.1.0  pid 7  up 1m 5s",
        ];
        let mut at = 0;
        for want in order {
            let found = text[at..].find(want).unwrap_or_else(|| panic!("{want:?} missing (in order) in\n{text}"));
            at += found + want.len();
        }
        assert!(!text.contains("log_lines app") && !text.contains("cleanup"), "structures only with -v:\n{text}");
        let verbose = summary(&example(), true);
        for want in [
            "log_lines app",
            "cleanup (every 5m, and when own rss > 256.0 MiB)",
            "performed: interval 0, memory 0, admin 1; freed 2.0 KiB in all",
            "last: admin at 2023-11-14T22:13:20Z, freed 2.0 KiB in 1 structure(s)",
        ] {
            assert!(verbose.contains(want), "{want:?} missing in\n{verbose}");
        }
    }

    #[test]
    fn a_target_not_found_says_so() {
        let mut s = example();
        s.target.state = TargetState::NotFound;
        s.alerts.clear();
        let text = summary(&s, false);
        assert!(text.starts_with("alerts: 0 firing, 0 pending\n"), "{text}");
        assert!(text.contains("target app: NOT FOUND"), "{text}");
    }
}
