//! Alert engine families: every alert instance's state, the leak detector's figures per
//! resource, and the sizes and caps of the engine's bounded histories.

use super::family::Family;
use crate::alert::engine::State;
use crate::alert::AlertState;
use crate::metric_names as n;

/// Adds the `leakwatch_alert_*` and `leakwatch_trend_*` families.
pub(crate) fn alerts(out: &mut Vec<Family>, state: &AlertState) {
    if state.seq == 0 {
        return;
    }
    let mut active = Family::gauge(
        n::ALERT_ACTIVE,
        "1 while the alert is firing; present only then, as Prometheus's ALERTS (every alert is on /alerts).",
    );
    let mut pending = Family::gauge(
        n::ALERT_PENDING,
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
    let mut f = Family::gauge(n::ALERT_HISTORY_TRANSITIONS, "Alert state transitions held in the history.").detail();
    f.add(&[], state.history.len() as f64);
    out.push(f);
    let mut f = Family::gauge(n::ALERT_HISTORY_MAX_TRANSITIONS, "The transition history's cap.").detail();
    f.add(&[], state.history_max as f64);
    out.push(f);

    let mut samples = Family::gauge(n::TREND_HISTORY_SAMPLES, "Samples in the detector's history.").detail();
    let mut max = Family::gauge(n::TREND_HISTORY_MAX_SAMPLES, "Cap on the detector's history.").detail();
    let mut fill = Family::gauge(n::TREND_WINDOW_FILL_RATIO, "Share of the retention the history covers.").detail();
    let mut growing = Family::gauge(
        n::TREND_GROWING,
        "1 when the leak detector judges the resource to grow significantly, else 0 (absent before the window is full enough).",
    );
    let mut ttl = Family::gauge(
        n::TREND_TIME_TO_LIMIT_SECONDS,
        "Seconds until the resource's peaks (its upper envelope) reach the limit at the detected growth (absent unless growing).",
    );
    let mut memory_slope = Family::gauge(
        n::TREND_MEMORY_SLOPE_BYTES_PER_SECOND,
        "Robust (Theil-Sen, over 5-minute blocks) growth rate of the target's memory on the utilization basis over the history window.",
    );
    let mut fds_slope = Family::gauge(
        n::TREND_FDS_SLOPE_PER_SECOND,
        "Robust (Theil-Sen) growth rate of the target's open file descriptors over the history window.",
    );
    let mut pids_slope = Family::gauge(
        n::TREND_PIDS_SLOPE_PER_SECOND,
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
