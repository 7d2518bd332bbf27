//! `/metrics`: one [`Scrape`] value (the latest [`Snapshot`], the alert state evaluated from it,
//! the reload status, leakwatch's structures and cleanups, the HTTP server's figures) rendered into
//! the Prometheus text format in one pass. The scrape path reads memory only; it never touches
//! `/proc`. Family names come from [`crate::metric_names`].
//!
//! A default scrape leaves out the detail families (caps, first-seen map sizes, read costs, the
//! HTTP server's connection figures, structure entry counts): `/metrics?detail=1` adds them, and
//! `/status` shows them either way.

mod alerts;
mod conns;
pub(crate) mod family;
mod logs;
mod oom;
mod reload;
mod structures;
mod tasks;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use crate::alert::AlertState;
use crate::cleanup::CleanupStats;
use crate::info::StaticInfo;
use crate::measure::Structure;
use crate::metric_names as n;
use crate::parse::pressure::Pressure;
use crate::reload::ReloadStatus;
use crate::snapshot::{ProcessMemory, Snapshot};
use family::{gauge_rows, Family};

/// A part of the scrape that another module owns (the HTTP server's figures): it adds its
/// families to the same render.
pub trait ScrapePart {
    /// Adds this part's families (mark detail ones with `Family::detail`).
    fn families(&self, out: &mut Vec<Family>);
}

/// Everything one `/metrics` scrape shows. Build it with [`Scrape::new`] and struct update
/// syntax, then [`Scrape::render`] it.
pub struct Scrape<'a> {
    /// The latest snapshot (target, host, cgroup, sockets, tasks, logs, leakwatch's own process).
    pub snapshot: &'a Snapshot,
    /// Build and Downward API facts.
    pub info: &'a StaticInfo,
    /// The alert state evaluated from the snapshot.
    pub alerts: Option<&'a AlertState>,
    /// Reload health.
    pub reload: Option<&'a ReloadStatus>,
    /// Every internal structure `/status` lists.
    pub structures: &'a [Structure],
    /// Cleanup statistics.
    pub cleanup: Option<&'a CleanupStats>,
    /// The HTTP server's figures.
    pub http: Option<&'a dyn ScrapePart>,
    /// Whether the detail families are rendered too.
    pub detail: bool,
}

impl<'a> Scrape<'a> {
    /// A scrape of `snapshot` alone (no alerts, reload, structures, cleanup or HTTP figures),
    /// with the detail families.
    pub fn new(snapshot: &'a Snapshot, info: &'a StaticInfo) -> Self {
        Self { snapshot, info, alerts: None, reload: None, structures: &[], cleanup: None, http: None, detail: true }
    }

