//! Every metric family name leakwatch exports, spelled once: the renderer (`metrics/`, the HTTP
//! server's figures), the alert rule generator (`alert::promgen`, `alert::rules`), the dashboards
//! (`dashboard/`) and the tests all take the names from here. A leaf: it imports nothing, so every
//! module may use it (`metrics/` imports `alert/`, so the names cannot live in `metrics/`).

// Sampling meta and static facts.
/// Build information (`version`).
pub const BUILD_INFO: &str = "leakwatch_build_info";
/// The Downward API context (`namespace`, `pod`, `container`, `node`).
pub(crate) const KUBERNETES_INFO: &str = "leakwatch_kubernetes_info";
/// Sampling passes completed.
pub const SAMPLES_TOTAL: &str = "leakwatch_samples_total";
/// Duration of the last sampling pass.
pub const SAMPLE_DURATION_SECONDS: &str = "leakwatch_sample_duration_seconds";
/// Start of the last pass.
pub const LAST_SAMPLE_TIMESTAMP_SECONDS: &str = "leakwatch_last_sample_timestamp_seconds";
/// Age of each expensive figure group (`figures`).
pub(crate) const SAMPLE_AGE_SECONDS: &str = "leakwatch_sample_age_seconds";
/// Files that could not be read or parsed (`source`, `reason`).
pub const SAMPLE_ERRORS_TOTAL: &str = "leakwatch_sample_errors_total";

// Reload health.
/// Whether the last reload succeeded.
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "leakwatch_config_last_reload_successful";
/// The last good config load.
pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS: &str = "leakwatch_config_last_reload_success_timestamp_seconds";
/// Reload attempts (`result`).
pub const CONFIG_RELOADS_TOTAL: &str = "leakwatch_config_reloads_total";
/// Hash of the config file in use.
pub const CONFIG_HASH: &str = "leakwatch_config_hash";

// The host.
/// Host MemTotal.
pub const HOST_MEMORY_TOTAL_BYTES: &str = "leakwatch_host_memory_total_bytes";
/// Host MemAvailable.
pub(crate) const HOST_MEMORY_AVAILABLE_BYTES: &str = "leakwatch_host_memory_available_bytes";
/// Host MemFree (detail).
pub(crate) const HOST_MEMORY_FREE_BYTES: &str = "leakwatch_host_memory_free_bytes";
/// Host Buffers (detail).
pub(crate) const HOST_MEMORY_BUFFERS_BYTES: &str = "leakwatch_host_memory_buffers_bytes";
/// Host Cached (detail).
pub(crate) const HOST_MEMORY_CACHED_BYTES: &str = "leakwatch_host_memory_cached_bytes";
/// Host SwapTotal (detail).
pub(crate) const HOST_MEMORY_SWAP_TOTAL_BYTES: &str = "leakwatch_host_memory_swap_total_bytes";
/// Host SwapFree (detail).
pub(crate) const HOST_MEMORY_SWAP_FREE_BYTES: &str = "leakwatch_host_memory_swap_free_bytes";
/// Host memory PSI totals (`kind`: `some`, `full`).
pub(crate) const HOST_MEMORY_PRESSURE_SECONDS_TOTAL: &str = "leakwatch_host_memory_pressure_seconds_total";
/// Host memory PSI averages (`kind`, `window`).
pub(crate) const HOST_MEMORY_PRESSURE_RATIO: &str = "leakwatch_host_memory_pressure_ratio";

