//! The alert engine: evaluates every rule on every snapshot and moves each alert instance
//! (alert × severity × labels) through inactive → pending → firing → resolved.
//!
//! - A condition that starts to hold makes the instance **pending**; after it held for the
//!   rule's `for` the instance **fires** (at once when `for` is 0). A pending instance whose
//!   condition stops holding goes back to inactive; a firing one becomes **resolved** and stays
//!   listed for `resolved_retention`, unless it becomes pending again.
//! - **Hysteresis**: an instance that is pending or firing stays so while its value is above
//!   `level − hysteresis`; it needs the full level to start. The generated PromQL says the same
//!   through the `ALERTS` series of the previous evaluation.
//! - A reading that disappears counts as the condition not holding. When it disappeared because
//!   the target has no process any more, the change carries the reason `target_gone`
//!   (`/alerts/history`, and `resolved_reason` on the pushed resolution).
//!
//! Time is the snapshot's `taken_at`, so the engine is a pure function of its inputs and tests
//! drive it with synthetic snapshots. Every transition goes into a bounded history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::history::{BlockLog, BoundedLog, SampleRing};
use super::leak::{self, Trend};
use super::rules::{self, AlertRules, Labels, Resource, Severity, OOM_ALERT, REASON_TARGET_GONE, TARGET_DOWN_ALERT};
use crate::measure::{trim_with, Structure, Trimmed};
use crate::snapshot::Snapshot;

/// Where an alert instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, for less than the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`.
    Firing,
    /// It was firing and the condition no longer holds.
    Resolved,
}

impl State {
    /// Label and JSON value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }

    fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Firing)
    }
}

/// One alert instance as published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    /// Alert name.
    pub alert: String,
    /// Severity.
    pub severity: Severity,
    /// State after the last evaluation.
    pub state: State,
    /// Identifying labels (`target`, `basis`, `source`).
    pub(crate) labels: BTreeMap<&'static str, String>,
    /// The value the condition was judged on (a ratio; for the OOM rule, kills in the window).
    pub(crate) value: f64,
    /// The level it is compared with (the ratio floor for prediction rules).
    pub(crate) level: f64,
    /// For prediction alerts: the detector's seconds until the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seconds_to_limit: Option<f64>,
    /// What `seconds_to_limit` projects (`peaks`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) projection: Option<&'static str>,
    /// When the current pending/firing episode started (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_since: Option<f64>,
    /// When it fired (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fired_at: Option<f64>,
    /// When it resolved (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resolved_at: Option<f64>,
    /// Why it resolved, when not because its value fell: `target_gone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resolved_reason: Option<&'static str>,
    /// The summary, rendered from the same template as the Prometheus rule.
    pub(crate) summary: String,
    /// The description, likewise.
    pub(crate) description: String,
    /// The runbook entry (absolute).
    pub(crate) runbook_url: String,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// When (Unix seconds).
    pub(crate) at: f64,
    /// Alert name.
    pub(crate) alert: String,
    /// Severity.
    pub(crate) severity: Severity,
    /// Identifying labels.
    pub(crate) labels: BTreeMap<&'static str, String>,
    /// The state before.
    pub(crate) from: State,
    /// The state after.
    pub(crate) to: State,
    /// The value at the change.
    pub(crate) value: f64,
    /// Why, when not because the value crossed the level: `target_gone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'static str>,
}

/// What the leak detector says about one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendView {
    /// `memory`, `fds` or `pids`.
    pub(crate) resource: &'static str,
    /// Identifying labels.
    pub(crate) labels: BTreeMap<&'static str, String>,
    /// The current usage.
    pub(crate) used: f64,
    /// The current limit.
    pub(crate) limit: f64,
    /// Samples in the history.
    pub(crate) samples: usize,
    /// The history's cap.
    pub(crate) max_samples: usize,
    /// The detector's judgement.
    #[serde(flatten)]
    pub trend: TrendJson,
}

