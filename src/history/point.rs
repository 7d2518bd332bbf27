//! One history point: the key figures of one snapshot, stored compactly (fixed-size integers and
//! `f32`, absent values as sentinels) and written out as JSON with `null` for what was not read.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::alert::AlertState;
use crate::snapshot::{Basis, Snapshot, SockState};

/// A byte figure that was not read.
const NO_BYTES: u64 = u64::MAX;
/// A count that was not read.
const NO_COUNT: u32 = u32::MAX;

/// The key figures of one snapshot (about 140 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// The snapshot's sequence number (the paging cursor).
    pub(crate) seq: u64,
    /// When it was taken, Unix seconds.
    pub(crate) at: f64,
    rss: u64,
    cgroup_usage: u64,
    cgroup_limit: u64,
    used: u64,
    limit: u64,
    /// `f32::NAN` when there is no utilization.
    utilization: f32,
    /// `f32::NAN` when the leak detector predicts no crossing.
    seconds_to_limit: f32,
    /// Lines per second stored by every log source since the previous point.
    log_lines_per_second: f32,
    fds: u32,
    max_fds: u32,
    threads: u32,
    children: u32,
    /// Held sockets by state (every protocol), in [`SockState::ALL`] order.
    connections: [u32; SockState::ALL.len()],
    basis: Option<Basis>,
}

fn bytes(v: Option<u64>) -> u64 {
    v.unwrap_or(NO_BYTES)
}

fn count(v: Option<u64>) -> u32 {
    v.map_or(NO_COUNT, |n| u32::try_from(n).unwrap_or(NO_COUNT - 1))
}

impl Point {
    /// The figures of `snapshot`, with the memory prediction of `alerts` (the engine's latest
    /// evaluation) and `log_lines_per_second` computed by the caller.
    pub(crate) fn of(snapshot: &Snapshot, alerts: &AlertState, log_lines_per_second: f64) -> Self {
        let target = &snapshot.target;
        let memory = target.memory.as_ref();
        let cgroup = target.cgroup.as_ref();
        let mut connections = [0u32; SockState::ALL.len()];
        if let Some(sockets) = &target.sockets {
            for ((_, state), n) in &sockets.held {
                if let Some(i) = SockState::ALL.iter().position(|s| s == state) {
                    connections[i] = connections[i].saturating_add(u32::try_from(*n).unwrap_or(u32::MAX));
                }
            }
        }
        let seconds_to_limit = alerts
            .trends
            .iter()
            .filter(|t| t.resource == "memory")
            .filter_map(|t| t.trend.seconds_to_limit)
            .fold(f64::NAN, f64::min);
        Self {
            seq: snapshot.seq,
            at: crate::seconds::unix(snapshot.taken_at),
            rss: bytes(memory.and_then(|m| m.rss)),
            cgroup_usage: bytes(cgroup.and_then(|c| c.usage)),
            cgroup_limit: bytes(cgroup.and_then(|c| c.limit)),
            used: bytes(target.utilization.map(|u| u.used)),
            limit: bytes(target.utilization.map(|u| u.limit)),
            utilization: target.utilization.map_or(f32::NAN, |u| u.ratio() as f32),
            seconds_to_limit: seconds_to_limit as f32,
            log_lines_per_second: log_lines_per_second as f32,
            fds: count(memory.and_then(|m| m.open_fds)),
            max_fds: count(memory.and_then(|m| m.max_fds)),
            threads: count(memory.and_then(|m| m.threads)),
            children: count(target.tasks.as_ref().map(|t| t.children)),
            connections,
            basis: target.utilization.map(|u| u.basis),
        }
    }
}

fn opt_bytes(v: u64) -> Option<u64> {
    (v != NO_BYTES).then_some(v)
}

fn opt_count(v: u32) -> Option<u32> {
    (v != NO_COUNT).then_some(v)
}

fn opt_f32(v: f32) -> Option<f64> {
    // Through the shortest decimal form, so 0.8 stays 0.8 and not 0.800000011920929.
    v.is_finite().then(|| v.to_string().parse().unwrap_or(f64::from(v)))
}

/// Held sockets by state, only the states with any.
struct Connections<'a>(&'a [u32; SockState::ALL.len()]);

impl Serialize for Connections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let held = || SockState::ALL.iter().zip(self.0.iter()).filter(|(_, n)| **n > 0);
        let mut map = s.serialize_map(Some(held().count()))?;
        for (state, n) in held() {
            map.serialize_entry(state.as_str(), n)?;
        }
        map.end()
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut p = s.serialize_struct("Point", 17)?;
        p.serialize_field("seq", &self.seq)?;
        p.serialize_field("at", &self.at)?;
        p.serialize_field("rss_bytes", &opt_bytes(self.rss))?;
        p.serialize_field("cgroup_usage_bytes", &opt_bytes(self.cgroup_usage))?;
        p.serialize_field("cgroup_limit_bytes", &opt_bytes(self.cgroup_limit))?;
        p.serialize_field("basis", &self.basis.map(Basis::as_str))?;
        p.serialize_field("used_bytes", &opt_bytes(self.used))?;
        p.serialize_field("limit_bytes", &opt_bytes(self.limit))?;
        p.serialize_field("utilization", &opt_f32(self.utilization))?;
        p.serialize_field("seconds_to_limit", &opt_f32(self.seconds_to_limit))?;
        p.serialize_field("open_fds", &opt_count(self.fds))?;
        p.serialize_field("max_fds", &opt_count(self.max_fds))?;
        p.serialize_field("threads", &opt_count(self.threads))?;
        p.serialize_field("children", &opt_count(self.children))?;
        p.serialize_field("connections", &Connections(&self.connections))?;
        p.serialize_field("log_lines_per_second", &opt_f32(self.log_lines_per_second))?;
        p.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ProcessMemory, Protocol, SocketSample, Utilization};

    #[test]
    fn a_point_keeps_the_key_figures_and_writes_unread_ones_as_null() {
        let mut s = Snapshot::empty("app");
        s.seq = 7;
        s.target.memory =
            Some(ProcessMemory { rss: Some(300), threads: Some(4), open_fds: Some(9), ..Default::default() });
        s.target.utilization = Some(Utilization { basis: Basis::HostRss, used: 300, limit: 1000 });
        let mut sockets = SocketSample::default();
        sockets.held.insert((Protocol::Tcp, SockState::Established), 2);
        sockets.held.insert((Protocol::Tcp6, SockState::Established), 3);
        sockets.held.insert((Protocol::Tcp, SockState::CloseWait), 1);
        s.target.sockets = Some(sockets);
        let v = serde_json::to_value(Point::of(&s, &AlertState::default(), 12.5)).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["rss_bytes"], 300);
        assert_eq!(v["utilization"], 0.3);
        assert_eq!(v["basis"], "host_rss");
        assert_eq!(v["cgroup_limit_bytes"], serde_json::Value::Null);
        assert_eq!(v["seconds_to_limit"], serde_json::Value::Null);
        assert_eq!(v["max_fds"], serde_json::Value::Null);
        assert_eq!((v["threads"].clone(), v["open_fds"].clone()), (4.into(), 9.into()));
        assert_eq!(v["connections"], serde_json::json!({"established": 5, "close_wait": 1}));
        assert_eq!(v["log_lines_per_second"], 12.5);
        assert!(std::mem::size_of::<Point>() <= 160, "{}", std::mem::size_of::<Point>());
    }
}
