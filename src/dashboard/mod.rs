//! The Grafana dashboards in `dashboards/`, generated from code: an overview (one row per
//! capability, the less-used rows collapsed), a per-target drill-down and a fleet view for
//! hundreds of pods (on the recording rules of `alerts/leakwatch-recording-rules.yaml`, with
//! links into the target view). Threshold steps are the built-in alert rules' levels
//! ([`crate::alert::rules::defaults`]), so dashboards and alerts agree. Every query is scoped by
//! `$cluster` (hidden, as kubernetes-mixin does without `showMultiCluster`; empty matches series
//! without the label) and `$job`. `leakwatch generate dashboards` writes them; a test fails when
//! the committed files drift from this output.

pub(crate) mod grafana;

use grafana::{Annotation, Dashboard, Kind, Link, Panel, Row, Steps, Variable};

use crate::alert::rules::{self, Ratio, Severity};

/// Steps at the built-in rule's levels for `ratio`: blue (info), orange (warning), red (critical).
fn level_steps(ratio: Ratio) -> Steps {
    let defaults = rules::defaults();
    let rule = defaults.thresholds.iter().find(|r| r.ratio == ratio);
    rule.map(|r| {
        r.levels
            .iter()
            .map(|(severity, level)| {
                let color = match severity {
                    Severity::Info => "blue",
                    Severity::Warning => "orange",
                    Severity::Critical => "red",
                };
                (*level, color)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Every dashboard with its file name.
pub fn all() -> Vec<(&'static str, Dashboard)> {
    vec![
        ("leakwatch-overview.json", overview()),
        ("leakwatch-target.json", target()),
        ("leakwatch-fleet.json", fleet()),
    ]
}

/// A dashboard as its file holds it: pretty JSON and a final newline.
pub fn file_text(d: &Dashboard) -> String {
    let mut text = serde_json::to_string_pretty(&d.to_json()).unwrap_or_default();
    text.push('\n');
    text
}

/// The matchers every query starts with: the cluster (empty matches series without the label)
/// and the scrape job.
const SCOPE: &str = r#"cluster=~"$cluster", job=~"$job""#;

/// `{SCOPE, more, extra}` as a selector.
fn selector(more: &str, extra: &str) -> String {
    let mut s = format!("{{{SCOPE}, {more}");
    if !extra.is_empty() {
        s.push_str(", ");
        s.push_str(extra);
    }
    s.push('}');
    s
}

/// The target selector: scope, `$namespace`, `$pod`, `$target`, plus `extra` matchers.
fn t(extra: &str) -> String {
    selector(r#"namespace=~"$namespace", pod=~"$pod", target=~"$target""#, extra)
}

/// The pod selector (for series without a `target` label: logs, host, leakwatch itself).
fn p(extra: &str) -> String {
    selector(r#"namespace=~"$namespace", pod=~"$pod""#, extra)
}

/// The namespace selector of the fleet view.
fn ns(extra: &str) -> String {
    selector(r#"namespace=~"$namespace""#, extra)
}

/// `$cluster` (one value, hidden: kubernetes-mixin's default without `showMultiCluster`; the
/// chart's `dashboards.multiCluster` shows it) and `$job` (multi-value, "All").
fn scope_variables() -> Vec<Variable> {
    vec![
        Variable {
            name: "cluster",
            label: "Cluster",
            query: format!("label_values({BUILD_INFO}, cluster)"),
            all: false,
            hidden: true,
        },
        Variable {
            name: "job",
            label: "Job",
            query: format!(r#"label_values({BUILD_INFO}{{cluster=~"$cluster"}}, job)"#),
            all: true,
            hidden: false,
        },
        Variable {
            name: "namespace",
            label: "Namespace",
            query: format!("label_values({BUILD_INFO}{{{SCOPE}}}, namespace)"),
            all: true,
            hidden: false,
        },
    ]
}

fn pod_variables() -> Vec<Variable> {
    let mut vars = scope_variables();
    vars.extend([
        Variable {
            name: "pod",
            label: "Pod",
            query: format!(r#"label_values({BUILD_INFO}{{{SCOPE}, namespace=~"$namespace"}}, pod)"#),
            all: true,
            hidden: false,
        },
        Variable {
            name: "target",
            label: "Target",
            query: format!(
                r#"label_values({TARGET_PROCESSES}{{{SCOPE}, namespace=~"$namespace", pod=~"$pod"}}, target)"#
            ),
            all: true,
            hidden: false,
        },
    ]);
    vars
}

/// A drill-down from a fleet panel into the target view for the series (or table row) clicked,
/// carrying the data source, cluster, job and time range. `fields` is `__field.labels` for
/// series panels, `__data.fields` for table rows.
fn target_link(fields: &str) -> Link {
    Link {
        title: "Open ${__field.labels.namespace}/${__field.labels.pod} in leakwatch / Target"
            .replace("__field.labels", fields),
        url: format!(
            "/d/leakwatch-target/leakwatch-target?${{datasource:queryparam}}&${{cluster:queryparam}}&${{job:queryparam}}\
             &var-namespace=${{{fields}.namespace}}&var-pod=${{{fields}.pod}}&var-target=${{{fields}.target}}&${{__url_time_range}}"
        ),
    }
}

/// Alerts that fire or are pending in leakwatch's engine, one row each with its `state`.
fn alert_states(selector: &str, by: &str) -> String {
    format!(
        r#"sum by ({by}, alert, severity, state) (label_replace({ALERT_ACTIVE}{selector} == 1, "state", "firing", "", "") or label_replace({ALERT_PENDING}{selector} == 1, "state", "pending", "", ""))"#
    )
}

use crate::metric_names::{
    ALERT_ACTIVE, ALERT_PENDING, BUILD_INFO, CGROUP_MEMORY_BYTES, CGROUP_MEMORY_LIMIT_BYTES,
    CGROUP_MEMORY_PRESSURE_SECONDS_TOTAL, CLEANUPS_TOTAL, CLEANUP_FREED_BYTES_TOTAL, CONN_ACCEPT_QUEUE_LENGTH,
    CONN_ACCEPT_QUEUE_MAX_LENGTH, CONN_SOCKETS, CONN_STALE_SOCKETS, FD_OPEN, FD_UTILIZATION_RATIO,
    LOG_BUFFER_ALLOCATED_BYTES, LOG_BUFFER_BYTES, LOG_BUFFER_MAX_BYTES, LOG_LINES_DROPPED_TOTAL, LOG_LINES_TOTAL,
    LOG_UNKNOWN_LOSSES_TOTAL, MEMORY_LIMIT_BYTES, MEMORY_USED_BYTES, MEMORY_UTILIZATION_RATIO,
    OWN_RESIDENT_MEMORY_BYTES, PEER_CONNECTIONS, PEER_UTILIZATION_RATIO, PROCESS_CPU_SECONDS_TOTAL,
    PROCESS_MEMORY_BYTES, PROCESS_START_TIME_SECONDS, PROCESS_THREADS, PSS_READ_SECONDS_TOTAL, SAMPLE_DURATION_SECONDS,
    SAMPLE_ERRORS_TOTAL, STRUCTURE_ALLOCATED_BYTES, TARGET_CHANGES_TOTAL, TARGET_OOM_KILLS_TOTAL, TARGET_PROCESSES,
    TARGET_PROCESSES_MATCHED, TARGET_UP, TASK_CONTEXT_SWITCHES_TOTAL, TASK_DESCENDANTS, TASK_STALE_DESCENDANTS,
    TREND_MEMORY_SLOPE_BYTES_PER_SECOND, TREND_TIME_TO_LIMIT_SECONDS,
};
use Kind::{BarGauge, Stat, Table, TimeSeries};

fn memory_row() -> Row {
    Row::open(
        "Memory",
        vec![
            Panel::new(
                TimeSeries,
                "Memory utilization",
                "percentunit",
                &format!("{MEMORY_UTILIZATION_RATIO}{}", t("")),
                "{{pod}} {{target}} ({{basis}})",
            )
            .describe("Cgroup working set ÷ its limit (what the OOM killer uses), or RSS ÷ host memory without a limit; bands at the alert levels.")
            .steps(level_steps(Ratio::MemoryUtilization)),
            Panel::new(TimeSeries, "Used and limit", "bytes", &format!("{MEMORY_USED_BYTES}{}", t("")), "used {{pod}} {{target}}")
                .query(&format!("{MEMORY_LIMIT_BYTES}{}", t("")), "limit {{pod}} {{target}}")
                .describe("The basis of the utilization ratio: working set (or RSS) and the limit it is measured against."),
            Panel::new(TimeSeries, "Process memory", "bytes", &format!("sum by (target) ({PROCESS_MEMORY_BYTES}{})", t(r#"kind="resident""#)), "RSS {{target}}")
                .query(&format!("sum by (target) ({PROCESS_MEMORY_BYTES}{})", t(r#"kind="pss""#)), "PSS {{target}}")
                .query(&format!("sum by (target) ({PROCESS_MEMORY_BYTES}{})", t(r#"kind="resident_anon""#)), "anon {{target}}")
                .query(&format!("sum by (target) ({PROCESS_MEMORY_BYTES}{})", t(r#"kind="swap""#)), "swap {{target}}")
                .describe("The target process group: resident, proportional (shared pages split), anonymous (heap: where leaks live) and swapped.")
                .width(8),
            Panel::new(Stat, "OOM kills (24 h)", "short", &format!("sum(increase({TARGET_OOM_KILLS_TOTAL}{}[24h]))", t("")), "OOM kills")
                .describe("OOM kills of the target counted by leakwatch (across restarts and new cgroups); GET /oom has the reports.")
                .steps(vec![(1.0, "red")])
                .width(4),
            Panel::new(TimeSeries, "Memory pressure", "percentunit", &format!("rate({CGROUP_MEMORY_PRESSURE_SECONDS_TOTAL}{}[$__rate_interval])", t("")), "{{kind}} {{pod}} {{target}}")
                .describe("Share of time tasks in the cgroup waited (some) or stalled (full) on memory (PSI, cgroup v2)."),
        ],
    )
}

fn alerts_row() -> Row {
    Row::open(
        "Alerts and leak detection",
        vec![
            Panel::new(
                Table,
                "Alerts (leakwatch's own evaluation)",
                "short",
                &alert_states(&p(""), "namespace, pod, target, source"),
                "{{alert}} {{severity}} {{target}}",
            )
            .hide_column("Value")
            .describe("Alerts firing or pending in leakwatch's engine (the same rules Prometheus evaluates from alerts/); inactive ones are on the pod's GET /alerts."),
            Panel::new(
                TimeSeries,
                "Memory growth (robust slope)",
                "Bps",
                &format!("{TREND_MEMORY_SLOPE_BYTES_PER_SECOND}{}", t("")),
                "{{pod}} {{target}}",
            )
            .describe("Theil–Sen growth rate of the memory basis over the detector's window: steady growth is a leak; a GC sawtooth or a one-off step is not.")
            .width(6),
            Panel::new(
                TimeSeries,
                "Predicted time to the limit",
                "s",
                &format!("{TREND_TIME_TO_LIMIT_SECONDS}{}", t("")),
                "{{resource}} {{pod}} {{target}}",
            )
            .describe("At the detected growth rate, seconds until memory, descriptors or tasks reach their limit; absent while nothing grows.")
            .steps(vec![(0.0, "red"), (900.0, "orange"), (3600.0, "green")])
            .width(6),
        ],
    )
}

fn connections_row() -> Row {
    Row::collapsed(
        "Connections",
        vec![
            Panel::new(
                TimeSeries,
                "Sockets by state",
                "short",
                &format!("sum by (state) ({CONN_SOCKETS}{})", t("")),
                "{{state}}",
            )
            .describe("Sockets held by the target, by TCP state (UDP and unix use the same names).")
            .width(8),
            Panel::new(
                TimeSeries,
                "CLOSE_WAIT",
                "short",
                // Zero, not "no data", while the target holds no such socket.
                &format!(
                    "sum by (pod, target) ({CONN_SOCKETS}{}) or sum by (pod, target) ({CONN_SOCKETS}{}) * 0",
                    t(r#"state="close_wait""#),
                    t("")
                ),
                "{{pod}} {{target}}",
            )
            .describe("The peer closed, the application never did: steady growth is a connection leak.")
            .width(8),
            Panel::new(
                TimeSeries,
                "Peer-group utilization",
                "percentunit",
                &format!("{PEER_UTILIZATION_RATIO}{}", t("")),
                "{{peer}} {{pod}}",
            )
            .describe("Connections to each configured peer group ÷ its limit (e.g. a database pool).")
            .steps(level_steps(Ratio::PeerUtilization))
            .width(8),
            Panel::new(
                TimeSeries,
                "Accept queue",
                "short",
                &format!("sum by (pod, target) ({CONN_ACCEPT_QUEUE_LENGTH}{})", t("")),
                "queued {{pod}} {{target}}",
            )
            .query(
                &format!("sum by (pod, target) ({CONN_ACCEPT_QUEUE_MAX_LENGTH}{})", t("")),
                "backlog {{pod}} {{target}}",
            )
            .describe("Connections completed by the kernel but not yet accepted by the application."),
            Panel::new(
                TimeSeries,
                "Stale connections",
                "short",
                &format!("{CONN_STALE_SOCKETS}{}", t("")),
                "{{pod}} {{target}}",
            )
            .describe("Held sockets first seen longer ago than connections.stale_after."),
        ],
    )
}

fn tasks_row() -> Row {
    Row::collapsed(
        "Descriptors, threads and child processes",
        vec![
            Panel::new(
                TimeSeries,
                "Descriptor utilization",
                "percentunit",
                &format!("{FD_UTILIZATION_RATIO}{}", t("")),
                "{{pod}} {{target}}",
            )
            .describe("The worst process's open descriptors ÷ its soft RLIMIT_NOFILE.")
            .steps(level_steps(Ratio::FdUtilization))
            .width(8),
            Panel::new(
                TimeSeries,
                "Descriptors by kind",
                "short",
                &format!("sum by (kind) ({FD_OPEN}{})", t("")),
                "{{kind}}",
            )
            .width(8),
            Panel::new(TimeSeries, "Threads", "short", &format!("{PROCESS_THREADS}{}", t("")), "{{pod}} {{target}}")
                .width(8),
            Panel::new(
                TimeSeries,
                "Descendants by state",
                "short",
                &format!("sum by (state) ({TASK_DESCENDANTS}{})", t("")),
                "{{state}}",
            )
            .describe("Child processes and their children; zombies were never reaped."),
            Panel::new(
                TimeSeries,
                "Stale descendants",
                "short",
                &format!("{TASK_STALE_DESCENDANTS}{}", t("")),
                "{{pod}} {{target}}",
            )
            .describe("Descendants older than tasks.stale_after: stuck or leaked workers."),
        ],
    )
}

fn logs_row() -> Row {
    Row::collapsed(
        "Logs",
        vec![
            Panel::new(TimeSeries, "Lines ingested", "short", &format!("sum by (source) (rate({LOG_LINES_TOTAL}{}[$__rate_interval]))", p("")), "{{source}}")
                .describe("Lines per second stored in each source's buffer.")
                .width(8),
            Panel::new(TimeSeries, "Lines dropped", "short", &format!("sum by (source, reason) (rate({LOG_LINES_DROPPED_TOTAL}{}[$__rate_interval]))", p("")), "{{source}} {{reason}}")
                .describe("evicted: pushed out by newer lines (normal when full); subscriber_lag: a slow live reader missed them; truncation: lost in a copytruncate window or a rotated file gone (a lower bound while 'Losses of unknown size' moves).")
                .width(6),
            Panel::new(TimeSeries, "Losses of unknown size", "short", &format!("sum by (source, reason) (increase({LOG_UNKNOWN_LOSSES_TOTAL}{}[$__rate_interval]))", p("")), "{{source}} {{reason}}")
                .describe("rotation: files that arrived at the path and were gone before they could be opened; truncation: every truncation (what was written after the last size seen is unknowable); overflow: the file event queue overflowed. While none moves, the lines dropped for truncation are exact.")
                .width(6),
            Panel::new(TimeSeries, "Buffer fill", "percentunit", &format!("{LOG_BUFFER_BYTES}{} / {LOG_BUFFER_MAX_BYTES}{}", p(""), p("")), "{{pod}} {{source}}")
                .describe("Bytes held (text + 16 per line entry) ÷ the buffer's byte cap.")
                .steps(level_steps(Ratio::LogBufferFill))
                .width(6),
        ],
    )
}

fn leakwatch_row() -> Row {
    Row::collapsed(
        "leakwatch itself",
        vec![
            Panel::new(
                TimeSeries,
                "leakwatch memory",
                "bytes",
                // Only the series of leakwatch's own scrape: an application in the same pod may
                // export a process_resident_memory_bytes of its own.
                &format!("{OWN_RESIDENT_MEMORY_BYTES}{} and on (job, instance) {BUILD_INFO}{}", p(""), p("")),
                "{{pod}}",
            )
            .describe("leakwatch's own RSS (the series of the scrape that carries the build info): its buffers' caps plus a few MiB.")
            .width(8),
            Panel::new(
                TimeSeries,
                "Sample duration",
                "s",
                &format!("{SAMPLE_DURATION_SECONDS}{}", p("")),
                "{{pod}}",
            )
            .width(8),
            Panel::new(
                TimeSeries,
                "Sample errors",
                "short",
                &format!("sum by (source, reason) (rate({SAMPLE_ERRORS_TOTAL}{}[$__rate_interval])) or on() vector(0)", p("")),
                "{{source}} {{reason}}",
            )
            .describe("Reads that failed, by source and reason (e.g. a target that exited mid-sample).")
            .width(8),
            Panel::new(
                TimeSeries,
                "Internal structures",
                "bytes",
                &format!(
                    "sum by (structure) ({STRUCTURE_ALLOCATED_BYTES}{}) or label_replace(sum({LOG_BUFFER_ALLOCATED_BYTES}{}), \"structure\", \"log buffers\", \"\", \"\")",
                    p(""),
                    p("")
                ),
                "{{structure}}",
            )
            .describe("Bytes allocated by leakwatch's bounded structures (see /status): what a cleanup can shrink.")
            .width(8),
            Panel::new(
                TimeSeries,
                "Cleanups",
                "short",
                &format!("sum by (trigger) (increase({CLEANUPS_TOTAL}{}[$__rate_interval]))", p("")),
                "{{trigger}}",
            )
            .describe("Cleanups of leakwatch's own structures: interval, memory (own RSS above cleanup.memory_threshold), admin.")
            .width(8),
            Panel::new(
                TimeSeries,
                "Freed by cleanups",
                "Bps",
                &format!("sum by (pod) (rate({CLEANUP_FREED_BYTES_TOTAL}{}[$__rate_interval]))", p("")),
                "{{pod}}",
            )
            .describe("Spare capacity and dead entries released by cleanups, per second.")
            .width(8),
        ],
    )
}

/// The events marked on the time axes: OOM kills (a mark; the report is on the pod's
/// `GET /oom`), target restarts (the group's oldest process has a new start time) and alerts
/// firing in leakwatch's engine (a region while they fire). `detail` turns the last two on.
fn annotations(target: &str, pod: &str, detail: bool) -> Vec<Annotation> {
    vec![
        Annotation {
            name: "OOM kills",
            enable: true,
            color: "red",
            expr: format!("sum without(detection) (increase({TARGET_OOM_KILLS_TOTAL}{target}[2m])) > 0"),
            title: "OOM kill: {{target}}",
            text: "{{namespace}}/{{pod}}: the pre-mortem report is on leakwatch's GET /oom",
            tags: "namespace,pod,target",
        },
        Annotation {
            name: "Target restarts",
            enable: detail,
            color: "orange",
            expr: format!("changes({PROCESS_START_TIME_SECONDS}{target}[2m]) > 0"),
            title: "Target restarted: {{target}}",
            text: "{{namespace}}/{{pod}}: the target's oldest process has a new start time",
            tags: "namespace,pod,target",
        },
        Annotation {
            name: "Alerts firing",
            enable: detail,
            color: "yellow",
            expr: format!("sum by (namespace, pod, target, source, alert, severity) ({ALERT_ACTIVE}{pod} == 1)"),
            title: "{{alert}} ({{severity}})",
            text: "{{namespace}}/{{pod}} {{target}}{{source}}: firing in leakwatch's engine",
            tags: "namespace,pod,alert,severity",
        },
    ]
}

/// One row per capability, for the pods and targets picked.
pub(crate) fn overview() -> Dashboard {
    Dashboard {
        uid: "leakwatch-overview",
        title: "leakwatch / Overview",
        description:
            "Memory against the cgroup limit, connections, descriptors and tasks, log buffers and leakwatch itself.",
        variables: pod_variables(),
        rows: vec![memory_row(), alerts_row(), connections_row(), tasks_row(), logs_row(), leakwatch_row()],
        annotations: annotations(&t(""), &p(""), true),
    }
}

/// Everything about one target, in detail.
pub(crate) fn target() -> Dashboard {
    let detail = Row::open(
        "Memory in detail",
        vec![
            Panel::new(TimeSeries, "Cgroup memory", "bytes", &format!("{CGROUP_MEMORY_BYTES}{}", t(r#"kind="usage""#)), "usage {{pod}}")
                .query(&format!("{CGROUP_MEMORY_BYTES}{}", t(r#"kind="working_set""#)), "working set {{pod}}")
                .query(&format!("{CGROUP_MEMORY_BYTES}{}", t(r#"kind="cache""#)), "page cache {{pod}}")
                .query(&format!("{CGROUP_MEMORY_BYTES}{}", t(r#"kind="inactive_file""#)), "inactive file {{pod}}")
                .query(&format!("{CGROUP_MEMORY_LIMIT_BYTES}{}", t("")), "limit {{pod}}")
                .describe("The target's cgroup: usage includes reclaimable cache; the working set (usage − inactive file) is what counts."),
            Panel::new(TimeSeries, "Peak RSS and virtual size", "bytes", &format!("{PROCESS_MEMORY_BYTES}{}", t(r#"kind="resident_max""#)), "peak RSS {{pod}}")
                .query(&format!("{PROCESS_MEMORY_BYTES}{}", t(r#"kind="virtual""#)), "virtual {{pod}}"),
            Panel::new(TimeSeries, "CPU (cores)", "short", &format!("rate({PROCESS_CPU_SECONDS_TOTAL}{}[$__rate_interval])", t("")), "{{pod}}")
                .describe("CPU seconds per second of the target group: 1 is one core busy.")
                .width(8),
            Panel::new(TimeSeries, "Context switches", "ops", &format!("sum by (kind) (rate({TASK_CONTEXT_SWITCHES_TOTAL}{}[$__rate_interval]))", t("")), "{{kind}}")
                .width(8),
            Panel::new(TimeSeries, "PSS read cost", "s", &format!("rate({PSS_READ_SECONDS_TOTAL}{}[$__rate_interval])", t("")), "{{pod}}")
                .describe("Seconds per second spent reading smaps_rollup (its time budget backs off when it is slow).")
                .width(8),
            Panel::new(TimeSeries, "Processes in the group", "short", &format!("{TARGET_PROCESSES}{}", t("")), "sampled {{pod}}")
                .query(&format!("{TARGET_PROCESSES_MATCHED}{}", t("")), "matched {{pod}}")
                .query(&format!("increase({TARGET_CHANGES_TOTAL}{}[$__rate_interval])", t("")), "changes {{pod}}"),
            Panel::new(TimeSeries, "Peer connections by state", "short", &format!("sum by (peer, state) ({PEER_CONNECTIONS}{})", t("")), "{{peer}} {{state}}"),
        ],
    );
    Dashboard {
        uid: "leakwatch-target",
        title: "leakwatch / Target",
        description: "One target in detail: cgroup and process memory, CPU, connections and tasks.",
        variables: pod_variables(),
        rows: vec![memory_row(), alerts_row(), detail, connections_row(), tasks_row(), logs_row()],
        annotations: annotations(&t(""), &p(""), true),
    }
}

/// Hundreds of pods at once: who hits a limit next, OOM kills, the worst offenders (each a link
/// into the target view), and per-namespace trends from the recording rules.
pub(crate) fn fleet() -> Dashboard {
    let n = ns("");
    let row_link = || target_link("__data.fields");
    let series_link = || target_link("__field.labels");
    let by = "cluster, namespace, pod, target";
    Dashboard {
        uid: "leakwatch-fleet",
        title: "leakwatch / Fleet",
        description: "Across namespaces: the pods closest to their memory limit, top connection and descriptor use, OOM kills; per-namespace trends from the recording rules.",
        variables: scope_variables(),
        rows: vec![
            Row::open(
                "Fleet",
                vec![
                    Panel::new(Stat, "Pods watched", "short", &format!("count({BUILD_INFO}{n})"), "pods").width(6),
                    Panel::new(Stat, "OOM kills (24 h)", "short", &format!("sum(increase({TARGET_OOM_KILLS_TOTAL}{n}[24h]))"), "OOM kills")
                        .steps(vec![(1.0, "red")])
                        .width(6),
                    Panel::new(Stat, "Targets above the warning level", "short", &format!("sum(namespace:leakwatch_memory_utilization_above_warning:count{n}) or vector(0)"), "targets")
                        .describe("From the recording rule namespace:leakwatch_memory_utilization_above_warning:count.")
                        .steps(vec![(1.0, "orange")])
                        .width(6),
                    Panel::new(Stat, "Targets gone", "short", &format!("count({TARGET_UP}{n} == 0) or vector(0)"), "targets")
                        .describe("Sidecars whose target has no process (exited, OOM-killed, restarting).")
                        .steps(vec![(1.0, "orange")])
                        .width(6),
                ],
            ),
            Row::open(
                "Leaks",
                vec![
                    Panel::new(
                        Table,
                        "Next to hit their memory limit (predicted)",
                        "s",
                        &format!("sort(bottomk(20, min by ({by}) ({TREND_TIME_TO_LIMIT_SECONDS}{})))", ns(r#"resource="memory""#)),
                        "{{namespace}}/{{pod}} {{target}}",
                    )
                    .describe("Targets whose memory grows steadily, sorted by the predicted time until the limit at that rate. Click a row for the target view.")
                    .link(row_link()),
                    Panel::new(
                        BarGauge,
                        "Fastest memory growth",
                        "Bps",
                        &format!("topk(20, {TREND_MEMORY_SLOPE_BYTES_PER_SECOND}{n} > 0)"),
                        "{{namespace}}/{{pod}} {{target}}",
                    )
                    .link(series_link()),
                    Panel::new(
                        Table,
                        "Alerts firing or pending",
                        "short",
                        &alert_states(&n, "cluster, namespace"),
                        "{{namespace}} {{alert}} {{severity}}",
                    )
                    .describe("Alerts firing or pending in leakwatch's engines, per namespace; the value is how many targets.")
                    .width(24),
                ],
            ),
            Row::open(
                "Closest to their limits",
                vec![
                    Panel::new(BarGauge, "Highest memory utilization", "percentunit", &format!("topk(20, {MEMORY_UTILIZATION_RATIO}{n})"), "{{namespace}}/{{pod}} {{target}}")
                        .steps(level_steps(Ratio::MemoryUtilization))
                        .link(series_link()),
                    Panel::new(Table, "OOM kills by pod (24 h)", "short", &format!("sort_desc(topk(20, sum by ({by}) (increase({TARGET_OOM_KILLS_TOTAL}{n}[24h]))))"), "{{namespace}}/{{pod}}")
                        .steps(vec![(1.0, "red")])
                        .link(row_link()),
                    Panel::new(BarGauge, "Highest descriptor utilization", "percentunit", &format!("topk(20, {FD_UTILIZATION_RATIO}{n})"), "{{namespace}}/{{pod}} {{target}}")
                        .steps(level_steps(Ratio::FdUtilization))
                        .link(series_link())
                        .width(8),
                    Panel::new(BarGauge, "Highest peer-group utilization", "percentunit", &format!("topk(20, {PEER_UTILIZATION_RATIO}{n})"), "{{namespace}}/{{pod}} {{peer}}")
                        .steps(level_steps(Ratio::PeerUtilization))
                        .link(series_link())
                        .width(8),
                    Panel::new(BarGauge, "Most CLOSE_WAIT sockets", "short", &format!("topk(20, sum by ({by}) ({CONN_SOCKETS}{}))", ns(r#"state="close_wait""#)), "{{namespace}}/{{pod}} {{target}}")
                        .link(series_link())
                        .width(8),
                ],
            ),
            Row::open(
                "By namespace (recording rules)",
                vec![
                    Panel::new(TimeSeries, "Worst memory utilization", "percentunit", &format!("namespace:leakwatch_memory_utilization_ratio:max{n}"), "{{namespace}}")
                        .describe("The highest memory utilization of any target in the namespace (namespace:leakwatch_memory_utilization_ratio:max).")
                        .steps(level_steps(Ratio::MemoryUtilization))
                        .width(8),
                    Panel::new(TimeSeries, "Shortest predicted time to a memory limit", "s", &format!("namespace:leakwatch_trend_time_to_limit_seconds:min{}", ns(r#"resource="memory""#)), "{{namespace}}")
                        .width(8),
                    Panel::new(TimeSeries, "OOM kills per hour", "short", &format!("namespace:leakwatch_cgroup_memory_oom_kills:increase1h{n}"), "{{namespace}}")
                        .width(8),
                    Panel::new(TimeSeries, "Worst descriptor utilization", "percentunit", &format!("namespace:leakwatch_fd_utilization_ratio:max{n}"), "{{namespace}}")
                        .steps(level_steps(Ratio::FdUtilization))
                        .width(8),
                    Panel::new(TimeSeries, "Worst peer-group utilization", "percentunit", &format!("namespace:leakwatch_peer_utilization_ratio:max{n}"), "{{namespace}} {{peer}}")
                        .steps(level_steps(Ratio::PeerUtilization))
                        .width(8),
                    Panel::new(TimeSeries, "CLOSE_WAIT sockets", "short", &format!("namespace:leakwatch_conn_close_wait_sockets:sum{n}"), "{{namespace}}")
                        .width(8),
                    Panel::new(TimeSeries, "Alerts firing by severity", "short", &format!("namespace:leakwatch_alerts_active:sum{n}"), "{{namespace}} {{severity}}"),
                    Panel::new(TimeSeries, "Log lines dropped", "short", &format!("namespace:leakwatch_log_lines_dropped:rate5m{n}"), "{{namespace}} {{reason}}")
                        .describe("Lines per second dropped from leakwatch's log buffers, by reason (evicted is normal when a buffer is full)."),
                ],
            ),
        ],
        annotations: annotations(&n, &n, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboard_has_a_stable_uid_variables_units_and_unique_panel_ids() {
        for (file, d) in all() {
            let v = d.to_json();
            assert_eq!(v["uid"], d.uid, "{file}");
            assert!(file.starts_with(d.uid), "{file} is named after its uid {}", d.uid);
            assert_eq!(v["templating"]["list"][0]["name"], "datasource");
            let panels = v["panels"].as_array().unwrap();
            let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), panels.len(), "{file}: panel ids are unique");
            for p in panels.iter().filter(|p| p["type"] != "row") {
                assert!(
                    p["fieldConfig"]["defaults"]["unit"].as_str().is_some_and(|u| !u.is_empty()),
                    "{file}: {}",
                    p["title"]
                );
                assert_eq!(p["datasource"]["uid"], "${datasource}");
                let grid = &p["gridPos"];
                assert!(
                    grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
                    "{file}: {} fits the grid",
                    p["title"]
                );
            }
        }
    }

    #[test]
    fn utilization_panels_carry_the_rule_levels() {
        let v = overview().to_json();
        let panel = v["panels"].as_array().unwrap().iter().find(|p| p["title"] == "Memory utilization").unwrap();
        let steps: Vec<f64> = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["value"].as_f64())
            .collect();
        let levels: Vec<f64> = rules::DEFAULT_LEVELS.iter().map(|(_, l)| *l).collect();
        assert_eq!(steps, levels, "the memory rule's levels");
    }
}
