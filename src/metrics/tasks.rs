//! Descriptor and task families (`leakwatch_fd_*`, `leakwatch_task_*`), rendered from
//! `snapshot.target.fds` and `snapshot.target.tasks`.

use super::family::{gauge_rows, Family};
use crate::snapshot::{FdSample, TaskSample};

/// Adds the descriptor families of the target `target`.
pub fn fds(out: &mut Vec<Family>, target: &str, s: &FdSample) {
    let mut f = Family::gauge("leakwatch_fd_open", "Open file descriptors of the target group by kind.");
    for (kind, n) in &s.by_kind {
        f.add(&[("target", target), ("kind", kind.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge("leakwatch_fd_utilization_ratio", "Open fds / fd limit of the worst target process.");
    f.add_opt(&[("target", target)], s.utilization);
    out.push(f);
}

/// Adds the task families of the target `target`.
pub fn tasks(out: &mut Vec<Family>, target: &str, s: &TaskSample) {
    let t = [("target", target)];
    let mut f = Family::gauge(
        "leakwatch_task_descendants",
        "Descendant processes of the target group (children, grandchildren, ...) by state.",
    );
    for (state, n) in &s.descendants {
        f.add(&[("target", target), ("state", state.as_str())], *n as f64);
    }
    out.push(f);
    let gauges: [(&str, &str, f64); 6] = [
        ("leakwatch_task_children", "Direct child processes of the target group.", s.children as f64),
        ("leakwatch_task_stale_descendants", "Descendants older than stale_after.", s.stale as f64),
        ("leakwatch_task_stale_after_seconds", "Stale age of a descendant.", s.stale_after.as_secs_f64()),
        ("leakwatch_task_tracked", "Descendants in the first-seen map.", s.tracked as f64),
        ("leakwatch_task_tracked_max", "The first-seen map's cap.", s.tracked_max as f64),
        ("leakwatch_task_untracked", "Descendants left out of the full first-seen map.", s.untracked as f64),
    ];
    gauge_rows(out, &t, gauges.map(|(name, help, value)| (name, help, Some(value))));
    let mut f = Family::counter("leakwatch_task_context_switches_total", "Context switches of the target group.");
    f.add_opt(&[("target", target), ("kind", "voluntary")], s.voluntary_switches);
    f.add_opt(&[("target", target), ("kind", "involuntary")], s.involuntary_switches);
    out.push(f);
}
