//! The state machine, per rule kind: threshold rules over each ratio, prediction rules, the OOM
//! kill rule; `for`, hysteresis, resolution, vanishing readings and the history cap.

use std::time::{Duration, SystemTime};

use super::*;
use crate::alert::history::WindowLimits;
use crate::alert::rules::{
    default_threshold, defaults, HistoryLimits, OomRule, PredictionLevel, PredictionRules, Ratio, TargetDownRule,
    ThresholdRule,
};
use crate::logs::ring::RingLimits;
use crate::logs::{LogSource, SourceKind};
use crate::snapshot::{
    Basis, CgroupVersion, FdSample, HostMemory, PeerSample, PidsSample, ProcessMemory, SocketSample, Utilization,
};

const T0: u64 = 1_700_000_000;

/// Rules with only the given threshold rule (no prediction, no OOM rule).
fn only(rule: ThresholdRule) -> AlertRules {
    let mut r = defaults();
    r.thresholds = vec![rule];
    r.prediction.resources.clear();
    r.oom_kill = None;
    r.target_down = None;
    r
}

fn snapshot(seq: u64, t: u64) -> Snapshot {
    let mut s = Snapshot::empty("app");
    s.seq = seq;
    s.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + t);
    s.oom.up = true;
    s
}

/// Sets `ratio` to `value` in the snapshot.
fn set(s: &mut Snapshot, ratio: Ratio, value: f64) {
    const LIMIT: u64 = 1 << 30;
    let used = (value * LIMIT as f64).round() as u64;
    match ratio {
        Ratio::MemoryUtilization => {
            s.target.utilization = Some(Utilization { basis: Basis::CgroupWorkingSet, used, limit: LIMIT })
        }
        Ratio::FdUtilization => s.target.fds = Some(FdSample { utilization: Some(value), ..Default::default() }),
        Ratio::PeerUtilization => {
            let connections = (value * 1000.0).round() as u64;
            let peer = PeerSample {
                name: "postgres".into(),
                limit: 1000,
                by_state: Default::default(),
                connections,
                stale: 0,
                utilization: connections as f64 / 1000.0,
            };
            s.target.sockets = Some(SocketSample { peers: vec![peer], ..Default::default() })
        }
        Ratio::PidsUtilization => {
            s.target.pids = Some(PidsSample {
                version: CgroupVersion::V2,
                current: Some((value * 1000.0).round() as u64),
                max: Some(1000),
            })
        }
        Ratio::LogBufferFill => {
            let limits = RingLimits { max_lines: 100_000, max_bytes: 10_000, max_line_bytes: 100, max_subscribers: 1 };
            let source = LogSource::new("app", SourceKind::Stdout, limits);
            // 84 text bytes + a 16-byte entry: 100 bytes counted per line (no spare slot).
            for _ in 0..(value * 100.0).round() as usize {
                source.ring.push(&[b'x'; 84], false);
            }
            let mut stats = source.stats();
            stats.ring.line_capacity = stats.ring.lines;
            s.logs = vec![stats];
        }
        Ratio::HostMemoryUtilization => {
            s.host.memory = Some(HostMemory { total: LIMIT, available: Some(LIMIT - used), ..Default::default() })
        }
    }
}

fn state_of(state: &AlertState, alert: &str, severity: Severity) -> State {
    state.alerts.iter().find(|a| a.alert == alert && a.severity == severity).map_or(State::Inactive, |a| a.state)
}

/// Feeds `values` (one per `step` seconds) for `ratio` and returns the warning state after each.
fn drive(engine: &mut Engine, ratio: Ratio, values: &[f64], step: u64) -> Vec<State> {
    let alert = ratio.default_alert();
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let mut s = snapshot(i as u64 + 1, i as u64 * step);
            set(&mut s, ratio, v);
            state_of(&engine.evaluate(&s), alert, Severity::Warning)
        })
        .collect()
}

fn rule(ratio: Ratio) -> ThresholdRule {
    ThresholdRule {
        levels: vec![(Severity::Info, 0.7), (Severity::Warning, 0.8), (Severity::Critical, 0.9)],
        for_: Duration::from_secs(60),
        ..default_threshold(ratio)
    }
}

