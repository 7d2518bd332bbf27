//! `leakwatch status`: fetches `/status` from a running leakwatch and prints a summary (target
//! memory against its limit, connections and tasks, log sources, internal structures, the last
//! cleanup); `--json` prints the document as served.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use crate::client::{Access, ClientError, Server};

/// What to print.
#[derive(Debug, Clone)]
pub struct StatusArgs {
    /// The server and how to reach it.
    pub access: Access,
    /// Print the JSON document instead of the summary.
    pub json: bool,
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

/// Fetches and prints the status.
pub async fn run(args: StatusArgs) -> Result<(), StatusError> {
    let server = Server::connect(&args.access)?;
    let body = server.fetch("/status", &[("accept", "application/json")]).await?;
    let doc: Value = serde_json::from_slice(&body).map_err(|e| StatusError::Malformed(e.to_string()))?;
    if !doc["snapshot"].is_object() || !doc["structures"].is_array() {
        return Err(StatusError::Malformed("no snapshot or structures section".into()));
    }
    let text = if args.json { String::from_utf8_lossy(&body).into_owned() } else { summary(&doc) };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(StatusError::Output(e)),
        _ => Ok(()),
    }
}

/// The readable summary of a status document.
pub fn summary(doc: &Value) -> String {
    let mut out = String::new();
    let lw = &doc["leakwatch"];
    let s = &doc["snapshot"];
    let _ = writeln!(
        out,
        "leakwatch {}  pid {}  up {}  rss {}",
        lw["version"].as_str().unwrap_or("?"),
        lw["pid"],
        lw["uptime_seconds"].as_f64().map_or("?".into(), |u| humantime::format_duration(secs(u.floor())).to_string()),
        size(lw["rss_bytes"].as_u64()),
    );
    let _ = writeln!(
        out,
        "snapshot #{} at {} (took {:.1} ms)",
        s["seq"],
        s["taken_at"]
            .as_f64()
            .map_or("?".into(), |t| humantime::format_rfc3339_seconds(UNIX_EPOCH + secs(t)).to_string()),
        s["duration"].as_f64().unwrap_or(0.0) * 1000.0,
    );
    target(&mut out, &s["target"]);
    oom(&mut out, &s["oom"]);
    logs(&mut out, s["logs"].as_array().map(Vec::as_slice).unwrap_or_default());
    structures(&mut out, doc["structures"].as_array().map(Vec::as_slice).unwrap_or_default());
    cleanup(&mut out, &doc["cleanup"]);
    out
}