    /// The exposition text, in one encoder pass over every family.
    pub fn render(&self) -> String {
        let families = self.families();
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            // Only possible with a malformed family, which would be a bug in this module.
            tracing::error!("encoding /metrics failed: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn families(&self) -> Vec<MetricFamily> {
        let s = self.snapshot;
        let mut out: Vec<Family> = Vec::with_capacity(128);
        meta(&mut out, s, self.info);
        if let Some(r) = self.reload {
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
        if let Some(state) = self.alerts {
            alerts::alerts(&mut out, state);
        }
        structures::structures(&mut out, self.structures, self.cleanup);
        if let Some(http) = self.http {
            http.families(&mut out);
        }
        if let Some(own) = &s.own_process {
            own_process(&mut out, own);
        }
        out.into_iter().filter(|f| !f.is_empty() && (self.detail || !f.is_detail())).map(Family::finish).collect()
    }
}

/// Renders the exposition text for one snapshot alone, with the detail families (the golden
/// expositions and the render benches).
pub fn render(snapshot: &Snapshot, info: &StaticInfo) -> String {
    Scrape::new(snapshot, info).render()
}

fn meta(out: &mut Vec<Family>, s: &Snapshot, info: &StaticInfo) {
    let mut f = Family::gauge(n::BUILD_INFO, "leakwatch build information.");
    f.add(&[("version", &info.version)], 1.0);
    out.push(f);
    let mut f = Family::gauge(n::KUBERNETES_INFO, "Pod context from the Downward API environment.");
    if !info.kubernetes.is_empty() {
        let labels: Vec<(&str, &str)> = info.kubernetes.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.add(&labels, 1.0);
    }
    out.push(f);
    if s.seq == 0 {
        return;
    }
    let mut f = Family::counter(n::SAMPLES_TOTAL, "Sampling passes completed.");
    f.add(&[], s.seq as f64);
    out.push(f);
    let mut f = Family::gauge(n::SAMPLE_DURATION_SECONDS, "Duration of the last sampling pass.");
    f.add(&[], s.duration.as_secs_f64());
    out.push(f);
    let mut f = Family::gauge(n::LAST_SAMPLE_TIMESTAMP_SECONDS, "Start of the last pass.");
    f.add(&[], crate::seconds::unix(s.taken_at));
    out.push(f);
    let mut f = Family::gauge(n::SAMPLE_AGE_SECONDS, "Age of each expensive figure group.");
    for (figures, age) in s.target.freshness.groups() {
        f.add_opt(&[("figures", figures)], age.map(|a| a.as_secs_f64()));
    }
    out.push(f);
    let mut f = Family::counter(n::SAMPLE_ERRORS_TOTAL, "Unreadable or malformed files while sampling.");
    for (source, reason, count) in s.errors.iter() {
        f.add(&[("source", source.as_str()), ("reason", reason.as_str())], count as f64);
    }
    out.push(f);
}

fn host(out: &mut Vec<Family>, s: &Snapshot) {
    if let Some(m) = &s.host.memory {
        let rows: [(&str, &str, Option<u64>); 2] = [
            (n::HOST_MEMORY_TOTAL_BYTES, "Host MemTotal.", Some(m.total)),
            (n::HOST_MEMORY_AVAILABLE_BYTES, "Host MemAvailable.", m.available),
        ];
        gauge_rows(out, &[], rows);
        // node_exporter's domain: on /status, and here on a detail scrape.
        let detail: [(&str, &str, Option<u64>); 5] = [
            (n::HOST_MEMORY_FREE_BYTES, "Host MemFree.", m.free),
            (n::HOST_MEMORY_BUFFERS_BYTES, "Host Buffers.", m.buffers),
            (n::HOST_MEMORY_CACHED_BYTES, "Host Cached.", m.cached),
            (n::HOST_MEMORY_SWAP_TOTAL_BYTES, "Host SwapTotal.", m.swap_total),
            (n::HOST_MEMORY_SWAP_FREE_BYTES, "Host SwapFree.", m.swap_free),
        ];
        for (name, help, value) in detail {
            let mut f = Family::gauge(name, help).detail();
            f.add_opt(&[], value);
            out.push(f);
        }
    }
    if let Some(p) = &s.host.pressure {
        pressure(out, [n::HOST_MEMORY_PRESSURE_SECONDS_TOTAL, n::HOST_MEMORY_PRESSURE_RATIO], "host", p, &[]);
    }
}

/// PSI as node_exporter reads it: `kind="some"` = some task waited, `full` = all stalled; the
/// totals in seconds, the averages as ratios.
fn pressure(out: &mut Vec<Family>, [total, ratio]: [&str; 2], scope: &str, p: &Pressure, labels: &[(&str, &str)]) {
    let mut seconds = Family::counter(total, &format!("PSI memory totals of the {scope}."));
    // The averages are the kernel's own smoothing of the totals (`rate()` of the totals gives the
    // same over any window): on a detail scrape.
    let mut share = Family::gauge(ratio, &format!("PSI memory averages of the {scope}.")).detail();
    for (kind, line) in [("some", p.some), ("full", p.full)] {
        let Some(line) = line else { continue };
        let mut l = labels.to_vec();
        l.push(("kind", kind));
        seconds.add(&l, line.total_us as f64 / 1e6);
        for (window, avg) in [("10s", line.avg10), ("60s", line.avg60), ("300s", line.avg300)] {
            let mut l = l.clone();
            l.push(("window", window));
            share.add(&l, avg / 100.0);
        }
    }
    out.extend([seconds, share]);
}

fn target(out: &mut Vec<Family>, s: &Snapshot) {
    let t = &s.target;
    let target = [("target", t.name.as_str())];
    if s.seq == 0 {
        return;
    }
    let mut f = Family::gauge(n::TARGET_PROCESSES, "Target processes sampled.");
    f.add(&target, t.processes.len() as f64);
    out.push(f);
    let mut f = Family::gauge(n::TARGET_PROCESSES_MATCHED, "Processes matching the selector.");
    f.add(&target, t.matched as f64);
    out.push(f);
    let mut f = Family::counter(n::TARGET_CHANGES_TOTAL, "Changes of the target's processes.");
    f.add(&target, t.changes as f64);
    out.push(f);
    let mut f = Family::gauge(n::TARGET_PROCESS_INFO, "One series per target process.");
    for p in &t.processes {
        f.add(&[("target", &t.name), ("pid", &p.pid.to_string()), ("comm", &p.comm)], 1.0);
    }
    out.push(f);
    if let Some(m) = &t.memory {
        process_memory(out, m, &t.name);
    }
    let mut f = Family::counter(n::PSS_READ_SECONDS_TOTAL, "Time spent reading smaps_rollup.");
    f.add(&target, t.pss.read_seconds_total);
    out.push(f);
    let mut f = Family::gauge(n::PSS_READ_DURATION_SECONDS, "Last smaps_rollup read time.").detail();
    f.add_opt(&target, t.pss.last_read.map(|d| d.as_secs_f64()));
    out.push(f);
    let mut f = Family::counter(n::PSS_READS_SKIPPED_TOTAL, "smaps_rollup reads skipped.").detail();
    f.add(&[("target", &t.name), ("reason", "rss_above_max")], t.pss.skipped_rss as f64);
    f.add(&[("target", &t.name), ("reason", "over_time_budget")], t.pss.skipped_budget as f64);
    out.push(f);
    if let Some(u) = &t.utilization {
        let labels = [("target", t.name.as_str()), ("basis", u.basis.as_str())];
        let mut f = Family::gauge(n::MEMORY_UTILIZATION_RATIO, "Memory used / limit on the OOM basis.");
        f.add(&labels, u.ratio());
        out.push(f);
        let mut f = Family::gauge(n::MEMORY_USED_BYTES, "Used side of the utilization ratio.");
        f.add(&labels, u.used as f64);
        out.push(f);
        let mut f = Family::gauge(n::MEMORY_LIMIT_BYTES, "Limit side of the utilization ratio.");
        f.add(&labels, u.limit as f64);
        out.push(f);
    }
}

/// The target group's figures: its memory as one family by `kind` (as process-exporter's
/// `memory_bytes{memtype}`), the rest one family each.
fn process_memory(out: &mut Vec<Family>, m: &ProcessMemory, target: &str) {
    let values = [m.rss, m.rss_anon, m.rss_file, m.rss_shmem, m.pss, m.swap, m.rss_peak, m.virtual_size];
    let mut f = Family::gauge(n::PROCESS_MEMORY_BYTES, "Memory of the target group by kind.");
    for ((kind, _), value) in n::PROCESS_MEMORY_KINDS.iter().zip(values) {
        f.add_opt(&[("target", target), ("kind", kind)], value);
    }
    out.push(f);
    let labels = [("target", target)];
    let gauges: [(&str, &str, Option<f64>); 4] = [
        (n::PROCESS_THREADS, "Threads of the target group.", m.threads.map(|v| v as f64)),
        (n::PROCESS_OPEN_FDS, "Open fds of the target group.", m.open_fds.map(|v| v as f64)),
        (n::PROCESS_MAX_FDS, "Soft fd limit of the target group.", m.max_fds.map(|v| v as f64)),
        (n::PROCESS_START_TIME_SECONDS, "Start time of the target group.", m.start_time_seconds),
    ];
    gauge_rows(out, &labels, gauges);
    let mut f = Family::counter(n::PROCESS_CPU_SECONDS_TOTAL, "CPU time of the target group.");
    f.add_opt(&labels, m.cpu_seconds);
    out.push(f);
}

fn cgroup(out: &mut Vec<Family>, s: &Snapshot) {
    let Some(c) = &s.target.cgroup else { return };
    let name = s.target.name.as_str();
    let target = [("target", name)];
    let mut f = Family::gauge(n::CGROUP_INFO, "The target's memory cgroup.");
    f.add(&[("target", name), ("version", c.version.as_str()), ("via", c.via.as_str()), ("path", &c.path)], 1.0);
    out.push(f);
    let values = [c.usage, c.working_set, c.rss, c.cache, c.shmem, c.inactive_file, c.swap];
    let mut f = Family::gauge(n::CGROUP_MEMORY_BYTES, "Memory of the target's cgroup by kind.");
    for ((kind, _), value) in n::CGROUP_MEMORY_KINDS.iter().zip(values) {
        f.add_opt(&[("target", name), ("kind", kind)], value);
    }
    out.push(f);
    let mut f = Family::gauge(n::CGROUP_MEMORY_LIMIT_BYTES, "Memory limit of the target's cgroup.");
    f.add_opt(&target, c.limit);
    out.push(f);
    let mut f = Family::counter(n::CGROUP_MEMORY_OOM_KILLS_TOTAL, "OOM kills in the target's cgroup.");
    f.add_opt(&target, c.oom_kills);
    out.push(f);
    let mut f = Family::counter(n::CGROUP_MEMORY_LIMIT_HITS_TOTAL, "Limit hits of the target's cgroup.");
    f.add_opt(&target, c.limit_hits);
    out.push(f);
    if let Some(p) = &c.pressure {
        let names = [n::CGROUP_MEMORY_PRESSURE_SECONDS_TOTAL, n::CGROUP_MEMORY_PRESSURE_RATIO];
        pressure(out, names, "cgroup", p, &target);
    }
}

fn pids(out: &mut Vec<Family>, s: &Snapshot) {
    let Some(p) = &s.target.pids else { return };
    let target = [("target", s.target.name.as_str())];
    let mut f = Family::gauge(n::CGROUP_PIDS, "Tasks in the target's cgroup (pids.current).");
    f.add_opt(&target, p.current);
    out.push(f);
    let mut f = Family::gauge(n::CGROUP_PIDS_MAX, "pids.max of the target's cgroup; absent when unlimited.");
    f.add_opt(&target, p.max);
    out.push(f);
}

/// leakwatch's own figures under the standard client-library names, taken from the snapshot.
fn own_process(out: &mut Vec<Family>, m: &ProcessMemory) {
    let rows: [(&str, &str, Option<f64>); 6] = [
        (n::OWN_RESIDENT_MEMORY_BYTES, "Resident memory size in bytes.", m.rss.map(|v| v as f64)),
        (n::OWN_VIRTUAL_MEMORY_BYTES, "Virtual memory size in bytes.", m.virtual_size.map(|v| v as f64)),
        (n::OWN_OPEN_FDS, "Number of open file descriptors.", m.open_fds.map(|v| v as f64)),
        (n::OWN_MAX_FDS, "Maximum number of open file descriptors.", m.max_fds.map(|v| v as f64)),
        (n::OWN_START_TIME_SECONDS, "Start time of the process since unix epoch in seconds.", m.start_time_seconds),
        (n::OWN_THREADS, "Number of OS threads in the process.", m.threads.map(|v| v as f64)),
    ];
    gauge_rows(out, &[], rows);
    let mut f = Family::counter(n::OWN_CPU_SECONDS_TOTAL, "Total user and system CPU time spent in seconds.");
    f.add_opt(&[], m.cpu_seconds);
    out.push(f);
}
