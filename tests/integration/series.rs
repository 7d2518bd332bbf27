//! Series per sidecar are bounded: the worst case (every family, the most log sources and peer
//! groups the config accepts, every socket table in every state, every alert instance) stays
//! under the limit the README states, and the cost of each source and peer group is what the
//! README says.

use leakwatch::logs::ring::RingLimits;
use leakwatch::logs::{LogSource, SourceKind};
use leakwatch::metrics::render_with_alerts;
use leakwatch::snapshot::{PeerSample, Protocol, Snapshot, SockState};

use crate::promtool::{alert_state_for, full_info, full_snapshot};

/// The README's stated bound on the series one leakwatch exports.
const MAX_SERIES: usize = 2500;
/// The config's caps.
const MAX_LOG_SOURCES: usize = 64;
const MAX_PEERS: usize = 32;

fn with(sources: usize, peers: usize, all_states: bool) -> Snapshot {
    let mut s = full_snapshot();
    let limits = RingLimits { max_lines: 10, max_bytes: 4096, max_line_bytes: 64, max_subscribers: 1 };
    s.logs = (0..sources)
        .map(|i| {
            let src = LogSource::new(
                format!("source-{i}"),
                SourceKind::File { pattern: format!("/var/log/{i}.log") },
                limits,
            );
            src.ring.push(&[b'x'; 64], false);
            src.stats()
        })
        .collect();
    let sockets = s.target.sockets.as_mut().expect("the full snapshot has sockets");
    let template = sockets.peers.first().cloned().expect("the full snapshot has a peer group");
    sockets.peers = (0..peers)
        .map(|i| PeerSample {
            name: format!("peer-{i}"),
            by_state: if all_states {
                SockState::ALL.iter().map(|st| (*st, 1)).collect()
            } else {
                template.by_state.clone()
            },
            ..template.clone()
        })
        .collect();
    if all_states {
        let every: Vec<(Protocol, SockState)> =
            Protocol::ALL.iter().flat_map(|p| SockState::ALL.iter().map(move |st| (*p, *st))).collect();
        sockets.held = every.iter().map(|k| (*k, 1)).collect();
        sockets.netns = every.iter().map(|k| (*k, 1)).collect();
    }
    s
}

fn series(s: &Snapshot) -> usize {
    let body = render_with_alerts(s, Some(&alert_state_for(s)), &full_info()) + &crate::promtool::http_render();
    body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count()
}

#[test]
fn series_per_sidecar_stay_under_the_documented_bound() {
    let base = series(&with(0, 0, false));
    let per_source = series(&with(1, 0, false)) - base;
    let per_peer = series(&with(0, 1, false)) - base;
    let worst = series(&with(MAX_LOG_SOURCES, MAX_PEERS, true));
    eprintln!(
        "series: {base} with no log source and no peer group; +{per_source} per log source, +{per_peer} per peer \
         group; worst case ({MAX_LOG_SOURCES} sources, {MAX_PEERS} peer groups, every table and state): {worst}"
    );
    assert!(worst <= MAX_SERIES, "{worst} series in the worst case, above the stated {MAX_SERIES}");
    // The README's per-item figures.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    for (what, n) in [("per log source", per_source), ("per peer group", per_peer)] {
        assert!(readme.contains(&format!("{n} series {what}")), "README.md should say \"{n} series {what}\"");
    }
    assert!(readme.contains(&format!("at most {MAX_SERIES} series")), "README.md states the bound");
}