use State::{Firing as F, Inactive as I, Pending as P, Resolved as R};

#[test]
fn every_ratio_goes_pending_fires_after_for_and_resolves_with_hysteresis() {
    for ratio in Ratio::ALL {
        let mut engine = Engine::new(only(rule(ratio)));
        // 30 s steps, `for` 60 s, warning at 0.8, clears at or below 0.75.
        let values = [0.5, 0.82, 0.83, 0.84, 0.85, 0.78, 0.76, 0.74, 0.74, 0.81];
        let states = drive(&mut engine, ratio, &values, 30);
        assert_eq!(states, [I, P, P, F, F, F, F, R, R, P], "{ratio:?}");
    }
}

#[test]
fn a_value_dipping_under_the_level_keeps_a_pending_alert_pending_until_it_clears() {
    for ratio in Ratio::ALL {
        let mut engine = Engine::new(only(rule(ratio)));
        // Above 0.8, a dip to 0.77 (above the clear level 0.75) stays pending; a drop under it
        // ends the episode, and the next one starts its `for` (60 s) anew.
        let states = drive(&mut engine, ratio, &[0.81, 0.77, 0.6, 0.81, 0.81, 0.81], 30);
        assert_eq!(states, [P, P, I, P, P, F], "{ratio:?}");
    }
}

#[test]
fn without_hysteresis_a_value_at_the_edge_flaps() {
    let mut r = rule(Ratio::MemoryUtilization);
    r.hysteresis = 0.0;
    r.for_ = Duration::ZERO;
    let mut engine = Engine::new(only(r));
    let edge = [0.81, 0.79, 0.81, 0.79];
    assert_eq!(drive(&mut engine, Ratio::MemoryUtilization, &edge, 30), [F, R, F, R]);
    let mut engine = Engine::new(only(ThresholdRule { for_: Duration::ZERO, ..rule(Ratio::MemoryUtilization) }));
    assert_eq!(drive(&mut engine, Ratio::MemoryUtilization, &edge, 30), [F, F, F, F]);
}

#[test]
fn for_is_measured_from_the_first_evaluation_above_the_level() {
    let mut r = rule(Ratio::FdUtilization);
    r.for_ = Duration::from_secs(900);
    let mut engine = Engine::new(only(r));
    // One sample per minute: pending for 15 minutes, firing at minute 16 (t = 900 s after the start).
    let states = drive(&mut engine, Ratio::FdUtilization, &[0.85; 17], 60);
    assert!(states[..15].iter().all(|s| *s == P), "{states:?}");
    assert_eq!(states[15], F);
}

#[test]
fn severities_are_independent_tiers() {
    let mut engine = Engine::new(only(rule(Ratio::MemoryUtilization)));
    let mut tiers = Vec::new();
    for (i, v) in [0.75, 0.75, 0.75, 0.85, 0.85, 0.85, 0.95, 0.95, 0.95, 0.3].into_iter().enumerate() {
        let mut s = snapshot(i as u64 + 1, i as u64 * 30);
        set(&mut s, Ratio::MemoryUtilization, v);
        let st = engine.evaluate(&s);
        let alert = "LeakwatchMemoryUtilizationHigh";
        tiers.push(Severity::ALL.map(|sev| state_of(&st, alert, sev)));
    }
    assert_eq!(tiers[2], [F, I, I]);
    assert_eq!(tiers[5], [F, F, I]);
    assert_eq!(tiers[8], [F, F, F]);
    assert_eq!(tiers[9], [R, R, R]);
}

