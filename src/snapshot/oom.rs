//! What a snapshot says about the target's presence and its OOM kills: plain data that the OOM
//! tracker (`crate::oom`, owned by the sampler) fills in and `/metrics`, `/oom` and `/status` read.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

/// What a snapshot says about the target's presence and its OOM kills.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OomStatus {
    /// The `target` label value.
    pub target: String,
    /// Whether the target has a process (`leakwatch_target_up`).
    pub up: bool,
    /// leakwatch's own count of the target's OOM kills, both detections.
    pub kills_total: u64,
    /// The part of `kills_total` inferred from the host counter.
    pub inferred_total: u64,
    /// When leakwatch saw the last kill (Unix seconds).
    pub last_kill_at: Option<f64>,
    /// The reports' cap.
    pub max_reports: usize,
    /// The newest reports, newest first.
    #[serde(serialize_with = "reports_json")]
    pub reports: Vec<Arc<OomReport>>,
    /// Exit watcher events dropped because no pass took them in time (its queue is bounded).
    pub watch_events_dropped: u64,
}

fn reports_json<S: serde::Serializer>(reports: &[Arc<OomReport>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(reports.iter().map(|r| &**r))
}

impl OomStatus {
    /// Kills counted by `detection`.
    pub(crate) fn kills(&self, detection: Detection) -> u64 {
        match detection {
            Detection::Cgroup => self.kills_total - self.inferred_total,
            Detection::Inferred => self.inferred_total,
        }
    }
}

/// How a kill was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Detection {
    /// The cgroup's kernel counter rose.
    Cgroup,
    /// The counter could not be read when the target died, and the host's `oom_kill` rose.
    Inferred,
}

impl Detection {
    /// Both, in label order.
    pub(crate) const ALL: [Detection; 2] = [Detection::Cgroup, Detection::Inferred];

    /// Label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Cgroup => "cgroup",
            Self::Inferred => "inferred",
        }
    }
}

/// One sample's key figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct PremortemSample {
    /// When it was taken (Unix seconds).
    pub(crate) at: f64,
    /// Group RSS, bytes.
    pub(crate) rss_bytes: Option<u64>,
    /// Cgroup usage, bytes.
    pub(crate) cgroup_usage_bytes: Option<u64>,
    /// Cgroup working set, bytes.
    pub(crate) cgroup_working_set_bytes: Option<u64>,
    /// Cgroup limit, bytes.
    pub(crate) cgroup_limit_bytes: Option<u64>,
    /// Used ÷ limit on the alerting basis.
    pub(crate) utilization_ratio: Option<f64>,
    /// `cgroup_working_set` or `host_rss`.
    pub(crate) basis: Option<&'static str>,
    /// The memory leak detector's growth, bytes per second (its last judgement).
    pub(crate) trend_bytes_per_second: Option<f64>,
    /// The detector's predicted seconds until the limit.
    pub(crate) seconds_to_limit: Option<f64>,
    /// Open descriptors of the group.
    pub(crate) fds: Option<u64>,
    /// TCP/UDP/unix sockets held by the group.
    pub(crate) connections: Option<u64>,
    /// Processes of the group and their descendants.
    pub(crate) tasks: Option<u64>,
}

/// How a kill came to leakwatch's notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeenBy {
    /// The pidfd of a target process woke the watcher; the counter was read at once.
    Pidfd,
    /// The kernel notified a change of v2 `memory.events`.
    EventsNotify,
    /// The counter, read every 20 ms while the target was near its limit, rose.
    NearLimitPoll,
    /// The regular sampling pass read the counter.
    Sample,
}

impl SeenBy {
    /// Log value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pidfd => "pidfd",
            Self::EventsNotify => "events_notify",
            Self::NearLimitPoll => "near_limit_poll",
            Self::Sample => "sample",
        }
    }
}

/// One OOM kill (or several seen at once) with what preceded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OomReport {
    /// When leakwatch saw it (Unix seconds).
    pub(crate) at: f64,
    /// The `target` label value.
    pub(crate) target: String,
    /// How it was counted.
    pub(crate) detection: Detection,
    /// How it was seen.
    pub(crate) seen_by: SeenBy,
    /// Kills this report covers.
    pub(crate) kills: u64,
    /// The processes that died (when known).
    pub(crate) pids: Vec<i32>,
    /// The cgroup path as `/proc/PID/cgroup` gave it.
    pub(crate) cgroup: Option<String>,
    /// The samples before the kill, oldest first.
    pub(crate) samples: Vec<PremortemSample>,
    /// The last lines of each log source (lossy UTF-8, cut at `oom::report::REPORT_LINE_BYTES`).
    pub(crate) logs: BTreeMap<String, Vec<String>>,
}
