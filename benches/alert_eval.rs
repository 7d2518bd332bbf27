//! What one alert evaluation costs with full leak-detector histories (the default 240 samples for
//! each of memory, fds and tasks, a new sample stored every pass: the worst case), measured in the
//! same run against two baselines: a least-squares fit over the same three windows (what
//! `predict_linear` computes) and one `/metrics` render of the same snapshot.
//!
//! ```text
//! cargo bench --bench alert_eval
//! ```
//!
//! Iterations default to 2000 after 100 warm-up passes; `LEAKWATCH_BENCH_ITERS` overrides the
//! count. Without `--bench` (under `cargo test --all-targets`) it runs a few as a smoke test.

use std::time::{Duration, Instant, SystemTime};

use leakwatch::alert::history::SampleRing;
use leakwatch::alert::leak::least_squares;
use leakwatch::alert::rules::{defaults, DEFAULT_WINDOW};
use leakwatch::alert::Engine;
use leakwatch::info::StaticInfo;
use leakwatch::metrics::Scrape;
use leakwatch::snapshot::{Basis, CgroupVersion, PidsSample, ProcessMemory, Snapshot, Utilization};

const DEFAULT_ITERATIONS: usize = 2000;
const WARM_UP: usize = 100;
const SMOKE_ITERATIONS: usize = 5;
/// Seconds between snapshots: the history's spacing, so every pass stores a sample.
const STEP: u64 = 15;

fn snapshot(i: u64) -> Snapshot {
    let mut s = Snapshot::empty("bench");
    s.seq = i + 1;
    s.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + STEP * i);
    // A slow leak with some noise from a cheap hash, so the detector does real work.
    let wobble = (i.wrapping_mul(2_654_435_761) % 1000) << 10;
    let used = (300 << 20) + (i << 16) + wobble;
    s.target.utilization = Some(Utilization { basis: Basis::CgroupWorkingSet, used, limit: 1 << 30 });
    s.target.memory =
        Some(ProcessMemory { open_fds: Some(100 + i / 4 + wobble % 7), max_fds: Some(65_536), ..Default::default() });
    s.target.pids =
        Some(PidsSample { version: CgroupVersion::V2, current: Some(50 + i / 8 + wobble % 3), max: Some(4096) });
    s
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let iterations = if benching {
        std::env::var("LEAKWATCH_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ITERATIONS).max(10)
    } else {
        SMOKE_ITERATIONS
    };
    let warm_up = if benching { WARM_UP } else { 1 };
    let info = StaticInfo::default();
    let mut engine = Engine::new(defaults());
    // The same three series in rings of the same caps, for the least-squares baseline.
    let mut rings = [SampleRing::new(DEFAULT_WINDOW), SampleRing::new(DEFAULT_WINDOW), SampleRing::new(DEFAULT_WINDOW)];
    let feed = |rings: &mut [SampleRing; 3], s: &Snapshot| {
        let t = s.taken_at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let values = [
            s.target.utilization.map(|u| u.used as f64),
            s.target.memory.and_then(|m| m.open_fds).map(|v| v as f64),
            s.target.pids.and_then(|p| p.current).map(|v| v as f64),
        ];
        for (ring, v) in rings.iter_mut().zip(values) {
            ring.push(t, v.unwrap_or(0.0));
        }
        t
    };
    // Fill the histories (240 samples each) before measuring.
    let mut i = 0;
    while i < 300 {
        let s = snapshot(i);
        feed(&mut rings, &s);
        engine.evaluate(&s);
        i += 1;
    }
    let (mut eval, mut lsq, mut render) = (Vec::new(), Vec::new(), Vec::new());
    let mut sink = 0.0;
    for n in 0..warm_up + iterations {
        let s = snapshot(i);
        i += 1;
        let t = feed(&mut rings, &s);
        let started = Instant::now();
        let state = engine.evaluate(&s);
        let e = started.elapsed();
        let started = Instant::now();
        for ring in &rings {
            sink += least_squares(&ring.points(), t).map_or(0.0, |(slope, _)| slope);
        }
        let l = started.elapsed();
        let started = Instant::now();
        let body = Scrape { alerts: Some(&state), ..Scrape::new(&s, &info) }.render();
        let r = started.elapsed();
        sink += body.len() as f64 + state.trends.len() as f64;
        if n >= warm_up {
            eval.push(e);
            lsq.push(l);
            render.push(r);
        }
    }
    let (eval, lsq, render) = (stats(eval), stats(lsq), stats(render));
    println!(
        "alert_eval: {iterations} iterations after {warm_up} warm-up{} (checksum {sink:.0})",
        if benching { "" } else { " (smoke run: pass --bench, i.e. `cargo bench --bench alert_eval`, to measure)" }
    );
    println!("{:<44} {:>10} {:>10} {:>12} {:>12}", "operation", "median", "p90", "× lsq (med)", "× render (med)");
    for (name, st) in [
        ("least squares over the 3 windows (baseline)", lsq),
        ("metrics render with alerts (baseline)", render),
        ("Engine::evaluate (all rules, 3 × 240 samples)", eval),
    ] {
        println!(
            "{name:<44} {:>10} {:>10} {:>12.2} {:>12.2}",
            micros(st.0),
            micros(st.1),
            st.0.as_secs_f64() / lsq.0.as_secs_f64().max(1e-12),
            st.0.as_secs_f64() / render.0.as_secs_f64().max(1e-12)
        );
    }
}

/// (median, p90).
fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 9 / 10).min(v.len() - 1)])
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