/// What a time to the limit is projected from: the upper envelope (see [`leak`]).
pub(crate) const PROJECTION: &str = "peaks";

/// `Trend` in JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrendJson {
    /// Share of the retention covered.
    pub(crate) window_fill: f64,
    /// Whether it is full enough to judge.
    pub(crate) ready: bool,
    /// Growth per second (bytes/s for memory).
    pub(crate) slope_per_second: Option<f64>,
    /// The lower bound of the growth's confidence interval.
    pub(crate) slope_low_per_second: Option<f64>,
    /// Seconds of history judged (the whole window or its newest part).
    pub(crate) judged_seconds: Option<f64>,
    /// Whether it grows significantly.
    pub growing: bool,
    /// Seconds until the limit at that growth, from [`TrendJson::projection`].
    pub(crate) seconds_to_limit: Option<f64>,
    /// What `seconds_to_limit` projects: `peaks` (the upper envelope).
    pub(crate) projection: &'static str,
    /// Seconds until the median level reaches the limit (later than the peaks).
    pub(crate) level_seconds_to_limit: Option<f64>,
}

impl From<Trend> for TrendJson {
    fn from(t: Trend) -> Self {
        Self {
            window_fill: t.fill,
            ready: t.ready,
            slope_per_second: t.slope,
            slope_low_per_second: t.slope_low,
            judged_seconds: t.judged_seconds,
            growing: t.growing,
            seconds_to_limit: t.seconds_to_limit,
            projection: PROJECTION,
            level_seconds_to_limit: t.level_seconds_to_limit,
        }
    }
}

/// Everything the engine publishes after an evaluation (immutable; shared through a watch channel).
#[derive(Debug, Clone, Default)]
pub struct AlertState {
    /// The snapshot evaluated (0: none yet).
    pub(crate) seq: u64,
    /// Its time, Unix seconds.
    pub(crate) evaluated_at: f64,
    /// Every instance evaluated this time, inactive ones included (the metrics show them as 0).
    pub alerts: Vec<AlertView>,
    /// The leak detector, per followed resource with a current reading.
    pub trends: Vec<TrendView>,
    /// The transition history, newest first (shared until it changes).
    pub history: Arc<[Transition]>,
    /// The history's cap.
    pub(crate) history_max: usize,
    /// The sizes and caps of the engine's structures.
    pub structures: Vec<Structure>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    alert: String,
    severity: Severity,
    labels: Labels,
}

#[derive(Debug, Clone)]
struct Instance {
    state: State,
    value: f64,
    level: f64,
    seconds_to_limit: Option<f64>,
    active_since: Option<f64>,
    fired_at: Option<f64>,
    resolved_at: Option<f64>,
    resolved_reason: Option<&'static str>,
    texts: Arc<(String, String)>,
    seen: bool,
}

struct TrendTrack {
    ring: SampleRing,
    /// Block summaries beyond the ring (the detector's longer scale).
    blocks: BlockLog,
    series: String,
    usage: Option<rules::Usage>,
    trend: Trend,
}

/// leakwatch's own OOM count last read (per target name), and the current episode: kills since
/// its first kill, and when the last one happened (the alert holds while that is within the window).
#[derive(Default)]
struct OomTrack {
    last: Option<(String, u64)>,
    episode_kills: u64,
    last_kill_at: Option<f64>,
}

/// What a rule says about one instance at this evaluation.
struct Verdict<'a> {
    key: Key,
    value: f64,
    level: f64,
    seconds_to_limit: Option<f64>,
    for_: Duration,
    texts: &'a dyn Fn() -> (String, String),
    /// The condition, given whether the instance was active (pending or firing) before.
    holds: &'a dyn Fn(bool) -> bool,
    /// Why the state changes, if not the value (recorded in the transition).
    reason: Option<&'static str>,
}