// The target group.
/// Target processes sampled.
pub const TARGET_PROCESSES: &str = "leakwatch_target_processes";
/// Processes that matched the selector.
pub const TARGET_PROCESSES_MATCHED: &str = "leakwatch_target_processes_matched";
/// Changes of the target's process set.
pub const TARGET_CHANGES_TOTAL: &str = "leakwatch_target_changes_total";
/// One series per sampled process (`pid`, `comm`).
pub const TARGET_PROCESS_INFO: &str = "leakwatch_target_process_info";
/// 1 while the target has a process.
pub const TARGET_UP: &str = "leakwatch_target_up";
/// OOM kills of the target (`detection`).
pub const TARGET_OOM_KILLS_TOTAL: &str = "leakwatch_target_oom_kills_total";
/// When leakwatch saw the target's last OOM kill.
pub const TARGET_LAST_OOM_KILL_TIMESTAMP_SECONDS: &str = "leakwatch_target_last_oom_kill_timestamp_seconds";
/// OOM reports held (detail).
pub const TARGET_OOM_REPORTS: &str = "leakwatch_target_oom_reports";
/// Exit watcher events dropped (detail).
pub(crate) const TARGET_OOM_WATCH_EVENTS_DROPPED_TOTAL: &str = "leakwatch_target_oom_watch_events_dropped_total";
/// The target group's memory by `kind` (see [`PROCESS_MEMORY_KINDS`]).
pub(crate) const PROCESS_MEMORY_BYTES: &str = "leakwatch_process_memory_bytes";
/// The `kind` values of [`PROCESS_MEMORY_BYTES`], each with the family it replaced (issue 21).
pub(crate) const PROCESS_MEMORY_KINDS: [(&str, &str); 8] = [
    ("resident", "leakwatch_process_resident_memory_bytes"),
    ("resident_anon", "leakwatch_process_resident_memory_anon_bytes"),
    ("resident_file", "leakwatch_process_resident_memory_file_bytes"),
    ("resident_shmem", "leakwatch_process_resident_memory_shmem_bytes"),
    ("pss", "leakwatch_process_pss_bytes"),
    ("swap", "leakwatch_process_swap_bytes"),
    ("resident_max", "leakwatch_process_resident_memory_max_bytes"),
    ("virtual", "leakwatch_process_virtual_memory_bytes"),
];
/// Threads of the target group.
pub const PROCESS_THREADS: &str = "leakwatch_process_threads";
/// Open fds of the target group.
pub const PROCESS_OPEN_FDS: &str = "leakwatch_process_open_fds";
/// Soft fd limit of the target group.
pub const PROCESS_MAX_FDS: &str = "leakwatch_process_max_fds";
/// CPU time of the target group.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "leakwatch_process_cpu_seconds_total";
/// Start time of the target group.
pub const PROCESS_START_TIME_SECONDS: &str = "leakwatch_process_start_time_seconds";
/// Time spent reading smaps_rollup.
pub const PSS_READ_SECONDS_TOTAL: &str = "leakwatch_pss_read_seconds_total";
/// The last smaps_rollup read time (detail).
pub const PSS_READ_DURATION_SECONDS: &str = "leakwatch_pss_read_duration_seconds";
/// smaps_rollup reads skipped (`reason`; detail).
pub(crate) const PSS_READS_SKIPPED_TOTAL: &str = "leakwatch_pss_reads_skipped_total";
/// Memory used / limit, as the OOM killer sees it (`basis`).
pub const MEMORY_UTILIZATION_RATIO: &str = "leakwatch_memory_utilization_ratio";
/// The used side of the utilization ratio.
pub const MEMORY_USED_BYTES: &str = "leakwatch_memory_used_bytes";
/// The limit side of the utilization ratio.
pub const MEMORY_LIMIT_BYTES: &str = "leakwatch_memory_limit_bytes";

