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
use crate::parse::pressure::Pressure;
use crate::reload::ReloadStatus;
use crate::snapshot::{ProcessMemory, Snapshot};
use family::{gauge_rows, Family};

/// Facts fixed at start that appear on `_info` metrics.
#[derive(Debug, Clone, Default)]
pub struct StaticInfo {
    /// leakwatch's version.
    pub version: String,
    /// Kubernetes pod context from Downward API environment variables, as (label, value).
    pub kubernetes: Vec<(&'static str, String)>,
}

impl StaticInfo {
    /// Reads the Downward API variables `POD_NAMESPACE`, `POD_NAME`, `CONTAINER_NAME`, `NODE_NAME`
    /// through `env`, so tests can pass a map.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let kubernetes = [
            ("namespace", "POD_NAMESPACE"),
            ("pod", "POD_NAME"),
            ("container", "CONTAINER_NAME"),
            ("node", "NODE_NAME"),
        ]
        .into_iter()
        .filter_map(|(label, var)| env(var).filter(|v| !v.is_empty()).map(|v| (label, v)))
        .collect();
        Self { version: env!("CARGO_PKG_VERSION").to_owned(), kubernetes }
    }
}

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
    let mut f = Family::gauge("leakwatch_build_info", "leakwatch build information; always 1.");
    f.add(&[("version", &info.version)], 1.0);
    out.push(f);
    let mut f = Family::gauge(
        "leakwatch_kubernetes_info",
        "Pod context from the Downward API environment (POD_NAMESPACE, POD_NAME, CONTAINER_NAME, NODE_NAME); always 1.",
    );
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
    let mut f =
        Family::gauge("leakwatch_last_sample_timestamp_seconds", "Unix time when the last sampling pass started.");
    f.add(&[], s.taken_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0));
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
            ("leakwatch_host_memory_cached_bytes", "Host Cached (page cache).", m.cached),
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
        &format!("Time at least one {scope} task waited for memory (PSI some total)."),
    );
    waiting.add_opt(labels, p.some.map(|l| l.total_us as f64 / 1e6));
    let mut stalled = Family::counter(
        &format!("{prefix}_stalled_seconds_total"),
        &format!("Time all non-idle {scope} tasks stalled on memory (PSI full total)."),
    );
    stalled.add_opt(labels, p.full.map(|l| l.total_us as f64 / 1e6));
    let mut ratio = Family::gauge(
        &format!("{prefix}_ratio"),
        &format!("Share of time {scope} tasks stalled on memory over the window (PSI avg10/60/300 / 100)."),
    );
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
    let mut f = Family::gauge("leakwatch_target_processes", "Processes of the target group sampled in the last pass.");
    f.add(&target, t.processes.len() as f64);
    out.push(f);
    let mut f = Family::gauge(
        "leakwatch_target_processes_matched",
        "Processes that matched the target selector (above target.max_processes only the lowest pids are sampled).",
    );
    f.add(&target, t.matched as f64);
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_target_changes_total",
        "Times the target's set of processes changed (restarts, new workers, pid reuse).",
    );
    f.add(&target, t.changes as f64);
    out.push(f);
    let mut f = Family::gauge("leakwatch_target_process_info", "One series per sampled target process; always 1.");
    for p in &t.processes {
        f.add(&[("target", &t.name), ("pid", &p.pid.to_string()), ("comm", &p.comm)], 1.0);
    }
    out.push(f);
    if let Some(m) = &t.memory {
        process_memory(out, "leakwatch_process", m, &target, "target group");
    }
    let mut f =
        Family::gauge("leakwatch_pss_read_duration_seconds", "Time spent reading smaps_rollup in the last pass.");
    f.add_opt(&target, t.pss.last_read.map(|d| d.as_secs_f64()));
    out.push(f);
    let mut f = Family::counter("leakwatch_pss_read_seconds_total", "Total time spent reading smaps_rollup.");
    f.add(&target, t.pss.read_seconds_total);
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_pss_reads_skipped_total",
        "smaps_rollup reads skipped: rss_above_max (pss.max_rss) or over_time_budget (back-off after a slow read).",
    );
    f.add(&[("target", &t.name), ("reason", "rss_above_max")], t.pss.skipped_rss as f64);
    f.add(&[("target", &t.name), ("reason", "over_time_budget")], t.pss.skipped_budget as f64);
    out.push(f);
    if let Some(u) = &t.utilization {
        let labels = [("target", t.name.as_str()), ("basis", u.basis.as_str())];
        let mut f = Family::gauge(
            "leakwatch_memory_utilization_ratio",
            "Memory used / limit on the basis the OOM killer acts on: cgroup_working_set when a cgroup limit is set, else host_rss.",
        );
        f.add(&labels, u.ratio());
        out.push(f);
        let mut f =
            Family::gauge("leakwatch_memory_used_bytes", "The used side of leakwatch_memory_utilization_ratio.");
        f.add(&labels, u.used as f64);
        out.push(f);
        let mut f =
            Family::gauge("leakwatch_memory_limit_bytes", "The limit side of leakwatch_memory_utilization_ratio.");
        f.add(&labels, u.limit as f64);
        out.push(f);
    }
}