/// The one owner of alert state.
pub struct Engine {
    rules: AlertRules,
    instances: BTreeMap<Key, Instance>,
    trends: BTreeMap<Resource, TrendTrack>,
    oom: OomTrack,
    history: BoundedLog<Transition>,
    published_history: Arc<[Transition]>,
    history_changed: bool,
    /// Set by [`Engine::set_rules`]: instance texts are rebuilt at the next evaluation.
    texts_stale: bool,
    /// The time of the last evaluation (the engine's clock is the snapshots').
    last_now: f64,
}

impl Engine {
    /// An engine over validated rules, with no history.
    pub fn new(rules: AlertRules) -> Self {
        let h = rules.history;
        Self {
            rules,
            instances: BTreeMap::new(),
            trends: BTreeMap::new(),
            oom: OomTrack::default(),
            history: BoundedLog::new(h.max_transitions, h.retention),
            published_history: Arc::from(Vec::new()),
            history_changed: false,
            texts_stale: false,
            last_now: 0.0,
        }
    }

    /// Replaces the rules (a reload), effective at the next evaluation. Instances, trends and
    /// the transition history of rules that still exist are kept (with the new levels, `for`
    /// and texts); instances of removed rules or levels resolve at the next evaluation like any
    /// instance without a reading; trends of resources no longer followed are dropped.
    pub(crate) fn set_rules(&mut self, rules: AlertRules) {
        let h = rules.history;
        self.history.set_limits(h.max_transitions, h.retention);
        self.trends.retain(|resource, _| rules.prediction.resources.contains(resource));
        for track in self.trends.values_mut() {
            track.ring.set_limits(rules.prediction.window);
        }
        self.rules = rules;
        self.texts_stale = true;
    }

    /// Trims the engine's structures: drops the sample histories of resources no longer in the
    /// prediction rules and samples past the retention (both dead), transitions past theirs,
    /// and spare room. Live samples and transitions stay.
    pub(crate) fn trim(&mut self) -> Vec<Trimmed> {
        let now = self.last_now;
        let resources = self.rules.prediction.resources.clone();
        let trends = trim_with(&mut self.trends, trend_structure, |t| {
            t.retain(|r, _| resources.contains(r));
            for track in t.values_mut() {
                track.ring.trim(now);
                track.ring.shrink();
                track.blocks.shrink();
            }
        });
        let history = trim_with(&mut self.history, history_structure, |h| {
            h.trim(now);
            h.shrink();
        });
        if history.as_ref().is_some_and(|t| t.len_after != t.len_before) {
            self.history_changed = true;
        }
        trends.into_iter().chain(history).collect()
    }

    /// Evaluates every rule on one snapshot and returns the new state.
    pub fn evaluate(&mut self, s: &Snapshot) -> AlertState {
        let now = crate::seconds::unix(s.taken_at);
        self.last_now = now;
        for inst in self.instances.values_mut() {
            inst.seen = false;
        }
        self.thresholds(s, now);
        self.predictions(s, now);
        self.oom_kills(s, now);
        self.target_down(s, now);
        self.unseen(now, (!s.oom.up).then_some(REASON_TARGET_GONE));
        self.texts_stale = false;
        if self.history.trim(now) > 0 {
            self.history_changed = true;
        }
        if self.history_changed {
            self.published_history = Arc::from(self.history.newest_first());
            self.history_changed = false;
        }
        self.publish(s.seq, now)
    }

    fn thresholds(&mut self, s: &Snapshot, now: f64) {
        let rules = std::mem::take(&mut self.rules.thresholds);
        for rule in &rules {
            for reading in rule.ratio.readings(s) {
                for &(severity, level) in &rule.levels {
                    let clear = rules::clear_level(level, rule.hysteresis);
                    let value = reading.value;
                    self.step(
                        Verdict {
                            key: Key { alert: rule.name.clone(), severity, labels: reading.labels.clone() },
                            value,
                            level,
                            seconds_to_limit: None,
                            for_: rule.for_,
                            texts: &|| rule.ratio.texts(level),
                            holds: &|active| value > level || (active && value > clear),
                            reason: None,
                        },
                        now,
                    );
                }
            }
        }
        self.rules.thresholds = rules;
    }

