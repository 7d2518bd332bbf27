//! The target's presence and leakwatch's own OOM kill count (`leakwatch_target_*`).

use super::family::Family;
use crate::metric_names as n;
use crate::snapshot::oom::Detection;
use crate::snapshot::Snapshot;

/// `leakwatch_target_up`, `leakwatch_target_oom_kills_total{detection}`,
/// `leakwatch_target_last_oom_kill_timestamp_seconds`, `leakwatch_target_oom_reports` and
/// `leakwatch_target_oom_watch_events_dropped_total`.
pub(crate) fn oom(out: &mut Vec<Family>, s: &Snapshot) {
    if s.seq == 0 {
        return;
    }
    let o = &s.oom;
    let target = [("target", o.target.as_str())];
    let mut f = Family::gauge(n::TARGET_UP, "1 while the configured target has a process.");
    f.add(&target, if o.up { 1.0 } else { 0.0 });
    out.push(f);
    let mut f = Family::counter(n::TARGET_OOM_KILLS_TOTAL, "OOM kills of the target.");
    for d in Detection::ALL {
        f.add(&[("target", &o.target), ("detection", d.as_str())], o.kills(d) as f64);
    }
    out.push(f);
    let mut f =
        Family::gauge(n::TARGET_LAST_OOM_KILL_TIMESTAMP_SECONDS, "Unix time leakwatch saw the target's last OOM kill.");
    f.add_opt(&target, o.last_kill_at);
    out.push(f);
    let mut f = Family::gauge(n::TARGET_OOM_REPORTS, "OOM reports held.").detail();
    f.add(&target, o.reports.len() as f64);
    out.push(f);
    let mut f = Family::counter(n::TARGET_OOM_WATCH_EVENTS_DROPPED_TOTAL, "Exit watcher events dropped.").detail();
    f.add(&target, o.watch_events_dropped as f64);
    out.push(f);
}
