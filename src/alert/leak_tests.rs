//! The detector's unit tests: the examples of the issue that asked for significance, hysteresis,
//! the fast path and the peaks' projection, and the least-squares baseline.

use std::time::Duration;

use super::*;
use crate::alert::history::SampleRing;

fn window() -> WindowLimits {
    WindowLimits { retention: Duration::from_secs(3600), max_samples: 240, min_fill: 0.5 }
}

#[test]
fn least_squares_fits_a_line_and_needs_two_times() {
    let points: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
    let (slope, level) = least_squares(&points, 30.0).unwrap();
    assert!((slope - 2.0).abs() < 1e-9 && (level - 61.0).abs() < 1e-9, "{slope} {level}");
    assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 2.0)], 1.0), None);
    assert_eq!(least_squares(&[(1.0, 1.0)], 1.0), None);
}

#[test]
fn the_detector_waits_for_the_minimum_window_fill() {
    let mut ring = SampleRing::new(window());
    let mut t = 0.0;
    while t < 1800.0 - 15.0 {
        ring.push(t, 1000.0 + t);
        let trend = judge(&ring.points(), &[], t, 1e6, ring.limits(), false);
        assert!(!trend.ready && trend.slope.is_none(), "judged at {t} s: {trend:?}");
        t += 15.0;
    }
}

use super::leak_corpus::{limit_of, run, samples, Spec};
use crate::alert::rules::Resource;

const MIN: f64 = 60.0;

#[test]
fn ten_percent_an_hour_under_a_ten_percent_three_minute_sawtooth_is_growing_within_45_min_of_a_full_window() {
    for seed in 1..=3 {
        let spec = Spec {
            name: "10 %/h under a 10 % sawtooth".into(),
            resource: Some(Resource::Memory),
            base: 0.3,
            leak: Some((0.0, 0.1)),
            sawtooth: Some((0.1, 3.0 * MIN)),
            noise: 0.005,
            ..Spec::default()
        };
        let (series, _) = samples(&spec, seed);
        let limit = limit_of(Resource::Memory);
        let mut ring = SampleRing::new(window());
        let mut trend = Trend::default();
        let mut first = None;
        for &(t, v, _) in &series {
            ring.push(t, v);
            trend = judge(&ring.points(), &[], t, limit, ring.limits(), trend.growing);
            if trend.growing && first.is_none() {
                first = Some(t);
            }
            if t >= 3.0 * 3600.0 {
                break;
            }
        }
        // The window is full after 1 h; the old rise-against-spread check never called this growing.
        let first = first.unwrap_or(f64::INFINITY);
        assert!(first <= 105.0 * MIN, "seed {seed}: first judged growing at {:.0} min", first / MIN);
        assert!(trend.growing, "seed {seed}: no longer growing at the end: {trend:?}");
        let slope = trend.slope.unwrap() * 3600.0 / limit;
        assert!((slope - 0.1).abs() < 0.03, "seed {seed}: slope {slope} of the limit per hour");
    }
}

/// Once pending it stays so until it fires: no evaluation between the first pending and the
/// first firing finds the alert inactive (a 1 h window's slope flattens on this wander; the longer
/// scale of block summaries holds it).
#[test]
fn a_hundred_fds_an_hour_on_twenty_fds_of_wander_goes_pending_and_stays_pending() {
    let limit = limit_of(Resource::Fds);
    let spec = Spec {
        name: "100 fds/h on ±20 wander".into(),
        resource: Some(Resource::Fds),
        base: 0.72,
        leak: Some((0.0, 100.0 / limit)),
        wander: Some((20.0 / limit, 10.0 * MIN)),
        noise: 0.005,
        ..Spec::default()
    };
    for seed in 1..=6 {
        let o = run(&spec, seed);
        let reached = o.reached.expect("reaches the limit");
        assert!(o.pending.is_some_and(|p| p < reached), "seed {seed}: never pending: {o:?}");
        assert!(o.dropped.is_none(), "seed {seed}: dropped out of pending: {o:?}");
        assert!(o.fired.is_some_and(|f| f.0 < reached), "seed {seed}: did not fire before the limit: {o:?}");
    }
}

#[test]
fn a_leak_filling_from_30_percent_in_1_6_h_fires_15_min_before_the_limit_while_warm_ups_and_a_double_step_do_not() {
    let leak = Spec {
        name: "1.6 h".into(),
        resource: Some(Resource::Memory),
        base: 0.3,
        leak: Some((0.0, 0.7 / 1.6)),
        noise: 0.005,
        ..Spec::default()
    };
    for seed in 1..=3 {
        let o = run(&leak, seed);
        let (fired, reached) = (o.fired.map(|f| f.0), o.reached.unwrap());
        assert!(
            fired.is_some_and(|f| f <= reached - 15.0 * MIN),
            "seed {seed}: fired at {fired:?} s, the limit reached at {reached} s"
        );
    }
    let mut quiet: Vec<Spec> = [8.0, 20.0, 30.0, 45.0]
        .into_iter()
        .map(|tau| Spec {
            name: format!("warm-up τ {tau} min"),
            resource: Some(Resource::Memory),
            base: 0.3,
            warmup: Some((0.5, tau * MIN)),
            noise: 0.005,
            ..Spec::default()
        })
        .collect();
    quiet.push(Spec {
        name: "double step".into(),
        resource: Some(Resource::Memory),
        base: 0.5,
        steps: vec![(60.0 * MIN, 0.15), (80.0 * MIN, 0.15)],
        noise: 0.005,
        ..Spec::default()
    });
    for spec in &quiet {
        for seed in 1..=3 {
            let o = run(spec, seed);
            assert!(o.fired.is_none(), "{} (seed {seed}): fired at {:?}", spec.name, o.fired);
        }
    }
}
