//! Socket and peer-group families (`leakwatch_conn_*`, `leakwatch_peer_*`), rendered from
//! `snapshot.target.sockets`.

use std::collections::BTreeMap;

use super::family::Family;
use crate::metric_names as n;
use crate::snapshot::{Protocol, SocketSample};

/// Adds the socket and peer-group families of the target `target`.
pub(crate) fn conns(out: &mut Vec<Family>, target: &str, s: &SocketSample) {
    let t = [("target", target)];
    let mut f = Family::gauge(n::CONN_SOURCE_INFO, "How each socket table was read.").detail();
    for (protocol, method) in &s.methods {
        f.add(&[("target", target), ("protocol", protocol.as_str()), ("method", method.as_str())], 1.0);
    }
    out.push(f);
    let mut f = Family::gauge(n::CONN_SOCKETS, "Sockets held by the target group.");
    for ((protocol, state), n) in &s.held {
        f.add(&[("target", target), ("protocol", protocol.as_str()), ("state", state.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge(n::CONN_NETNS_SOCKETS, "Sockets in the target's netns.").detail();
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
    let mut f = Family::gauge(n::CONN_ACCEPT_QUEUE_LENGTH, "Connections waiting in the target's accept queues.");
    for (protocol, n) in &queued {
        f.add(&[("target", target), ("protocol", protocol.as_str())], *n as f64);
    }
    out.push(f);
    let mut f = Family::gauge(n::CONN_ACCEPT_QUEUE_MAX_LENGTH, "Listen backlogs of the target.");
    for (protocol, n) in &backlog {
        f.add_opt(&[("target", target), ("protocol", protocol.as_str())], *n);
    }
    out.push(f);
    let mut f = Family::gauge(n::CONN_ACCEPT_QUEUE_UTILIZATION_RATIO, "Fill of the target's fullest accept queue.");
    f.add_opt(&t, s.accept_queue_utilization);
    out.push(f);

    let mut f = Family::gauge(n::CONN_STALE_SOCKETS, "Target sockets older than stale_after.");
    f.add(&t, s.stale as f64);
    out.push(f);
    // The first-seen map's figures (on /status) and the read's cost: on a detail scrape.
    let detail: [(&str, &str, f64); 5] = [
        (n::CONN_STALE_AFTER_SECONDS, "Stale age of a socket.", s.stale_after.as_secs_f64()),
        (n::CONN_TRACKED_SOCKETS, "Sockets in the first-seen map.", s.tracked as f64),
        (n::CONN_TRACKED_MAX_SOCKETS, "The first-seen map's cap.", s.tracked_max as f64),
        (n::CONN_UNTRACKED_SOCKETS, "Sockets left out of the full first-seen map.", s.untracked as f64),
        (n::CONN_SAMPLE_DURATION_SECONDS, "Duration of the last socket read.", s.duration.as_secs_f64()),
    ];
    for (name, help, value) in detail {
        let mut f = Family::gauge(name, help).detail();
        f.add(&t, value);
        out.push(f);
    }

    let mut conns =
        Family::gauge(n::PEER_CONNECTIONS, "TCP sockets held by the target to a configured peer group, by state.");
    let mut limit = Family::gauge(n::PEER_CONNECTIONS_LIMIT, "The configured connection limit of a peer group.");
    let mut ratio = Family::gauge(n::PEER_UTILIZATION_RATIO, "Connections to a peer group (any state) / its limit.");
    let mut stale = Family::gauge(
        n::PEER_STALE_CONNECTIONS,
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
