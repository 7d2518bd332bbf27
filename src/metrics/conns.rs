//! Socket and peer-group families (`leakwatch_conn_*`, `leakwatch_peer_*`), rendered from
//! `snapshot.target.sockets`.

use std::collections::BTreeMap;

use super::family::{gauge_rows, Family};
use crate::snapshot::{Protocol, SocketSample};

/// Adds the socket and peer-group families of the target `target`.
pub fn conns(out: &mut Vec<Family>, target: &str, s: &SocketSample) {
    let t = [("target", target)];
    let mut f = Family::gauge("leakwatch_conn_source_info", "How each socket table was read.");
    for (protocol, method) in &s.methods {
        f.add(&[("target", target), ("protocol", protocol.as_str()), ("method", method.as_str())], 1.0);
    }
    out.push(f);
    let mut f = Family::gauge("leakwatch_conn_sockets", "Sockets held by the target group.");
    for ((protocol, state), n) in &s.held {
        f.add(&[("target", target), ("protocol", protocol.as_str()), ("state", state.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge("leakwatch_conn_netns_sockets", "Sockets in the target's netns.");
    for ((protocol, state), n) in &s.netns {
        f.add(&[("target", target), ("protocol", protocol.as_str()), ("state", state.as_str())], *n as f64);
    }
    out.push(f);

    let mut queued: BTreeMap<Protocol, u64> = BTreeMap::new();
    let mut backlog: BTreeMap<Protocol, Option<u64>> = BTreeMap::new();
    for l in &s.listeners {
        *queued.entry(l.protocol).or_insert(0) += l.queued;
        let b = backlog.entry(l.protocol).or_insert(Some(0));
        *b = b.zip(l.backlog).map(|(a, b)| a + b);
    }
    let mut f =
        Family::gauge("leakwatch_conn_accept_queue_length", "Connections waiting in the target's accept queues.");
    for (protocol, n) in &queued {
        f.add(&[("target", target), ("protocol", protocol.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge("leakwatch_conn_accept_queue_max_length", "Listen backlogs of the target.");
    for (protocol, n) in &backlog {
        f.add_opt(&[("target", target), ("protocol", protocol.as_str())], *n);
    }
    out.push(f);
    let mut f =
        Family::gauge("leakwatch_conn_accept_queue_utilization_ratio", "Fill of the target's fullest accept queue.");
    f.add_opt(&t, s.accept_queue_utilization);
    out.push(f);

    let gauges: [(&str, &str, f64); 5] = [
        ("leakwatch_conn_stale_sockets", "Target sockets older than stale_after.", s.stale as f64),
        ("leakwatch_conn_stale_after_seconds", "Stale age of a socket.", s.stale_after.as_secs_f64()),
        ("leakwatch_conn_tracked_sockets", "Sockets in the first-seen map.", s.tracked as f64),
        ("leakwatch_conn_tracked_max_sockets", "The first-seen map's cap.", s.tracked_max as f64),
        ("leakwatch_conn_untracked_sockets", "Sockets left out of the full first-seen map.", s.untracked as f64),
    ];
    gauge_rows(out, &t, gauges.map(|(name, help, value)| (name, help, Some(value))));
    let mut f = Family::gauge("leakwatch_conn_sample_duration_seconds", "Duration of the last socket read.");
    f.add(&t, s.duration.as_secs_f64());
    out.push(f);

    let mut conns = Family::gauge(
        "leakwatch_peer_connections",
        "TCP sockets held by the target to a configured peer group, by state.",
    );
    let mut limit =
        Family::gauge("leakwatch_peer_connections_limit", "The configured connection limit of a peer group.");
    let mut ratio =
        Family::gauge("leakwatch_peer_utilization_ratio", "Connections to a peer group (any state) / its limit.");
    let mut stale = Family::gauge(
        "leakwatch_peer_stale_connections",
        "Connections to a peer group first seen longer ago than connections.stale_after.",
    );
    for p in &s.peers {
        let labels = [("target", target), ("peer", p.name.as_str())];
        for (state, n) in &p.by_state {
            conns.add(&[("target", target), ("peer", &p.name), ("state", state.as_str())], *n as f64);
        }
        limit.add(&labels, p.limit as f64);
        ratio.add(&labels, p.utilization);
        stale.add(&labels, p.stale as f64);
    }
    out.extend([conns, limit, ratio, stale]);
}