// The target's cgroup.
/// The memory cgroup (`version`, `via`, `path`).
pub const CGROUP_INFO: &str = "leakwatch_cgroup_info";
/// The cgroup's memory by `kind` (see [`CGROUP_MEMORY_KINDS`]).
pub(crate) const CGROUP_MEMORY_BYTES: &str = "leakwatch_cgroup_memory_bytes";
/// The `kind` values of [`CGROUP_MEMORY_BYTES`], each with the family it replaced (issue 21).
pub(crate) const CGROUP_MEMORY_KINDS: [(&str, &str); 7] = [
    ("usage", "leakwatch_cgroup_memory_usage_bytes"),
    ("working_set", "leakwatch_cgroup_memory_working_set_bytes"),
    ("rss", "leakwatch_cgroup_memory_rss_bytes"),
    ("cache", "leakwatch_cgroup_memory_cache_bytes"),
    ("shmem", "leakwatch_cgroup_memory_shmem_bytes"),
    ("inactive_file", "leakwatch_cgroup_memory_inactive_file_bytes"),
    ("swap", "leakwatch_cgroup_memory_swap_bytes"),
];
/// The cgroup's memory limit.
pub const CGROUP_MEMORY_LIMIT_BYTES: &str = "leakwatch_cgroup_memory_limit_bytes";
/// OOM kills in the cgroup.
pub const CGROUP_MEMORY_OOM_KILLS_TOTAL: &str = "leakwatch_cgroup_memory_oom_kills_total";
/// Memory limit hits of the cgroup.
pub const CGROUP_MEMORY_LIMIT_HITS_TOTAL: &str = "leakwatch_cgroup_memory_limit_hits_total";
/// The cgroup's memory PSI totals (`kind`).
pub(crate) const CGROUP_MEMORY_PRESSURE_SECONDS_TOTAL: &str = "leakwatch_cgroup_memory_pressure_seconds_total";
/// The cgroup's memory PSI averages (`kind`, `window`).
pub const CGROUP_MEMORY_PRESSURE_RATIO: &str = "leakwatch_cgroup_memory_pressure_ratio";
/// Tasks in the cgroup (pids.current).
pub(crate) const CGROUP_PIDS: &str = "leakwatch_cgroup_pids";
/// pids.max of the cgroup.
pub(crate) const CGROUP_PIDS_MAX: &str = "leakwatch_cgroup_pids_max";

// Sockets and peers.
/// How each socket table was read (detail).
pub const CONN_SOURCE_INFO: &str = "leakwatch_conn_source_info";
/// Sockets held by the target (`protocol`, `state`).
pub const CONN_SOCKETS: &str = "leakwatch_conn_sockets";
/// Sockets in the target's netns (`protocol`, `state`).
pub const CONN_NETNS_SOCKETS: &str = "leakwatch_conn_netns_sockets";
/// Connections waiting in accept queues.
pub const CONN_ACCEPT_QUEUE_LENGTH: &str = "leakwatch_conn_accept_queue_length";
/// Listen backlogs.
pub const CONN_ACCEPT_QUEUE_MAX_LENGTH: &str = "leakwatch_conn_accept_queue_max_length";
/// Fill of the fullest accept queue.
pub const CONN_ACCEPT_QUEUE_UTILIZATION_RATIO: &str = "leakwatch_conn_accept_queue_utilization_ratio";
/// Sockets older than stale_after.
pub const CONN_STALE_SOCKETS: &str = "leakwatch_conn_stale_sockets";
/// The stale age (detail).
pub(crate) const CONN_STALE_AFTER_SECONDS: &str = "leakwatch_conn_stale_after_seconds";
/// Sockets in the first-seen map (detail).
pub const CONN_TRACKED_SOCKETS: &str = "leakwatch_conn_tracked_sockets";
/// The first-seen map's cap (detail).
pub(crate) const CONN_TRACKED_MAX_SOCKETS: &str = "leakwatch_conn_tracked_max_sockets";
/// Sockets left out of the full first-seen map (detail).
pub const CONN_UNTRACKED_SOCKETS: &str = "leakwatch_conn_untracked_sockets";
/// Duration of the last socket read (detail).
pub const CONN_SAMPLE_DURATION_SECONDS: &str = "leakwatch_conn_sample_duration_seconds";
/// Sockets to a peer group (`peer`, `state`).
pub const PEER_CONNECTIONS: &str = "leakwatch_peer_connections";
/// A peer group's connection limit.
pub const PEER_CONNECTIONS_LIMIT: &str = "leakwatch_peer_connections_limit";
/// Connections to a peer group / its limit.
pub const PEER_UTILIZATION_RATIO: &str = "leakwatch_peer_utilization_ratio";
/// Stale connections to a peer group.
pub const PEER_STALE_CONNECTIONS: &str = "leakwatch_peer_stale_connections";