#[test]
fn a_reading_that_disappears_resolves_its_alert_and_resolved_alerts_expire() {
    let mut rules = only(ThresholdRule { for_: Duration::ZERO, ..rule(Ratio::MemoryUtilization) });
    rules.history.resolved_retention = Duration::from_secs(600);
    let mut engine = Engine::new(rules);
    let mut s = snapshot(1, 0);
    set(&mut s, Ratio::MemoryUtilization, 0.95);
    let st = engine.evaluate(&s);
    assert_eq!(state_of(&st, "LeakwatchMemoryUtilizationHigh", Severity::Critical), F);
    let critical = st.alerts.iter().find(|a| a.severity == Severity::Critical).unwrap();
    assert_eq!(critical.summary, "app uses more than 90 % of its memory limit.");
    assert_eq!(critical.labels.get("basis").map(String::as_str), Some("cgroup_working_set"));

    // The target is gone: no utilization at all.
    let st = engine.evaluate(&snapshot(2, 30));
    assert_eq!(state_of(&st, "LeakwatchMemoryUtilizationHigh", Severity::Critical), R);
    assert!(st.alerts.iter().all(|a| a.resolved_at == Some((T0 + 30) as f64)));
    let st = engine.evaluate(&snapshot(3, 700));
    assert!(st.alerts.is_empty(), "resolved instances leave after the retention: {:?}", st.alerts);
    // Every transition is in the history, newest first.
    let to: Vec<State> = st.history.iter().map(|t| t.to).collect();
    assert_eq!(to, [R, R, R, F, F, F]);
}

#[test]
fn the_transition_history_cap_holds() {
    let mut rules = only(ThresholdRule { for_: Duration::ZERO, hysteresis: 0.0, ..rule(Ratio::MemoryUtilization) });
    rules.history = HistoryLimits { max_transitions: 7, ..rules.history };
    let mut engine = Engine::new(rules);
    let values: Vec<f64> = (0..200).map(|i| if i % 2 == 0 { 0.95 } else { 0.1 }).collect();
    for (i, &v) in values.iter().enumerate() {
        let mut s = snapshot(i as u64 + 1, i as u64 * 10);
        set(&mut s, Ratio::MemoryUtilization, v);
        let st = engine.evaluate(&s);
        assert!(st.history.len() <= 7, "history grew to {}", st.history.len());
        assert_eq!(st.history_max, 7);
    }
}

/// Prediction rules with a short window, for a usage series fed to the engine.
fn prediction_rules(for_: Duration, horizon: Duration) -> AlertRules {
    let mut r = defaults();
    r.thresholds.clear();
    r.oom_kill = None;
    r.target_down = None;
    r.prediction = PredictionRules {
        resources: vec![Resource::Memory, Resource::Fds, Resource::Pids],
        window: WindowLimits { retention: Duration::from_secs(600), max_samples: 120, min_fill: 0.5 },
        for_,
        levels: vec![PredictionLevel { severity: Severity::Warning, horizon, min_ratio: 0.6, for_: None }],
        hysteresis: 0.05,
    };
    r
}

/// A snapshot where every resource uses `ratio` of a limit of 10⁶ (bytes, fds, tasks) scaled
/// by `limit_scale`.
fn usage(seq: u64, t: u64, ratio: f64, limit_scale: f64) -> Snapshot {
    let mut s = snapshot(seq, t);
    let limit = (1e6 * limit_scale).round() as u64;
    let used = (ratio * 1e6).round() as u64;
    s.target.utilization = Some(Utilization { basis: Basis::CgroupWorkingSet, used, limit });
    s.target.memory = Some(ProcessMemory { open_fds: Some(used), max_fds: Some(limit), ..Default::default() });
    s.target.pids = Some(PidsSample { version: CgroupVersion::V1, current: Some(used), max: Some(limit) });
    s
}

fn prediction_states(st: &AlertState) -> [State; 3] {
    Resource::ALL.map(|r| state_of(st, r.alert(), Severity::Warning))
}

/// Growth of 2e-5 of the limit per second: from 0.6 the limit is 20000 s away, inside the
/// 10 h horizon used here.
const GROWTH: f64 = 2e-5;
const HORIZON: Duration = Duration::from_secs(36_000);