    fn predictions(&mut self, s: &Snapshot, now: f64) {
        let p = self.rules.prediction.clone();
        for &resource in &p.resources {
            let track = self.trends.entry(resource).or_insert_with(|| TrendTrack {
                ring: SampleRing::new(p.window),
                blocks: BlockLog::new(leak::LONG_BLOCKS),
                series: String::new(),
                usage: None,
                trend: Trend::default(),
            });
            let Some(usage) = resource.usage(s) else {
                track.usage = None;
                continue;
            };
            if usage.series != track.series {
                track.ring.clear();
                track.blocks.clear();
                track.trend = Trend::default();
                track.series = usage.series.clone();
            }
            let stored = track.ring.push(now, usage.used);
            let before = track.ring.len();
            track.ring.trim(now);
            // The judgement changes only with the history (or the limit): between stored samples
            // it stands (a sample is stored every `retention / max_samples`).
            let limit_changed = track.usage.as_ref().is_none_or(|u| u.limit != usage.limit);
            if stored || before != track.ring.len() || limit_changed {
                let points = track.ring.points();
                track.blocks.update(&points, p.window.retention.as_secs_f64() / leak::BLOCKS as f64);
                let older = track.blocks.blocks();
                track.trend = leak::judge(&points, &older, now, usage.limit, &p.window, track.trend.growing);
            }
            track.usage = Some(usage.clone());
            let trend = track.trend;
            let ratio = usage.used / usage.limit;
            for level in &p.levels {
                let for_ = p.for_of(level);
                let lookahead = (level.horizon + for_).as_secs_f64();
                let clear = rules::clear_level(level.min_ratio, p.hysteresis);
                let min = level.min_ratio;
                let projected = trend.projected_ratio(for_.as_secs_f64(), usage.limit);
                let ttl = trend.seconds_to_limit.filter(|_| trend.growing);
                self.step(
                    Verdict {
                        key: Key {
                            alert: resource.alert().to_owned(),
                            severity: level.severity,
                            labels: usage.labels.clone(),
                        },
                        value: ratio,
                        level: min,
                        seconds_to_limit: trend.seconds_to_limit,
                        for_,
                        texts: &|| resource.texts(level.horizon, min, for_, p.window.retention),
                        holds: &|active| {
                            let limit = if active { lookahead * rules::TTL_HYSTERESIS } else { lookahead };
                            let floor = if active { clear } else { min };
                            ttl.is_some_and(|t| t < limit) && projected.is_some_and(|r| r > floor)
                        },
                        reason: None,
                    },
                    now,
                );
            }
        }
    }

    fn oom_kills(&mut self, s: &Snapshot, now: f64) {
        let Some(rule) = self.rules.oom_kill else { return };
        if s.oom.target.is_empty() {
            return;
        }
        let kills = s.oom.kills_total;
        let delta = match &self.oom.last {
            // leakwatch's own count only grows; a lower one belongs to a new count (everything counts).
            Some((target, last)) if *target == s.oom.target => kills.checked_sub(*last).unwrap_or(kills),
            // The count starts at 0 with leakwatch: every kill in it is news.
            _ => kills,
        };
        self.oom.last = Some((s.oom.target.clone(), kills));
        let window = rule.window.as_secs_f64();
        let within = |t: Option<f64>| t.is_some_and(|t| now - t <= window);
        if delta > 0 {
            self.oom.episode_kills = if within(self.oom.last_kill_at) { self.oom.episode_kills + delta } else { delta };
            self.oom.last_kill_at = Some(now);
        }
        let in_window = if within(self.oom.last_kill_at) { self.oom.episode_kills } else { 0 };
        self.step(
            Verdict {
                key: Key {
                    alert: OOM_ALERT.to_owned(),
                    severity: Severity::Critical,
                    labels: vec![("target", s.oom.target.clone())],
                },
                value: in_window as f64,
                level: 0.0,
                seconds_to_limit: None,
                for_: Duration::ZERO,
                texts: &rules::oom_texts,
                holds: &|_| in_window > 0,
                reason: None,
            },
            now,
        );
    }

