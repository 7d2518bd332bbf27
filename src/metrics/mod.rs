//! `/metrics`: renders the latest [`Snapshot`] into the Prometheus text format. The scrape path
//! reads memory only; it never touches `/proc`.

mod alerts;
mod conns;
pub(crate) mod family;
mod logs;
mod oom;
mod reload;
pub mod structures;
mod tasks;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use crate::alert::AlertState;
use crate::info::StaticInfo;
use crate::parse::pressure::Pressure;
use crate::reload::ReloadStatus;
use crate::snapshot::{ProcessMemory, Snapshot};
use family::{gauge_rows, Family};

/// Renders the exposition text for one snapshot, without alert state.
pub fn render(snapshot: &Snapshot, info: &StaticInfo) -> String {
    render_with_alerts(snapshot, None, info)
}

/// Renders the exposition text for one snapshot and the alert state evaluated from it.
pub fn render_with_alerts(snapshot: &Snapshot, alert_state: Option<&AlertState>, info: &StaticInfo) -> String {
    render_scrape(snapshot, alert_state, None, info)
}

/// Renders what a scrape shows: the snapshot, the alert state evaluated from it and the reload
/// status.
pub fn render_scrape(
    snapshot: &Snapshot,
    alert_state: Option<&AlertState>,
    reload: Option<&ReloadStatus>,
    info: &StaticInfo,
) -> String {
    let families = families(snapshot, alert_state, reload, info);
    let mut out = Vec::with_capacity(16 * 1024);
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        // Only possible with a malformed family, which would be a bug in this module.
        tracing::error!("encoding /metrics failed: {e}");
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn families(
    s: &Snapshot,
    alert_state: Option<&AlertState>,
    reload_status: Option<&ReloadStatus>,
    info: &StaticInfo,
) -> Vec<MetricFamily> {
    let mut out: Vec<Family> = Vec::with_capacity(64);
    meta(&mut out, s, info);
    if let Some(r) = reload_status {
        reload::reload(&mut out, r);
    }
    host(&mut out, s);
    target(&mut out, s);
    oom::oom(&mut out, s);
    cgroup(&mut out, s);
    pids(&mut out, s);
    if s.seq > 0 {
        let t = &s.target;
        if let Some(sockets) = &t.sockets {
            conns::conns(&mut out, &t.name, sockets);
        }
        if let Some(fds) = &t.fds {
            tasks::fds(&mut out, &t.name, fds);
        }
        if let Some(task) = &t.tasks {
            tasks::tasks(&mut out, &t.name, task);
        }
    }
    logs::logs(&mut out, &s.logs);
    if let Some(state) = alert_state {
        alerts::alerts(&mut out, state);
    }
    if let Some(own) = &s.own_process {
        own_process(&mut out, own);
    }
    out.into_iter().filter(|f| !f.is_empty()).map(Family::finish).collect()
}

fn meta(out: &mut Vec<Family>, s: &Snapshot, info: &StaticInfo) {
    let mut f = Family::gauge("leakwatch_build_info", "leakwatch build information.");
    f.add(&[("version", &info.version)], 1.0);
    out.push(f);
    let mut f = Family::gauge("leakwatch_kubernetes_info", "Pod context from the Downward API environment.");
    if !info.kubernetes.is_empty() {
        let labels: Vec<(&str, &str)> = info.kubernetes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.add(&labels, 1.0);
    }
    out.push(f);
    if s.seq == 0 {
        return;
    }
    let mut f = Family::counter("leakwatch_samples_total", "Sampling passes completed.");
    f.add(&[], s.seq as f64);
    out.push(f);
    let mut f = Family::gauge("leakwatch_sample_duration_seconds", "Duration of the last sampling pass.");
    f.add(&[], s.duration.as_secs_f64());
    out.push(f);
    let mut f = Family::gauge("leakwatch_last_sample_timestamp_seconds", "Start of the last pass, Unix seconds.");
    f.add(&[], crate::seconds::unix(s.taken_at));
    out.push(f);
    let mut f = Family::gauge("leakwatch_sample_age_seconds", "Age of each expensive figure group.");
    for (figures, age) in s.target.freshness.groups() {
        f.add_opt(&[("figures", figures)], age.map(|a| a.as_secs_f64()));
    }
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_sample_errors_total",
        "Files that could not be read or parsed while sampling, by file kind and reason.",
    );
    for (source, reason, n) in s.errors.iter() {
        f.add(&[("source", source.as_str()), ("reason", reason.as_str())], n as f64);
    }
    out.push(f);
}