// Descriptors and tasks.
/// Open fds by `kind`.
pub const FD_OPEN: &str = "leakwatch_fd_open";
/// Open fds / limit of the worst process.
pub const FD_UTILIZATION_RATIO: &str = "leakwatch_fd_utilization_ratio";
/// Descendants by `state`.
pub const TASK_DESCENDANTS: &str = "leakwatch_task_descendants";
/// Direct children.
pub const TASK_CHILDREN: &str = "leakwatch_task_children";
/// Descendants older than stale_after.
pub const TASK_STALE_DESCENDANTS: &str = "leakwatch_task_stale_descendants";
/// The stale age (detail).
pub const TASK_STALE_AFTER_SECONDS: &str = "leakwatch_task_stale_after_seconds";
/// Descendants in the first-seen map (detail).
pub const TASK_TRACKED: &str = "leakwatch_task_tracked";
/// The first-seen map's cap (detail).
pub(crate) const TASK_TRACKED_MAX: &str = "leakwatch_task_tracked_max";
/// Descendants left out of the full map (detail).
pub(crate) const TASK_UNTRACKED: &str = "leakwatch_task_untracked";
/// Context switches (`kind`).
pub const TASK_CONTEXT_SWITCHES_TOTAL: &str = "leakwatch_task_context_switches_total";

// Logs.
/// One series per log source.
pub const LOG_SOURCE_INFO: &str = "leakwatch_log_source_info";
/// Lines stored.
pub const LOG_LINES_TOTAL: &str = "leakwatch_log_lines_total";
/// Bytes read.
pub const LOG_BYTES_TOTAL: &str = "leakwatch_log_bytes_total";
/// Lines cut at max_line_bytes.
pub const LOG_LINES_CUT_TOTAL: &str = "leakwatch_log_lines_cut_total";
/// Rotations seen.
pub const LOG_ROTATIONS_TOTAL: &str = "leakwatch_log_rotations_total";
/// Truncations seen.
pub const LOG_TRUNCATIONS_TOTAL: &str = "leakwatch_log_truncations_total";
/// Failed reads.
pub const LOG_READ_ERRORS_TOTAL: &str = "leakwatch_log_read_errors_total";
/// Opens refused by the path guard.
pub const LOG_REFUSALS_TOTAL: &str = "leakwatch_log_refusals_total";
/// Bytes written but never read.
pub(crate) const LOG_LOST_BYTES_TOTAL: &str = "leakwatch_log_lost_bytes_total";
/// Losses of unknown size (`reason`).
pub const LOG_UNKNOWN_LOSSES_TOTAL: &str = "leakwatch_log_unknown_losses_total";
/// Lines lost (`reason`).
pub const LOG_LINES_DROPPED_TOTAL: &str = "leakwatch_log_lines_dropped_total";
/// Lines held.
pub const LOG_BUFFER_LINES: &str = "leakwatch_log_buffer_lines";
/// Bytes held, counted against max_bytes.
pub const LOG_BUFFER_BYTES: &str = "leakwatch_log_buffer_bytes";
/// The line cap.
pub const LOG_BUFFER_MAX_LINES: &str = "leakwatch_log_buffer_max_lines";
/// The byte cap.
pub const LOG_BUFFER_MAX_BYTES: &str = "leakwatch_log_buffer_max_bytes";
/// Live subscribers.
pub(crate) const LOG_SUBSCRIBERS: &str = "leakwatch_log_subscribers";
/// Bytes the buffer has allocated.
pub const LOG_BUFFER_ALLOCATED_BYTES: &str = "leakwatch_log_buffer_allocated_bytes";

// Alerts and the leak detector.
/// 1 while an alert fires.
pub const ALERT_ACTIVE: &str = "leakwatch_alert_active";
/// 1 while an alert is pending.
pub const ALERT_PENDING: &str = "leakwatch_alert_pending";
/// Transitions held (detail).
pub const ALERT_HISTORY_TRANSITIONS: &str = "leakwatch_alert_history_transitions";
/// The transition history's cap (detail).
pub const ALERT_HISTORY_MAX_TRANSITIONS: &str = "leakwatch_alert_history_max_transitions";
/// Samples in the detector's history (detail).
pub const TREND_HISTORY_SAMPLES: &str = "leakwatch_trend_history_samples";
/// The detector history's cap (detail).
pub(crate) const TREND_HISTORY_MAX_SAMPLES: &str = "leakwatch_trend_history_max_samples";
/// Share of the retention the history covers (detail).
pub(crate) const TREND_WINDOW_FILL_RATIO: &str = "leakwatch_trend_window_fill_ratio";
/// 1 when the detector judges the resource to grow.
pub(crate) const TREND_GROWING: &str = "leakwatch_trend_growing";
/// Seconds until the peaks reach the limit.
pub const TREND_TIME_TO_LIMIT_SECONDS: &str = "leakwatch_trend_time_to_limit_seconds";
/// Memory growth rate.
pub const TREND_MEMORY_SLOPE_BYTES_PER_SECOND: &str = "leakwatch_trend_memory_slope_bytes_per_second";
/// fd growth rate.
pub(crate) const TREND_FDS_SLOPE_PER_SECOND: &str = "leakwatch_trend_fds_slope_per_second";
/// Task growth rate.
pub(crate) const TREND_PIDS_SLOPE_PER_SECOND: &str = "leakwatch_trend_pids_slope_per_second";