fn process_memory(out: &mut Vec<Family>, prefix: &str, m: &ProcessMemory, labels: &[(&str, &str)], whom: &str) {
    let gauges: [(&str, &str, Option<f64>); 11] = [
        ("resident_memory_bytes", "Resident set size (VmRSS)", m.rss.map(|v| v as f64)),
        ("resident_memory_anon_bytes", "Resident anonymous memory (RssAnon)", m.rss_anon.map(|v| v as f64)),
        ("resident_memory_file_bytes", "Resident file mappings (RssFile)", m.rss_file.map(|v| v as f64)),
        ("resident_memory_shmem_bytes", "Resident shared memory (RssShmem)", m.rss_shmem.map(|v| v as f64)),
        ("pss_bytes", "Proportional set size (Pss from smaps_rollup)", m.pss.map(|v| v as f64)),
        ("swap_bytes", "Swapped-out memory (VmSwap)", m.swap.map(|v| v as f64)),
        ("resident_memory_max_bytes", "Peak resident set size (VmHWM)", m.rss_peak.map(|v| v as f64)),
        ("virtual_memory_bytes", "Virtual memory size (VmSize)", m.virtual_size.map(|v| v as f64)),
        ("threads", "Threads", m.threads.map(|v| v as f64)),
        ("open_fds", "Open file descriptors", m.open_fds.map(|v| v as f64)),
        ("max_fds", "Soft limit on open file descriptors", m.max_fds.map(|v| v as f64)),
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
    let mut f = Family::gauge(
        &format!("{prefix}_start_time_seconds"),
        &format!("Start time of the {whom} (the oldest process of a group), Unix seconds."),
    );
    f.add_opt(labels, m.start_time_seconds);
    out.push(f);
}

fn cgroup(out: &mut Vec<Family>, s: &Snapshot) {
    let Some(c) = &s.target.cgroup else { return };
    let name = s.target.name.as_str();
    let target = [("target", name)];
    let mut f = Family::gauge(
        "leakwatch_cgroup_info",
        "The target's memory cgroup: version, how it was found (direct or proc_root) and its path; always 1.",
    );
    f.add(&[("target", name), ("version", c.version.as_str()), ("via", c.via.as_str()), ("path", &c.path)], 1.0);
    out.push(f);
    let gauges: [(&str, &str, Option<u64>); 8] = [
        ("usage_bytes", "Memory usage (memory.current / memory.usage_in_bytes)", c.usage),
        ("limit_bytes", "Memory limit (memory.max / memory.limit_in_bytes); absent when unlimited", c.limit),
        ("working_set_bytes", "Working set: usage - inactive_file, as the kubelet computes it", c.working_set),
        ("rss_bytes", "Anonymous memory (v2 anon, v1 total_rss)", c.rss),
        ("cache_bytes", "Page cache (v2 file, v1 total_cache)", c.cache),
        ("shmem_bytes", "Shared memory (v2 shmem, v1 total_shmem)", c.shmem),
        ("inactive_file_bytes", "Inactive page cache (v2 inactive_file, v1 total_inactive_file)", c.inactive_file),
        ("swap_bytes", "Swap in use (v2 memory.swap.current, v1 total_swap)", c.swap),
    ];
    for (suffix, help, value) in gauges {
        let mut f =
            Family::gauge(&format!("leakwatch_cgroup_memory_{suffix}"), &format!("{help}, of the target's cgroup."));
        f.add_opt(&target, value);
        out.push(f);
    }
    let mut f = Family::counter(
        "leakwatch_cgroup_memory_oom_kills_total",
        "Processes killed by the OOM killer in the target's cgroup (kernel counter: memory.events / memory.oom_control oom_kill).",
    );
    f.add_opt(&target, c.oom_kills);
    out.push(f);
    let mut f = Family::counter(
        "leakwatch_cgroup_memory_limit_hits_total",
        "Times the target's cgroup hit its memory limit (v2 memory.events max, v1 memory.failcnt).",
    );
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