fn host(out: &mut Vec<Family>, s: &Snapshot) {
    if let Some(m) = &s.host.memory {
        let rows: [(&str, &str, Option<u64>); 7] = [
            ("leakwatch_host_memory_total_bytes", "Host MemTotal.", Some(m.total)),
            ("leakwatch_host_memory_available_bytes", "Host MemAvailable.", m.available),
            ("leakwatch_host_memory_free_bytes", "Host MemFree.", m.free),
            ("leakwatch_host_memory_buffers_bytes", "Host Buffers.", m.buffers),
            ("leakwatch_host_memory_cached_bytes", "Host Cached.", m.cached),
            ("leakwatch_host_memory_swap_total_bytes", "Host SwapTotal.", m.swap_total),
            ("leakwatch_host_memory_swap_free_bytes", "Host SwapFree.", m.swap_free),
        ];
        gauge_rows(out, &[], rows);
    }
    if let Some(p) = &s.host.pressure {
        pressure(out, "leakwatch_host_memory_pressure", "host", p, &[]);
    }
}

/// PSI as node_exporter names it: `some` = waiting, `full` = stalled; averages as ratios.
fn pressure(out: &mut Vec<Family>, prefix: &str, scope: &str, p: &Pressure, labels: &[(&str, &str)]) {
    let mut waiting = Family::counter(
        &format!("{prefix}_waiting_seconds_total"),
        &format!("Time some {scope} task waited for memory."),
    );
    waiting.add_opt(labels, p.some.map(|l| l.total_us as f64 / 1e6));
    let mut stalled = Family::counter(
        &format!("{prefix}_stalled_seconds_total"),
        &format!("Time all {scope} tasks stalled on memory."),
    );
    stalled.add_opt(labels, p.full.map(|l| l.total_us as f64 / 1e6));
    let mut ratio =
        Family::gauge(&format!("{prefix}_ratio"), &format!("Share of time {scope} tasks stalled on memory."));
    for (kind, line) in [("some", p.some), ("full", p.full)] {
        let Some(line) = line else { continue };
        for (window, avg) in [("10s", line.avg10), ("60s", line.avg60), ("300s", line.avg300)] {
            let mut l = labels.to_vec();
            l.extend([("kind", kind), ("window", window)]);
            ratio.add(&l, avg / 100.0);
        }
    }
    out.extend([waiting, stalled, ratio]);
}

fn target(out: &mut Vec<Family>, s: &Snapshot) {
    let t = &s.target;
    let target = [("target", t.name.as_str())];
    if s.seq == 0 {
        return;
    }
    let mut f = Family::gauge("leakwatch_target_processes", "Target processes sampled.");
    f.add(&target, t.processes.len() as f64);
    out.push(f);
    let mut f = Family::gauge("leakwatch_target_processes_matched", "Processes that matched the target selector.");
    f.add(&target, t.matched as f64);
    out.push(f);
    let mut f = Family::counter("leakwatch_target_changes_total", "Times the target's set of processes changed.");
    f.add(&target, t.changes as f64);
    out.push(f);
    let mut f = Family::gauge("leakwatch_target_process_info", "One series per sampled target process.");
    for p in &t.processes {
        f.add(&[("target", &t.name), ("pid", &p.pid.to_string()), ("comm", &p.comm)], 1.0);
    }
    out.push(f);
    if let Some(m) = &t.memory {
        process_memory(out, "leakwatch_process", m, &target, "target group");
    }
    let mut f = Family::gauge("leakwatch_pss_read_duration_seconds", "Last smaps_rollup read time.");
    f.add_opt(&target, t.pss.last_read.map(|d| d.as_secs_f64()));
    out.push(f);
    let mut f = Family::counter("leakwatch_pss_read_seconds_total", "Total time spent reading smaps_rollup.");
    f.add(&target, t.pss.read_seconds_total);
    out.push(f);
    let mut f = Family::counter("leakwatch_pss_reads_skipped_total", "smaps_rollup reads skipped.");
    f.add(&[("target", &t.name), ("reason", "rss_above_max")], t.pss.skipped_rss as f64);
    f.add(&[("target", &t.name), ("reason", "over_time_budget")], t.pss.skipped_budget as f64);
    out.push(f);
    if let Some(u) = &t.utilization {
        let labels = [("target", t.name.as_str()), ("basis", u.basis.as_str())];
        let mut f =
            Family::gauge("leakwatch_memory_utilization_ratio", "Memory used / limit, as the OOM killer sees it.");
        f.add(&labels, u.ratio());
        out.push(f);
        let mut f = Family::gauge("leakwatch_memory_used_bytes", "Used side of the utilization ratio.");
        f.add(&labels, u.used as f64);
        out.push(f);
        let mut f = Family::gauge("leakwatch_memory_limit_bytes", "Limit side of the utilization ratio.");
        f.add(&labels, u.limit as f64);
        out.push(f);
    }
}

