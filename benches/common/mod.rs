//! Helpers the benches share: the run's iteration counts, median/p90, ratios, durations.
//! Each bench is its own crate and uses part of this module.

#![allow(dead_code)]

use std::time::Duration;

/// How a bench runs: measured (`cargo bench`, `--bench` passed) or as a smoke test under
/// `cargo test --all-targets`.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Whether this is a measuring run.
    pub benching: bool,
    /// Measured iterations: `LEAKWATCH_BENCH_ITERS` (at least `min`) or `default`; `smoke` in a smoke run.
    pub iterations: usize,
    /// Iterations before measuring: `warm_up`, or 1 in a smoke run.
    pub warm_up: usize,
}

impl Run {
    /// The counts of this run.
    pub fn from_args(default: usize, min: usize, warm_up: usize, smoke: usize) -> Run {
        let benching = std::env::args().any(|a| a == "--bench");
        let iterations = if benching {
            std::env::var("LEAKWATCH_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(min)
        } else {
            smoke
        };
        Run { benching, iterations, warm_up: if benching { warm_up } else { 1 } }
    }
}

/// The median and 90th percentile of some timings.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
}

impl Stats {
    /// Statistics of `v` (not empty).
    pub fn of(mut v: Vec<Duration>) -> Stats {
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
        Stats { median: at(0.5), p90: at(0.9) }
    }
}

/// `a ÷ b` with `decimals` decimals, `-` when `b` is zero.
pub fn ratio(a: Duration, b: Duration, decimals: usize) -> String {
    if b.is_zero() {
        return "-".into();
    }
    format!("{:.*}", decimals, a.as_secs_f64() / b.as_secs_f64())
}

/// `12.3 µs` or `4.56 ms`.
pub fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}