// leakwatch's own structures and cleanups.
/// Entries of a structure (detail).
pub const STRUCTURE_ENTRIES: &str = "leakwatch_structure_entries";
/// Cap on a structure's entries (detail).
pub const STRUCTURE_MAX_ENTRIES: &str = "leakwatch_structure_max_entries";
/// Bytes allocated by a structure.
pub const STRUCTURE_ALLOCATED_BYTES: &str = "leakwatch_structure_allocated_bytes";
/// Cleanups (`trigger`).
pub const CLEANUPS_TOTAL: &str = "leakwatch_cleanups_total";
/// Bytes released by cleanups.
pub const CLEANUP_FREED_BYTES_TOTAL: &str = "leakwatch_cleanup_freed_bytes_total";
/// When the last cleanup started (detail).
pub const CLEANUP_LAST_TIMESTAMP_SECONDS: &str = "leakwatch_cleanup_last_timestamp_seconds";
/// Bytes the last cleanup released (detail).
pub(crate) const CLEANUP_LAST_FREED_BYTES: &str = "leakwatch_cleanup_last_freed_bytes";

// The HTTP server.
/// Open connections.
pub const HTTP_CONNECTIONS: &str = "leakwatch_http_connections";
/// The connection cap (detail).
pub(crate) const HTTP_CONNECTIONS_MAX: &str = "leakwatch_http_connections_max";
/// Idle connections (detail).
pub(crate) const HTTP_CONNECTIONS_IDLE: &str = "leakwatch_http_connections_idle";
/// The idle cap (detail).
pub(crate) const HTTP_CONNECTIONS_IDLE_MAX: &str = "leakwatch_http_connections_idle_max";
/// Connections closed by leakwatch (`reason`; detail).
pub(crate) const HTTP_CONNECTIONS_EVICTED_TOTAL: &str = "leakwatch_http_connections_evicted_total";
/// Connections refused at the cap (detail).
pub(crate) const HTTP_CONNECTIONS_REFUSED_TOTAL: &str = "leakwatch_http_connections_refused_total";
/// Header timeouts (detail).
pub(crate) const HTTP_HEADER_TIMEOUTS_TOTAL: &str = "leakwatch_http_header_timeouts_total";
/// Log page memory in use (detail).
pub(crate) const HTTP_PAGE_MEMORY_BYTES: &str = "leakwatch_http_page_memory_bytes";
/// The log page memory budget (detail).
pub const HTTP_PAGE_MEMORY_MAX_BYTES: &str = "leakwatch_http_page_memory_max_bytes";
/// Requests answered (`route`, `status_class`).
pub const HTTP_REQUESTS_TOTAL: &str = "leakwatch_http_requests_total";

// leakwatch's own process, under the client libraries' names.
/// Own RSS.
pub const OWN_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Own virtual size.
pub(crate) const OWN_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
/// Own open fds.
pub(crate) const OWN_OPEN_FDS: &str = "process_open_fds";
/// Own fd limit.
pub(crate) const OWN_MAX_FDS: &str = "process_max_fds";
/// Own start time.
pub const OWN_START_TIME_SECONDS: &str = "process_start_time_seconds";
/// Own threads.
pub(crate) const OWN_THREADS: &str = "process_threads";
/// Own CPU time.
pub(crate) const OWN_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
