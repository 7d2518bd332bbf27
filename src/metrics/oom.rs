//! The target's presence and leakwatch's own OOM kill count (`leakwatch_target_*`).

use super::family::Family;
use crate::oom::ledger::Detection;
use crate::snapshot::Snapshot;

/// `leakwatch_target_up`, `leakwatch_target_oom_kills_total{detection}`,
/// `leakwatch_target_last_oom_kill_timestamp_seconds`, `leakwatch_target_oom_reports` and
/// `leakwatch_target_oom_watch_events_dropped_total`.
pub fn oom(out: &mut Vec<Family>, s: &Snapshot) {
    if s.seq == 0 {
        return;
    }
    let o = &s.oom;
    let target = [("target", o.target.as_str())];
    let mut f = Family::gauge(
        "leakwatch_target_up",
        "1 while the configured target has a process, 0 while it is not found (exited, OOM-killed, restarting).",
    );
    f.add(&target, if o.up { 1.0 } else { 0.0 });
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_target_oom_kills_total",
        "OOM kills of the target counted by leakwatch for its lifetime, across restarts and cgroup changes: detection=cgroup from the cgroup's counter, inferred from the host's oom_kill when the cgroup was already gone.",
    );
    for d in Detection::ALL {
        f.add(&[("target", &o.target), ("detection", d.as_str())], o.kills(d) as f64);
    }
    out.push(f);
    let mut f = Family::gauge(
        "leakwatch_target_last_oom_kill_timestamp_seconds",
        "Unix time leakwatch saw the target's last OOM kill.",
    );
    f.add_opt(&target, o.last_kill_at);
    out.push(f);
    let mut f = Family::gauge("leakwatch_target_oom_reports", "OOM reports held (GET /oom), newest kept.");
    f.add(&target, o.reports.len() as f64);
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_target_oom_watch_events_dropped_total",
        "Exit watcher events dropped because its bounded queue was full (no sampling pass took them in time).",
    );
    f.add(&target, o.watch_events_dropped as f64);
    out.push(f);
}