fn target(out: &mut String, t: &Value) {
    let pids: Vec<String> = t["processes"].as_array().into_iter().flatten().map(|p| p["pid"].to_string()).collect();
    let _ = writeln!(
        out,
        "\ntarget {}: {} process(es) [{}]",
        t["name"].as_str().unwrap_or("?"),
        pids.len(),
        pids.join(" ")
    );
    let m = &t["memory"];
    let c = &t["cgroup"];
    let u = &t["utilization"];
    let mut line = format!("  {:<12} rss {}", "memory", size(m["rss"].as_u64()));
    if c.is_object() {
        let _ = write!(
            line,
            "  cgroup working set {} / limit {}",
            size(c["working_set"].as_u64()),
            limit(c["limit"].as_u64())
        );
    }
    if let (Some(used), Some(lim)) = (u["used"].as_u64(), u["limit"].as_u64()) {
        let _ = write!(
            line,
            "  used {} of {} ({}, {})",
            size(Some(used)),
            size(Some(lim)),
            pct(used, lim),
            u["basis"].as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(out, "{line}");
    let k = &t["sockets"];
    if k.is_object() {
        let held: u64 = k["held"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .flat_map(|s| s.as_object())
            .flat_map(|s| s.values())
            .filter_map(Value::as_u64)
            .sum();
        let _ = writeln!(
            out,
            "  {:<12} {held} held, {} stale; tracked {} / {}, {} untracked",
            "connections", k["stale"], k["tracked"], k["tracked_max"], k["untracked"]
        );
        for p in k["peers"].as_array().into_iter().flatten() {
            let (n, l) = (p["connections"].as_u64().unwrap_or(0), p["limit"].as_u64().unwrap_or(0));
            let _ = writeln!(out, "  {:<12} {} {n} / {l} ({})", "peer", p["name"].as_str().unwrap_or("?"), pct(n, l));
        }
    }
    let k = &t["tasks"];
    if k.is_object() {
        let descendants: u64 =
            k["descendants"].as_object().into_iter().flat_map(|d| d.values()).filter_map(Value::as_u64).sum();
        let _ = writeln!(
            out,
            "  {:<12} {} children, {descendants} descendants, {} stale; tracked {} / {}",
            "tasks", k["children"], k["stale"], k["tracked"], k["tracked_max"]
        );
    }
}

/// Target down, leakwatch's OOM kill count and the newest report's last sample (`GET /oom` has them all).
fn oom(out: &mut String, o: &Value) {
    if !o.is_object() {
        return;
    }
    let state = if o["up"].as_bool() == Some(false) { "DOWN (no process)" } else { "up" };
    let mut line = format!("  {:<12} target {state}, {} OOM kill(s)", "oom", o["kills_total"].as_u64().unwrap_or(0));
    if let Some(t) = o["last_kill_at"].as_f64() {
        let _ = write!(line, ", last at {}", humantime::format_rfc3339_seconds(UNIX_EPOCH + secs(t)));
    }
    if let Some(last) = o["reports"][0]["samples"].as_array().and_then(|s| s.last()) {
        let _ = write!(
            line,
            "; before it: {} of {}",
            size(last["cgroup_working_set_bytes"].as_u64()),
            limit(last["cgroup_limit_bytes"].as_u64())
        );
    }
    let _ = writeln!(out, "{line}");
}

fn logs(out: &mut String, logs: &[Value]) {
    if logs.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nlog sources");
    for l in logs {
        let (r, lim) = (&l["ring"], &l["limits"]);
        let (lines, max_lines) = (r["lines"].as_u64().unwrap_or(0), lim["max_lines"].as_u64().unwrap_or(0));
        let (bytes, max_bytes) = (r["bytes"].as_u64().unwrap_or(0), lim["max_bytes"].as_u64().unwrap_or(0));
        let _ = writeln!(
            out,
            "  {:<16} {:>8} lines / {:<8} ({:>6})  {:>10} / {:<10} ({:>6})  subscribers {} / {}",
            l["name"].as_str().unwrap_or("?"),
            lines,
            max_lines,
            pct(lines, max_lines),
            size(Some(bytes)),
            size(Some(max_bytes)),
            pct(bytes, max_bytes),
            r["subscribers"],
            lim["max_subscribers"],
        );
    }
}

fn structures(out: &mut String, structures: &[Value]) {
    let _ = writeln!(
        out,
        "\n  {:<32} {:>10} {:>10} {:>7} {:>10} {:>11}",
        "structure", "len", "max", "%", "capacity", "allocated"
    );
    for s in structures {
        let name = match s["source"].as_str() {
            Some(source) => format!("{} {source}", s["name"].as_str().unwrap_or("?")),
            None => s["name"].as_str().unwrap_or("?").to_owned(),
        };
        let len = s["len"].as_u64().unwrap_or(0);
        let max = s["max"].as_u64();
        let _ = writeln!(
            out,
            "  {name:<32} {len:>10} {:>10} {:>7} {:>10} {:>11}",
            max.map_or("-".into(), |m| m.to_string()),
            max.map_or("-".into(), |m| pct(len, m)),
            s["capacity"].as_u64().map_or("-".into(), |c| c.to_string()),
            s["bytes"].as_u64().map_or("-".into(), |b| size(Some(b))),
        );
    }
}

fn cleanup(out: &mut String, c: &Value) {
    if !c.is_object() {
        let _ = writeln!(out, "\ncleanup: not running");
        return;
    }
    let st = &c["settings"];
    let _ = writeln!(
        out,
        "\ncleanup (every {}, and when own rss > {})",
        st["interval"].as_f64().map_or("?".into(), |s| humantime::format_duration(secs(s)).to_string()),
        size(st["memory_threshold"].as_u64()),
    );
    let p = &c["performed"];
    let _ = writeln!(
        out,
        "  performed: interval {}, memory {}, admin {}; freed {} in all",
        p["interval"],
        p["memory"],
        p["admin"],
        size(c["freed_bytes_total"].as_u64())
    );
    let last = &c["last"];
    if last.is_object() {
        let _ = writeln!(
            out,
            "  last: {} at {}, freed {} in {} structure(s); rss {} -> {}",
            last["trigger"].as_str().unwrap_or("?"),
            last["at"]
                .as_f64()
                .map_or("?".into(), |t| humantime::format_rfc3339_seconds(UNIX_EPOCH + secs(t)).to_string()),
            size(last["freed_bytes"].as_u64()),
            last["structures"].as_array().map_or(0, Vec::len),
            size(last["rss_before_bytes"].as_u64()),
            size(last["rss_after_bytes"].as_u64()),
        );
    }
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

    #[test]
    fn the_summary_shows_memory_against_the_limit_sources_structures_and_the_last_cleanup() {
        let doc = serde_json::json!({
            "leakwatch": {"version": "0.1.0", "pid": 7, "uptime_seconds": 65.4, "rss_bytes": 12u64 << 20},
            "snapshot": {
                "seq": 3, "taken_at": 1.7e9, "duration": 0.0012,
                "target": {
                    "name": "app", "processes": [{"pid": 42}],
                    "memory": {"rss": 100u64 << 20},
                    "cgroup": {"working_set": 128u64 << 20, "limit": 512u64 << 20},
                    "utilization": {"basis": "cgroup_working_set", "used": 128u64 << 20, "limit": 512u64 << 20},
                    "sockets": {"held": {"tcp": {"established": 3}}, "stale": 0, "tracked": 3, "tracked_max": 65536, "untracked": 0, "peers": []},
                },
                "oom": {"up": true, "kills_total": 1, "last_kill_at": 1.7e9, "reports": [
                    {"samples": [{"cgroup_working_set_bytes": 500u64 << 20, "cgroup_limit_bytes": 512u64 << 20}]}
                ]},
                "logs": [{"name": "app", "ring": {"lines": 10, "bytes": 100, "subscribers": 0}, "limits": {"max_lines": 1000, "max_bytes": 4096, "max_subscribers": 64}}],
            },
            "structures": [{"name": "log_lines", "source": "app", "len": 10, "max": 1000, "capacity": 16, "bytes": 512}],
            "cleanup": {
                "settings": {"interval": 300.0, "memory_threshold": 256u64 << 20},
                "performed": {"interval": 0, "memory": 0, "admin": 1}, "freed_bytes_total": 2048,
                "last": {"trigger": "admin", "at": 1.7e9, "freed_bytes": 2048, "structures": [{}], "rss_before_bytes": 1, "rss_after_bytes": 1},
            },
        });
        let text = summary(&doc);
        for want in [
            "leakwatch 0.1.0  pid 7  up 1m 5s",
            "target app: 1 process(es) [42]",
            "used 128.0 MiB of 512.0 MiB (25.0 %, cgroup_working_set)",
            "3 held, 0 stale; tracked 3 / 65536",
            "target up, 1 OOM kill(s), last at 2023-11-14T22:13:20Z; before it: 500.0 MiB of 512.0 MiB",
            "app                    10 lines / 1000     ( 1.0 %)",
            "log_lines app",
            "cleanup (every 5m, and when own rss > 256.0 MiB)",
            "performed: interval 0, memory 0, admin 1; freed 2.0 KiB in all",
            "last: admin at 2023-11-14T22:13:20Z, freed 2.0 KiB in 1 structure(s)",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
    }
}