#[test]
fn prediction_rules_wait_for_the_window_and_the_ratio_floor_then_for() {
    let mut engine = Engine::new(prediction_rules(Duration::from_secs(120), HORIZON));
    let mut log = Vec::new();
    for (seq, t) in (0..=1500).step_by(10).enumerate() {
        let st = engine.evaluate(&usage(seq as u64 + 1, t, 0.58 + GROWTH * t as f64, 1.0));
        log.push(st);
    }
    let at = |t: u64| &log[(t / 10) as usize];
    assert_eq!(prediction_states(at(250)), [I, I, I], "not judged before min_fill");
    assert!(at(250).trends.iter().all(|t| !t.trend.ready && t.samples > 0), "{:?}", at(250).trends);
    // Judged growing, but the peaks projected `for` (120 s) ahead are under the 0.6 floor: inactive.
    assert!(at(500).trends.iter().all(|t| t.trend.growing), "{:?}", at(500).trends);
    assert_eq!(prediction_states(at(500)), [I, I, I]);
    let ttl = at(500).trends[0].trend.seconds_to_limit.unwrap();
    let truth = (1.0 - (0.58 + GROWTH * 500.0)) / GROWTH;
    assert!((ttl - truth).abs() < 0.05 * truth, "time to limit {ttl}, truth {truth}");
    // The projection crosses the floor at 880 s (the ratio itself at 1000 s): pending, and
    // firing once `for` (120 s) has passed, as the ratio reaches the floor.
    assert_eq!(prediction_states(at(870)), [I, I, I]);
    assert_eq!(prediction_states(at(890)), [P, P, P]);
    assert_eq!(prediction_states(at(1000)), [P, P, P]);
    assert_eq!(prediction_states(at(1010)), [F, F, F]);
    let view = at(1010).alerts.iter().find(|a| a.alert == "LeakwatchMemoryFillingUp").unwrap();
    assert!(view.seconds_to_limit.is_some() && view.level == 0.6, "{view:?}");
}

#[test]
fn prediction_rules_keep_firing_above_the_clear_level_and_resolve_when_growth_stops() {
    let run = |hysteresis: f64| {
        let mut rules = prediction_rules(Duration::ZERO, HORIZON);
        rules.prediction.hysteresis = hysteresis;
        let mut engine = Engine::new(rules);
        let mut log = Vec::new();
        for (seq, t) in (0..=2700).step_by(10).enumerate() {
            // Growing from 0.62 until 1500 s, flat after; at 1200 s the limit is raised by 15 %.
            let ratio = 0.62 + GROWTH * t.min(1500) as f64;
            let scale = if t >= 1200 { 1.15 } else { 1.0 };
            log.push(prediction_states(&engine.evaluate(&usage(seq as u64 + 1, t, ratio, scale))));
        }
        move |t: u64| log[(t / 10) as usize]
    };
    let first = |at: &dyn Fn(u64) -> [State; 3], state: State| (0..=2700).step_by(10).find(|&t| at(t) == [state; 3]);
    let at = run(0.05);
    assert_eq!(at(290), [I, I, I], "window not half full yet");
    assert_eq!(at(310), [F, F, F], "judged growing at half fill; `for` 0 fires at once");
    // 0.644 / 1.15 = 0.56: under the 0.6 floor, above the clear level 0.55, still growing.
    assert_eq!(at(1200), [F, F, F]);
    assert_eq!(at(1490), [F, F, F]);
    // Flat from 1500 s: once the newer half of the 600 s window is flat it is not growing.
    let resolved = first(&at, R).expect("resolved");
    assert!((1500..=2100).contains(&resolved), "resolved at {resolved} s");
    assert!((resolved..=2700).step_by(10).all(|t| at(t) != [F, F, F]));
    let without = run(0.0);
    assert_eq!(without(1190), [F, F, F]);
    assert_eq!(without(1200), [R, R, R], "without hysteresis the floor alone decides");
}