    /// `LeakwatchTargetDown`: the configured target has no process (for the rule's `for`).
    fn target_down(&mut self, s: &Snapshot, now: f64) {
        let Some(rule) = self.rules.target_down else { return };
        if s.oom.target.is_empty() {
            return;
        }
        let down = !s.oom.up;
        self.step(
            Verdict {
                key: Key {
                    alert: TARGET_DOWN_ALERT.to_owned(),
                    severity: Severity::Warning,
                    labels: vec![("target", s.oom.target.clone())],
                },
                value: if down { 1.0 } else { 0.0 },
                level: 0.0,
                seconds_to_limit: None,
                for_: rule.for_,
                texts: &rules::target_down_texts,
                holds: &|_| down,
                reason: None,
            },
            now,
        );
    }

    /// Instances without a reading this time: their condition does not hold (for `reason`, when
    /// given: the target is gone).
    fn unseen(&mut self, now: f64, reason: Option<&'static str>) {
        let retention = self.rules.history.resolved_retention.as_secs_f64();
        let keys: Vec<Key> = self.instances.iter().filter(|(_, i)| !i.seen).map(|(k, _)| k.clone()).collect();
        for key in keys {
            let Some(inst) = self.instances.get(&key) else { continue };
            let (value, level, texts) = (inst.value, inst.level, inst.texts.clone());
            let state = inst.state;
            if state.is_active() {
                self.step(
                    Verdict {
                        key: key.clone(),
                        value,
                        level,
                        seconds_to_limit: None,
                        for_: Duration::ZERO,
                        texts: &|| (*texts).clone(),
                        holds: &|_| false,
                        reason,
                    },
                    now,
                );
                if let Some(i) = self.instances.get_mut(&key) {
                    i.seen = false;
                }
            }
            let drop = match self.instances.get(&key) {
                Some(i) => match i.state {
                    State::Inactive => true,
                    State::Resolved => i.resolved_at.is_some_and(|t| now - t >= retention),
                    _ => false,
                },
                None => false,
            };
            if drop {
                self.instances.remove(&key);
            }
        }
        // Resolved instances that are still measured also leave the list after the retention.
        for inst in self.instances.values_mut() {
            if inst.state == State::Resolved && inst.resolved_at.is_some_and(|t| now - t >= retention) {
                inst.state = State::Inactive;
                inst.resolved_at = None;
            }
        }
    }

    fn step(&mut self, v: Verdict<'_>, now: f64) {
        let inst = self.instances.entry(v.key.clone()).or_insert_with(|| Instance {
            state: State::Inactive,
            value: v.value,
            level: v.level,
            seconds_to_limit: None,
            active_since: None,
            fired_at: None,
            resolved_at: None,
            resolved_reason: None,
            texts: Arc::new((v.texts)()),
            seen: true,
        });
        if self.texts_stale {
            inst.texts = Arc::new((v.texts)());
        }
        inst.seen = true;
        inst.value = v.value;
        inst.level = v.level;
        inst.seconds_to_limit = v.seconds_to_limit;
        let before = inst.state;
        let holds = (v.holds)(before.is_active());
        let for_ = v.for_.as_secs_f64();
        let after = match (before, holds) {
            (State::Inactive | State::Resolved, true) => {
                inst.active_since = Some(now);
                inst.resolved_at = None;
                inst.resolved_reason = None;
                if for_ <= 0.0 {
                    State::Firing
                } else {
                    State::Pending
                }
            }
            (State::Pending, true) if inst.active_since.is_some_and(|t| now - t >= for_) => State::Firing,
            (State::Pending, false) => {
                inst.active_since = None;
                State::Inactive
            }
            (State::Firing, false) => {
                inst.resolved_at = Some(now);
                inst.resolved_reason = v.reason;
                State::Resolved
            }
            (state, _) => state,
        };
        if after == State::Firing && before != State::Firing {
            inst.fired_at = Some(now);
        }
        if after == before {
            return;
        }
        inst.state = after;
        let transition = Transition {
            at: now,
            alert: v.key.alert.clone(),
            severity: v.key.severity,
            labels: v.key.labels.iter().cloned().collect(),
            from: before,
            to: after,
            value: v.value,
            reason: v.reason,
        };
        tracing::info!(
            alert = %transition.alert,
            severity = transition.severity.as_str(),
            from = before.as_str(),
            to = after.as_str(),
            value = v.value,
            reason = v.reason.unwrap_or(""),
            "alert state changed"
        );
        self.history.push(now, transition);
        self.history_changed = true;
    }