fn process_memory(out: &mut Vec<Family>, prefix: &str, m: &ProcessMemory, labels: &[(&str, &str)], whom: &str) {
    let gauges: [(&str, &str, Option<f64>); 11] = [
        ("resident_memory_bytes", "Resident set size", m.rss.map(|v| v as f64)),
        ("resident_memory_anon_bytes", "Resident anonymous memory", m.rss_anon.map(|v| v as f64)),
        ("resident_memory_file_bytes", "Resident file mappings", m.rss_file.map(|v| v as f64)),
        ("resident_memory_shmem_bytes", "Resident shared memory", m.rss_shmem.map(|v| v as f64)),
        ("pss_bytes", "Proportional set size", m.pss.map(|v| v as f64)),
        ("swap_bytes", "Swapped-out memory", m.swap.map(|v| v as f64)),
        ("resident_memory_max_bytes", "Peak resident set size", m.rss_peak.map(|v| v as f64)),
        ("virtual_memory_bytes", "Virtual memory size", m.virtual_size.map(|v| v as f64)),
        ("threads", "Threads", m.threads.map(|v| v as f64)),
        ("open_fds", "Open file descriptors", m.open_fds.map(|v| v as f64)),
        ("max_fds", "Soft fd limit", m.max_fds.map(|v| v as f64)),
    ];
    for (suffix, help, value) in gauges {
        let mut f = Family::gauge(&format!("{prefix}_{suffix}"), &format!("{help} of the {whom}."));
        f.add_opt(labels, value);
        out.push(f);
    }
    let mut f =
        Family::counter(&format!("{prefix}_cpu_seconds_total"), &format!("User and system CPU time of the {whom}."));
    f.add_opt(labels, m.cpu_seconds);
    out.push(f);
    let mut f = Family::gauge(&format!("{prefix}_start_time_seconds"), &format!("Start time of the {whom}."));
    f.add_opt(labels, m.start_time_seconds);
    out.push(f);
}

fn cgroup(out: &mut Vec<Family>, s: &Snapshot) {
    let Some(c) = &s.target.cgroup else { return };
    let name = s.target.name.as_str();
    let target = [("target", name)];
    let mut f = Family::gauge("leakwatch_cgroup_info", "The target's memory cgroup.");
    f.add(&[("target", name), ("version", c.version.as_str()), ("via", c.via.as_str()), ("path", &c.path)], 1.0);
    out.push(f);
    let gauges: [(&str, &str, Option<u64>); 8] = [
        ("usage_bytes", "Memory usage", c.usage),
        ("limit_bytes", "Memory limit", c.limit),
        ("working_set_bytes", "Working set", c.working_set),
        ("rss_bytes", "Anonymous memory", c.rss),
        ("cache_bytes", "Page cache", c.cache),
        ("shmem_bytes", "Shared memory", c.shmem),
        ("inactive_file_bytes", "Inactive page cache", c.inactive_file),
        ("swap_bytes", "Swap in use", c.swap),
    ];
    for (suffix, help, value) in gauges {
        let mut f =
            Family::gauge(&format!("leakwatch_cgroup_memory_{suffix}"), &format!("{help} of the target's cgroup."));
        f.add_opt(&target, value);
        out.push(f);
    }
    let mut f = Family::counter("leakwatch_cgroup_memory_oom_kills_total", "OOM kills in the target's cgroup.");
    f.add_opt(&target, c.oom_kills);
    out.push(f);
    let mut f =
        Family::counter("leakwatch_cgroup_memory_limit_hits_total", "Memory limit hits of the target's cgroup.");
    f.add_opt(&target, c.limit_hits);
    out.push(f);
    if let Some(p) = &c.pressure {
        pressure(out, "leakwatch_cgroup_memory_pressure", "cgroup", p, &target);
    }
}

fn pids(out: &mut Vec<Family>, s: &Snapshot) {
    let Some(p) = &s.target.pids else { return };
    let target = [("target", s.target.name.as_str())];
    let mut f = Family::gauge(
        "leakwatch_cgroup_pids",
        "Tasks (processes and threads) in the target's cgroup (pids.current of the pids controller).",
    );
    f.add_opt(&target, p.current);
    out.push(f);
    let mut f = Family::gauge("leakwatch_cgroup_pids_max", "pids.max of the target's cgroup; absent when unlimited.");
    f.add_opt(&target, p.max);
    out.push(f);
}

/// leakwatch's own figures under the standard client-library names, taken from the snapshot.
fn own_process(out: &mut Vec<Family>, m: &ProcessMemory) {
    let rows: [(&str, &str, Option<f64>); 6] = [
        ("process_resident_memory_bytes", "Resident memory size in bytes.", m.rss.map(|v| v as f64)),
        ("process_virtual_memory_bytes", "Virtual memory size in bytes.", m.virtual_size.map(|v| v as f64)),
        ("process_open_fds", "Number of open file descriptors.", m.open_fds.map(|v| v as f64)),
        ("process_max_fds", "Maximum number of open file descriptors.", m.max_fds.map(|v| v as f64)),
        ("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", m.start_time_seconds),
        ("process_threads", "Number of OS threads in the process.", m.threads.map(|v| v as f64)),
    ];
    gauge_rows(out, &[], rows);
    let mut f = Family::counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
    f.add_opt(&[], m.cpu_seconds);
    out.push(f);
}