#[test]
fn prediction_history_starts_over_when_the_target_restarts_and_its_cap_holds() {
    let mut engine = Engine::new(prediction_rules(Duration::ZERO, Duration::from_secs(36_000)));
    let mut seq = 0;
    for t in (0..3000).step_by(1) {
        seq += 1;
        let st = engine.evaluate(&usage(seq, t, 0.5, 1.0));
        assert!(st.trends.iter().all(|tr| tr.samples <= 120 && tr.max_samples == 120), "{:?}", st.trends);
    }
    let mut s = usage(seq + 1, 3000, 0.5, 1.0);
    s.target.changes = 1;
    let st = engine.evaluate(&s);
    assert!(st.trends.iter().all(|t| t.samples == 1), "{:?}", st.trends);
}

fn with_oom(seq: u64, t: u64, kills: u64) -> Snapshot {
    let mut s = snapshot(seq, t);
    s.oom.kills_total = kills;
    s
}

#[test]
fn an_oom_kill_fires_at_once_stays_firing_for_its_window_and_resolves() {
    let mut rules = defaults();
    rules.thresholds.clear();
    rules.prediction.resources.clear();
    rules.oom_kill = Some(OomRule { window: Duration::from_secs(300) });
    rules.target_down = None;
    let mut engine = Engine::new(rules);
    let kills = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2];
    let states: Vec<State> = kills
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let st = engine.evaluate(&with_oom(i as u64 + 1, i as u64 * 60, k));
            state_of(&st, OOM_ALERT, Severity::Critical)
        })
        .collect();
    // leakwatch's own count (which survives cgroup changes): the first kill (at 120 s) fires at
    // once (no `for`) and holds while it is at most 300 s old, with no hysteresis beyond it; the
    // second (at 600 s) fires again.
    assert_eq!(states, [I, I, F, F, F, F, F, F, R, R, F, F]);
    let st = engine.evaluate(&with_oom(13, 12 * 60, 2));
    let a = st.alerts.iter().find(|a| a.alert == OOM_ALERT).unwrap();
    assert_eq!(a.value, 1.0);
    assert!(a.summary.contains("app"), "{}", a.summary);
}

#[test]
fn new_rules_apply_at_the_next_evaluation_and_keep_the_state_of_rules_that_stay() {
    let ratio = Ratio::MemoryUtilization;
    let warn = |level: f64| ThresholdRule {
        levels: vec![(Severity::Warning, level)],
        for_: Duration::ZERO,
        ..default_threshold(ratio)
    };
    let mut engine = Engine::new(only(warn(0.8)));
    let alert = ratio.default_alert();
    let eval = |engine: &mut Engine, seq: u64, v: f64| {
        let mut s = snapshot(seq, seq * 30);
        set(&mut s, ratio, v);
        engine.evaluate(&s)
    };
    assert_eq!(state_of(&eval(&mut engine, 1, 0.6), alert, Severity::Warning), I);
    // A lower level: the same reading now fires, with the new level in its text.
    engine.set_rules(only(warn(0.5)));
    let state = eval(&mut engine, 2, 0.6);
    let view = state.alerts.iter().find(|a| a.alert == alert).unwrap();
    assert_eq!((view.state, view.level), (F, 0.5));
    assert!(view.summary.contains("50"), "the text names the new level: {}", view.summary);
    let fired_at = view.fired_at;
    // Another change of the same rule (its hysteresis) keeps the firing instance as it is.
    engine.set_rules(only(ThresholdRule { hysteresis: 0.01, ..warn(0.5) }));
    let state = eval(&mut engine, 3, 0.6);
    let view = state.alerts.iter().find(|a| a.alert == alert).unwrap();
    assert_eq!((view.state, view.fired_at), (F, fired_at), "still the same episode");
    // Removing the rule resolves its alert; the history keeps every transition.
    let mut without = only(warn(0.5));
    without.thresholds.clear();
    engine.set_rules(without);
    let state = eval(&mut engine, 4, 0.6);
    assert_eq!(state_of(&state, alert, Severity::Warning), R);
    assert_eq!(state.history.len(), 2, "{:?}", state.history);
}

