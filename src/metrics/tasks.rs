//! Descriptor and task families (`leakwatch_fd_*`, `leakwatch_task_*`), rendered from
//! `snapshot.target.fds` and `snapshot.target.tasks`.

use super::family::{gauge_rows, Family};
use crate::metric_names as n;
use crate::snapshot::{FdSample, TaskSample};

/// Adds the descriptor families of the target `target`.
pub(crate) fn fds(out: &mut Vec<Family>, target: &str, s: &FdSample) {
    let mut f = Family::gauge(n::FD_OPEN, "Open fds of the target group by kind.");
    for (kind, n) in &s.by_kind {
        f.add(&[("target", target), ("kind", kind.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge(n::FD_UTILIZATION_RATIO, "Open fds / limit of the worst process.");
    f.add_opt(&[("target", target)], s.utilization);
    out.push(f);
}

/// Adds the task families of the target `target`.
pub(crate) fn tasks(out: &mut Vec<Family>, target: &str, s: &TaskSample) {
    let t = [("target", target)];
    let mut f = Family::gauge(
        n::TASK_DESCENDANTS,
        "Descendant processes of the target group (children, grandchildren, ...) by state.",
    );
    for (state, n) in &s.descendants {
        f.add(&[("target", target), ("state", state.as_str())], *n as f64);
    }
    out.push(f);
    let gauges: [(&str, &str, Option<f64>); 2] = [
        (n::TASK_CHILDREN, "Children of the target group.", Some(s.children as f64)),
        (n::TASK_STALE_DESCENDANTS, "Descendants older than stale_after.", Some(s.stale as f64)),
    ];
    gauge_rows(out, &t, gauges);
    // The first-seen map's figures (on /status): on a detail scrape.
    let detail: [(&str, &str, f64); 4] = [
        (n::TASK_STALE_AFTER_SECONDS, "Stale age of a descendant.", s.stale_after.as_secs_f64()),
        (n::TASK_TRACKED, "Descendants in the first-seen map.", s.tracked as f64),
        (n::TASK_TRACKED_MAX, "The first-seen map's cap.", s.tracked_max as f64),
        (n::TASK_UNTRACKED, "Descendants left out of the full first-seen map.", s.untracked as f64),
    ];
    for (name, help, value) in detail {
        let mut f = Family::gauge(name, help).detail();
        f.add(&t, value);
        out.push(f);
    }
    let mut f = Family::counter(n::TASK_CONTEXT_SWITCHES_TOTAL, "Context switches of the target group.");
    f.add_opt(&[("target", target), ("kind", "voluntary")], s.voluntary_switches);
    f.add_opt(&[("target", target), ("kind", "involuntary")], s.involuntary_switches);
    out.push(f);
}
