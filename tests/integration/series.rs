//! Series per sidecar are bounded: the worst case (every family, the most log sources and peer
//! groups the config accepts, every socket table in every state, every alert instance) stays
//! under the limit docs/metrics.md states, and the cost of each source and peer group is what
//! it says.

use leakwatch::logs::ring::RingLimits;
use leakwatch::logs::{LogSource, SourceKind};
use leakwatch::snapshot::{PeerSample, Protocol, Snapshot, SockState};

use crate::promtool::{alert_state_for, full_snapshot, render_all, structures_of};
use leakwatch::metric_names as n;

/// docs/metrics.md's stated bound on the series one leakwatch exports.
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
    s.structures = structures_of(&s.logs);
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

/// docs/metrics.md with its whitespace runs (line breaks included) folded to one space.
fn metrics_doc() -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).expect("docs/metrics.md");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn series(s: &Snapshot) -> usize {
    let body = render_all(s, &alert_state_for(s));
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
    // The documented per-item figures.
    let doc = metrics_doc();
    for (what, n) in [("per log source", per_source), ("per peer group", per_peer)] {
        assert!(doc.contains(&format!("{n} series {what}")), "docs/metrics.md should say \"{n} series {what}\"");
    }
    assert!(doc.contains(&format!("at most {MAX_SERIES} series")), "docs/metrics.md states the bound");
}

/// The series count of a default start (no config, watching itself) that docs/metrics.md states.
fn documented_default_start() -> usize {
    let doc = metrics_doc();
    let (_, after) = doc.split_once("**A default start** (no config, watching itself) exports ").expect("the figure");
    after.split(' ').next().and_then(|n| n.parse().ok()).expect("a number of series")
}

#[test]
fn a_default_start_exports_the_documented_number_of_series() {
    let documented = documented_default_start();
    let lw = crate::support::Leakwatch::start(&[]);
    lw.wait_for(std::time::Duration::from_secs(20), "the first sample", |m| {
        m.get(n::TARGET_UP, &[("target", "leakwatch")]).is_some()
    });
    // What Prometheus scrapes: the default families, without `?detail=1`.
    let (status, body) = lw.get("/metrics");
    assert_eq!(status, 200, "{body}");
    let measured = body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    eprintln!("a default start exports {measured} series; docs/metrics.md says {documented}");
    // The host decides a few series (PSI, cgroup v1 or v2, sockets the scrape itself holds), so
    // the figure holds within a tenth; a family added or dropped moves it by more.
    let slack = (documented / 10).max(10);
    assert!(
        measured.abs_diff(documented) <= slack,
        "a default start exports {measured} series, docs/metrics.md says {documented} (± {slack}): update it"
    );
}