#[test]
fn trimming_drops_dead_samples_and_spare_room_and_keeps_live_ones() {
    let mut engine = Engine::new(prediction_rules(Duration::ZERO, HORIZON));
    // 5 s spacing over a 600 s retention: 120 live samples per resource.
    for i in 0..200 {
        engine.evaluate(&usage(i + 1, i * 5, 0.5, 1.0));
    }
    let samples = |st: &AlertState| st.structures.iter().find(|s| s.name == "alert_trend_samples").cloned().unwrap();
    let live = engine.evaluate(&usage(201, 1000, 0.5, 1.0));
    assert!(engine.trim().iter().all(|t| t.name != "alert_trend_samples"), "full live rings have nothing spare");
    assert_eq!(samples(&engine.evaluate(&usage(202, 1005, 0.5, 1.0))).len, samples(&live).len);
    // The target goes away: its histories stop receiving samples, and age past the retention.
    let gone = engine.evaluate(&snapshot(203, 1700));
    assert_eq!(samples(&gone).len, 3 * 120, "no sample is dropped before the cleanup");
    let trimmed = engine.trim();
    let t = trimmed.iter().find(|t| t.name == "alert_trend_samples").expect("the dead samples were trimmed");
    assert_eq!((t.len_before, t.len_after), (360, 0), "every sample is older than 600 s before t = 1700");
    assert_eq!(t.bytes_after, 0);
    assert_eq!(t.freed_bytes, t.bytes_before);
    // Samples younger than the retention stay.
    for i in 0..10 {
        engine.evaluate(&usage(204 + i, 1800 + i * 5, 0.5, 1.0));
    }
    let before = samples(&engine.evaluate(&snapshot(214, 1900)));
    assert_eq!(before.len, 30);
    assert!(engine.trim().iter().all(|t| t.name != "alert_trend_samples" || t.len_after == 30));
}

#[test]
fn a_vanished_target_ends_its_alerts_with_a_reason_and_target_down_fires_after_its_for() {
    let mut rules = only(ThresholdRule { for_: Duration::ZERO, ..rule(Ratio::MemoryUtilization) });
    rules.target_down = Some(TargetDownRule { for_: Duration::from_secs(120) });
    let mut engine = Engine::new(rules);
    let mut s = snapshot(1, 0);
    set(&mut s, Ratio::MemoryUtilization, 0.95);
    let st = engine.evaluate(&s);
    assert_eq!(state_of(&st, "LeakwatchMemoryUtilizationHigh", Severity::Critical), F);
    assert_eq!(state_of(&st, TARGET_DOWN_ALERT, Severity::Warning), I);

    // The target is gone (OOM-killed): no process, no reading.
    let mut gone = snapshot(2, 30);
    gone.oom.up = false;
    let st = engine.evaluate(&gone);
    let critical = st.alerts.iter().find(|a| a.severity == Severity::Critical && a.alert != TARGET_DOWN_ALERT).unwrap();
    assert_eq!((critical.state, critical.resolved_reason), (R, Some(REASON_TARGET_GONE)));
    assert!(st.history.iter().filter(|t| t.to == R).all(|t| t.reason == Some(REASON_TARGET_GONE)), "{:?}", st.history);
    assert_eq!(state_of(&st, TARGET_DOWN_ALERT, Severity::Warning), P, "pending until its for");
    let json = serde_json::to_value(&st.history[0]).unwrap();
    assert!(json.get("reason").is_some() || json["alert"] == TARGET_DOWN_ALERT, "{json}");
    gone.seq = 3;
    gone.taken_at += Duration::from_secs(120);
    let st = engine.evaluate(&gone);
    assert_eq!(state_of(&st, TARGET_DOWN_ALERT, Severity::Warning), F);
    let down = st.alerts.iter().find(|a| a.alert == TARGET_DOWN_ALERT).unwrap();
    assert!(down.runbook_url.ends_with("#leakwatchtargetdown"), "{}", down.runbook_url);
    assert!(down.runbook_url.starts_with("https://"), "absolute: {}", down.runbook_url);

    // Back: target-down resolves (its value fell: no reason).
    let st = engine.evaluate(&snapshot(4, 200));
    let down = st.alerts.iter().find(|a| a.alert == TARGET_DOWN_ALERT).unwrap();
    assert_eq!((down.state, down.resolved_reason), (R, None));
}
