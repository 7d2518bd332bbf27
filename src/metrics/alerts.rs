//! Alert engine families: every alert instance's state, the leak detector's figures per
//! resource, and the sizes and caps of the engine's bounded histories.

use super::family::Family;
use crate::alert::engine::State;
use crate::alert::AlertState;

/// Adds the `leakwatch_alert_*` and `leakwatch_trend_*` families.
pub fn alerts(out: &mut Vec<Family>, state: &AlertState) {
    if state.seq == 0 {
        return;
    }
    let mut active = Family::gauge(
        "leakwatch_alert_active",
        "1 while the alert is firing; present only then, as Prometheus's ALERTS (every alert is on /alerts).",
    );
    let mut pending = Family::gauge(
        "leakwatch_alert_pending",
        "1 while the alert's condition holds but its `for` has not passed yet; present only then.",
    );
    for a in &state.alerts {
        let family = match a.state {
            State::Firing => &mut active,
            State::Pending => &mut pending,
            _ => continue,
        };
        let mut labels: Vec<(&str, &str)> = vec![("alert", &a.alert), ("severity", a.severity.as_str())];
        labels.extend(a.labels.iter().map(|(k, v)| (*k, v.as_str())));
        family.add(&labels, 1.0);
    }
    out.extend([active, pending]);
    let mut f = Family::gauge("leakwatch_alert_history_transitions", "Alert state transitions held in the history.");
    f.add(&[], state.history.len() as f64);
    out.push(f);
    let mut f = Family::gauge(
        "leakwatch_alert_history_max_transitions",
        "The transition history's cap (alerts.history.max_transitions).",
    );
    f.add(&[], state.history_max as f64);
    out.push(f);

    let mut samples =
        Family::gauge("leakwatch_trend_history_samples", "Samples in the leak detector's history of the resource.");
    let mut max = Family::gauge(
        "leakwatch_trend_history_max_samples",
        "The cap of the leak detector's history of the resource (alerts.prediction.max_samples).",
    );
    let mut fill = Family::gauge(
        "leakwatch_trend_window_fill_ratio",
        "Share of alerts.prediction.retention the resource's history covers; judged from min_fill on.",
    );
    let mut growing = Family::gauge(
        "leakwatch_trend_growing",
        "1 when the leak detector judges the resource to grow significantly, else 0 (absent before the window is full enough).",
    );
    let mut ttl = Family::gauge(
        "leakwatch_trend_time_to_limit_seconds",
        "Seconds until the resource's peaks (its upper envelope) reach the limit at the detected growth (absent unless growing).",
    );
    let mut memory_slope = Family::gauge(
        "leakwatch_trend_memory_slope_bytes_per_second",
        "Robust (Theil-Sen, over 5-minute blocks) growth rate of the target's memory on the utilization basis over the history window.",
    );
    let mut fds_slope = Family::gauge(
        "leakwatch_trend_fds_slope_per_second",
        "Robust (Theil-Sen) growth rate of the target's open file descriptors over the history window.",
    );
    let mut pids_slope = Family::gauge(
        "leakwatch_trend_pids_slope_per_second",
        "Robust (Theil-Sen) growth rate of the tasks in the target's cgroup over the history window.",
    );
    for t in &state.trends {
        let mut labels: Vec<(&str, &str)> = vec![("resource", t.resource)];
        labels.extend(t.labels.iter().map(|(k, v)| (*k, v.as_str())));
        samples.add(&labels, t.samples as f64);
        max.add(&labels, t.max_samples as f64);
        fill.add(&labels, t.trend.window_fill);
        if t.trend.ready {
            growing.add(&labels, f64::from(u8::from(t.trend.growing)));
        }
        ttl.add_opt(&labels, t.trend.seconds_to_limit);
        let own: Vec<(&str, &str)> = t.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let slope = match t.resource {
            "memory" => &mut memory_slope,
            "fds" => &mut fds_slope,
            _ => &mut pids_slope,
        };
        slope.add_opt(&own, t.trend.slope_per_second);
    }
    out.extend([samples, max, fill, growing, ttl, memory_slope, fds_slope, pids_slope]);
}
