//! The leak detector on generated series: steady leaks of several rates (with noise and with a
//! GC sawtooth on top), and three series without a leak (a GC sawtooth, a one-off step, a
//! warm-up that levels off). Each series is fed sample by sample through the same bounded
//! history the engine uses; the built-in detector and a plain least-squares line (what
//! `predict_linear` fits) are judged on the same windows.

use std::time::Duration;

use super::*;
use crate::alert::history::SampleRing;

const LIMIT: f64 = 1024.0 * 1024.0 * 1024.0;
/// The sampling interval of the series (leakwatch's default).
const STEP: f64 = 5.0;
/// The detector is asked once a minute.
const EVERY: f64 = 60.0;
/// How long each series runs.
const DURATION: f64 = 4.0 * 3600.0;
/// The default warning condition: the limit is predicted within horizon (1 h) + `for` (1 h).
const LOOKAHEAD: f64 = 2.0 * 3600.0;

fn window() -> WindowLimits {
    WindowLimits { retention: Duration::from_secs(3600), max_samples: 240, min_fill: 0.5 }
}

/// A small deterministic generator (xorshift64*), so the series are the same on every run.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Roughly normal, mean 0, standard deviation 1 (sum of 12 uniforms − 6).
    fn gauss(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A series' value at t (seconds from its start), given the noise generator.
type ValueFn = Box<dyn Fn(f64, &mut Noise) -> f64>;
/// A leak's true mean level at t.
type LevelFn = Box<dyn Fn(f64) -> f64>;

/// A generated series: its value at time t (seconds from its start) and, for a leak, the true
/// growth rate (bytes/s) and the true mean level, from which the true time to the limit follows.
struct Series {
    name: &'static str,
    value: ValueFn,
    /// (rate, mean level at t) for a leak.
    truth: Option<(f64, LevelFn)>,
}

fn gb(x: f64) -> f64 {
    x * LIMIT
}

/// A GC sawtooth: rises linearly by `amp` over `period`, then drops back.
fn sawtooth(t: f64, period: f64, amp: f64) -> f64 {
    amp * (t / period).fract()
}

fn steady_leak(name: &'static str, start: f64, hours_to_full: f64, noise: f64) -> Series {
    let rate = gb(1.0 - start) / (hours_to_full * 3600.0);
    Series {
        name,
        value: Box::new(move |t, n| gb(start) + rate * t + gb(noise) * n.gauss()),
        truth: Some((rate, Box::new(move |t| gb(start) + rate * t))),
    }
}

fn series() -> Vec<Series> {
    let gc_rate = gb(0.5) / (5.0 * 3600.0);
    vec![
        steady_leak("leak, full in 1.5 h", 0.30, 1.5, 0.005),
        steady_leak("leak, full in 3 h", 0.30, 3.0, 0.005),
        steady_leak("leak, full in 8 h", 0.40, 8.0, 0.005),
        steady_leak("leak, full in 24 h", 0.50, 24.0, 0.002),
        Series {
            name: "leak under a GC sawtooth",
            value: Box::new(move |t, n| gb(0.3) + gc_rate * t + sawtooth(t, 240.0, gb(0.08)) + gb(0.005) * n.gauss()),
            truth: Some((gc_rate, Box::new(move |t| gb(0.3) + gb(0.04) + gc_rate * t))),
        },
        Series {
            name: "GC sawtooth, no growth",
            value: Box::new(|t, n| gb(0.55) + sawtooth(t, 420.0, gb(0.2)) + gb(0.005) * n.gauss()),
            truth: None,
        },
        Series {
            name: "one-off step",
            value: Box::new(|t, n| gb(0.5) + if t > 5400.0 { gb(0.25) } else { 0.0 } + gb(0.005) * n.gauss()),
            truth: None,
        },
        Series {
            name: "warm-up that plateaus",
            value: Box::new(|t, n| gb(0.3) + gb(0.45) * (1.0 - (-t / 480.0).exp()) + gb(0.005) * n.gauss()),
            truth: None,
        },
    ]
}

/// One evaluation of both detectors.
struct Eval {
    t: f64,
    fill: f64,
    robust: Trend,
    /// Least squares: (slope, level now); `None` before two points.
    ols: Option<(f64, f64)>,
}

impl Eval {
    fn ols_seconds_to_limit(&self) -> Option<f64> {
        self.ols.filter(|(s, _)| *s > 0.0).map(|(s, level)| ((LIMIT - level) / s).max(0.0))
    }
}

fn run(series: &Series, seed: u64) -> Vec<Eval> {
    let mut noise = Noise::new(seed);
    let mut ring = SampleRing::new(window());
    let mut out = Vec::new();
    let mut next_eval = 0.0;
    let mut t = 0.0;
    while t <= DURATION {
        ring.push(t, (series.value)(t, &mut noise));
        if t >= next_eval {
            let points = ring.points();
            let robust = judge(&points, t, LIMIT, ring.limits());
            out.push(Eval { t, fill: robust.fill, robust, ols: least_squares(&points, t) });
            next_eval += EVERY;
        }
        t += STEP;
    }
    out
}

fn true_seconds_to_limit(series: &Series, t: f64) -> Option<f64> {
    let (rate, level) = series.truth.as_ref()?;
    Some((LIMIT - level(t)) / rate)
}

fn within(estimate: Option<f64>, truth: f64, tolerance: f64) -> bool {
    estimate.is_some_and(|e| (e - truth).abs() <= tolerance * truth)
}

/// Evaluations where the true level is still below 90 % (later the limit is minutes away and
/// the series would be OOM-killed anyway).
fn judged(series: &Series, evals: &[Eval]) -> Vec<usize> {
    (0..evals.len())
        .filter(|&i| series.truth.as_ref().is_none_or(|(_, level)| level(evals[i].t) <= 0.9 * LIMIT))
        .collect()
}

#[test]
fn steady_leaks_are_detected_with_the_time_to_limit_within_20_percent_once_the_window_is_full() {
    for s in series().iter().filter(|s| s.truth.is_some()) {
        for seed in 1..=2 {
            let evals = run(s, seed);
            let full: Vec<usize> = judged(s, &evals).into_iter().filter(|&i| evals[i].fill >= 1.0).collect();
            assert!(full.len() >= 10, "{}: too few evaluations with a full window", s.name);
            for i in full {
                let e = &evals[i];
                let truth = true_seconds_to_limit(s, e.t).unwrap();
                assert!(
                    e.robust.growing,
                    "{} (seed {seed}) at {:.0} min: not judged growing: {:?}",
                    s.name,
                    e.t / 60.0,
                    e.robust
                );
                assert!(
                    within(e.robust.seconds_to_limit, truth, 0.2),
                    "{} (seed {seed}) at {:.0} min: time to limit {:?} s, truth {truth:.0} s",
                    s.name,
                    e.t / 60.0,
                    e.robust.seconds_to_limit
                );
            }
        }
    }
}

#[test]
fn a_gc_sawtooth_a_one_off_step_and_a_warm_up_raise_no_leak_alert() {
    for s in series().iter().filter(|s| s.truth.is_none()) {
        for seed in 1..=3 {
            for e in run(s, seed) {
                let alert = e.robust.growing && e.robust.seconds_to_limit.is_some_and(|ttl| ttl < LOOKAHEAD);
                assert!(!alert, "{} (seed {seed}) at {:.0} min: false leak alert {:?}", s.name, e.t / 60.0, e.robust);
            }
        }
    }
}

#[test]
fn the_detector_waits_for_the_minimum_window_fill() {
    let s = steady_leak("fast", 0.3, 1.0, 0.0);
    for e in run(&s, 1) {
        if e.t < 1800.0 - STEP {
            assert!(!e.robust.ready && e.robust.slope.is_none(), "judged at {} s with fill {}", e.t, e.fill);
        }
    }
}

#[test]
fn theil_sen_ignores_outliers_that_least_squares_follows() {
    let mut points: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 2.0 * i as f64)).collect();
    points[19].1 = 1000.0;
    points[3].1 = -500.0;
    assert_eq!(theil_sen(&points), Some(2.0));
    let (ols, _) = least_squares(&points, 19.0).unwrap();
    assert!(ols > 10.0, "least squares is pulled by the outliers: {ols}");
    assert_eq!(theil_sen(&[(1.0, 1.0)]), None);
    assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)], 1.0), None);
}