    fn publish(&self, seq: u64, now: f64) -> AlertState {
        let alerts = self
            .instances
            .iter()
            .map(|(k, i)| AlertView {
                alert: k.alert.clone(),
                severity: k.severity,
                state: i.state,
                labels: k.labels.iter().cloned().collect(),
                value: i.value,
                level: i.level,
                seconds_to_limit: i.seconds_to_limit,
                projection: i.seconds_to_limit.map(|_| PROJECTION),
                active_since: i.active_since.filter(|_| i.state.is_active()),
                fired_at: i.fired_at.filter(|_| matches!(i.state, State::Firing | State::Resolved)),
                resolved_at: i.resolved_at,
                resolved_reason: i.resolved_reason.filter(|_| i.state == State::Resolved),
                summary: rules::render_template(&i.texts.0, &k.labels, i.value),
                description: rules::render_template(&i.texts.1, &k.labels, i.value),
                runbook_url: rules::runbook_url(&self.rules.runbook_base, &k.alert),
            })
            .collect();
        let trends = self
            .trends
            .iter()
            .filter_map(|(resource, t)| {
                let usage = t.usage.as_ref()?;
                Some(TrendView {
                    resource: resource.as_str(),
                    labels: usage.labels.iter().cloned().collect(),
                    used: usage.used,
                    limit: usage.limit,
                    samples: t.ring.len(),
                    max_samples: t.ring.limits().max_samples,
                    trend: t.trend.into(),
                })
            })
            .collect();
        AlertState {
            seq,
            evaluated_at: now,
            alerts,
            trends,
            history: self.published_history.clone(),
            history_max: self.history.max(),
            structures: vec![
                trend_structure(&self.trends),
                trend_blocks_structure(&self.trends),
                history_structure(&self.history),
                Structure::counted("alert_instances", self.instances.len(), None),
            ],
        }
    }
}

/// Every resource's sample history, summed.
fn trend_structure(trends: &BTreeMap<Resource, TrendTrack>) -> Structure {
    let sum = |f: &dyn Fn(&TrendTrack) -> usize| trends.values().map(f).sum::<usize>();
    Structure::deque::<(f64, f64)>(
        "alert_trend_samples",
        sum(&|t| t.ring.len()),
        sum(&|t| t.ring.capacity()),
        Some(sum(&|t| t.ring.limits().max_samples)),
    )
}

/// Every resource's block summaries beyond its sample history, summed.
fn trend_blocks_structure(trends: &BTreeMap<Resource, TrendTrack>) -> Structure {
    let sum = |f: &dyn Fn(&TrendTrack) -> usize| trends.values().map(f).sum::<usize>();
    Structure::deque::<leak::Block>(
        "alert_trend_blocks",
        sum(&|t| t.blocks.len()),
        sum(&|t| t.blocks.capacity()),
        Some(sum(&|t| t.blocks.max())),
    )
}

fn history_structure(history: &BoundedLog<Transition>) -> Structure {
    Structure::deque::<(f64, Transition)>("alert_transitions", history.len(), history.capacity(), Some(history.max()))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