/// Seeds (noise realisations) per series in the comparison.
const SEEDS: u64 = 3;

/// Prints how the two detectors compare on every series: false alerts (evaluations where the
/// warning condition "limit within 2 h" holds on a series without a leak, and the longest run
/// of them, which a `for` would have to outlast) and detection delay (from the start of a leak
/// to the first evaluation from which on the estimate stays within ±20 % of the truth).
/// Run with `cargo test --lib comparison -- --nocapture`.
#[test]
fn comparison_with_least_squares() {
    println!(
        "\n{:<36} | {:>22} | {:>22}\n{:<36} | {:>22} | {:>22}",
        "series (4 h, 5 s samples, 3 seeds)",
        "Theil-Sen + checks",
        "least squares",
        "",
        "false alerts / delay",
        "false alerts / delay"
    );
    let mut totals = [0usize; 2];
    for s in series() {
        let mut cells = Vec::new();
        for (k, ttl) in [
            (0, &(|e: &Eval| e.robust.seconds_to_limit) as &dyn Fn(&Eval) -> Option<f64>),
            (1, &|e: &Eval| e.ols_seconds_to_limit()),
        ] {
            let mut false_alerts = 0;
            let mut longest = 0;
            let mut delays = Vec::new();
            for seed in 1..=SEEDS {
                let evals = run(&s, seed);
                let idx = judged(&s, &evals);
                if s.truth.is_some() {
                    // The first evaluation after which every estimate is within ±20 %.
                    let good: Vec<bool> = idx
                        .iter()
                        .map(|&i| within(ttl(&evals[i]), true_seconds_to_limit(&s, evals[i].t).unwrap(), 0.2))
                        .collect();
                    let first_stable = (0..good.len()).find(|&j| good[j..].iter().all(|g| *g));
                    delays.push(first_stable.map(|j| evals[idx[j]].t));
                } else {
                    let mut run_len = 0;
                    for &i in &idx {
                        if ttl(&evals[i]).is_some_and(|t| t < LOOKAHEAD) {
                            false_alerts += 1;
                            run_len += 1;
                            longest = longest.max(run_len);
                        } else {
                            run_len = 0;
                        }
                    }
                }
            }
            totals[k] += false_alerts;
            cells.push(if s.truth.is_some() {
                let text: Vec<String> =
                    delays.iter().map(|d| d.map_or("never".to_owned(), |d| format!("{:.0}", d / 60.0))).collect();
                format!("delay {} min", text.join("/"))
            } else {
                format!("{false_alerts} (longest {longest} min)")
            });
        }
        println!("{:<36} | {:>22} | {:>22}", s.name, cells[0], cells[1]);
    }
    println!("false alerting evaluations in total: Theil-Sen {}, least squares {}", totals[0], totals[1]);
}
