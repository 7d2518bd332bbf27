//! Leak detection: a robust growth-rate estimate over a bounded sample history, and the time
//! until the series reaches its limit.
//!
//! The slope is the Theil–Sen estimator (the median of the slopes between every pair of points),
//! which ignores up to ~29 % of outlying points. A slope alone is not a leak: a garbage-collector
//! sawtooth, a one-off step (a cache filled once) and a warm-up that levels off all have positive
//! slopes over some window. So the window is also split in two halves in time and the series is
//! judged *growing* only when
//!
//! 1. the whole window, the older half and the newer half all have a positive Theil–Sen slope,
//! 2. the two halves agree (the smaller slope is at least [`HALVES_AGREEMENT`] of the larger) and
//!    each rises by more than its own noise ([`HALF_MIN_RISE_OVER_SPREAD`]): a step or a warm-up
//!    shows up in one half only, a leak in both,
//! 3. the rise over the window (slope × span) is at least [`MIN_RISE_OVER_SPREAD`] times the
//!    robust spread of the residuals (1.4826 × their median absolute deviation): growth smaller
//!    than the noise (a sawtooth's amplitude) is not called a leak,
//!
//! and only once the history covers `min_fill` of its retention. The level "now" is the median
//! of every point projected to now along the slope; the time to the limit is
//! `(limit − level) / slope`.
//!
//! [`least_squares`] is the baseline this is compared with: an ordinary least-squares line over
//! the same window, which is what Prometheus's `predict_linear` computes.

use super::history::WindowLimits;

/// The smaller half-window slope must be at least this share of the larger one.
pub const HALVES_AGREEMENT: f64 = 0.4;
/// The rise over the window must be at least this many robust standard deviations of the residuals.
pub const MIN_RISE_OVER_SPREAD: f64 = 3.0;
/// Each half's rise must be at least this many robust standard deviations of its own residuals
/// (a flat half next to a step is not growth).
pub const HALF_MIN_RISE_OVER_SPREAD: f64 = 1.0;
/// Fewer points than this are never judged (nor in either half).
pub const MIN_POINTS: usize = 8;

/// What the detector concluded about one series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Trend {
    /// Points in the window.
    pub samples: usize,
    /// The share of the retention the window covers, 0..=1.
    pub fill: f64,
    /// Whether the window is full enough to judge (`fill >= min_fill` and enough points).
    pub ready: bool,
    /// Theil–Sen slope over the window, units per second (when ready).
    pub slope: Option<f64>,
    /// The level now along that slope (when ready).
    pub level: Option<f64>,
    /// Whether the series grows steadily (see the module doc).
    pub growing: bool,
    /// Seconds until `level` reaches the limit at `slope`; only when growing (0 at or above it).
    pub seconds_to_limit: Option<f64>,
}

/// Judges the points of a window (oldest first) at time `now` against `limit`.
pub fn judge(points: &[(f64, f64)], now: f64, limit: f64, window: &WindowLimits) -> Trend {
    let samples = points.len();
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    let retention = window.retention.as_secs_f64();
    // A full ring of `max_samples` points spaced `min_spacing` apart spans one spacing less
    // than the retention: that counts as full.
    let fill = if retention > 0.0 { ((span + window.min_spacing()) / retention).clamp(0.0, 1.0) } else { 0.0 };
    let mut trend = Trend { samples, fill, ..Trend::default() };
    if samples < MIN_POINTS || fill < window.min_fill || span <= 0.0 {
        return trend;
    }
    let Some(slope) = theil_sen(points) else { return trend };
    let level = median(points.iter().map(|&(t, y)| y + slope * (now - t)).collect());
    trend.ready = true;
    trend.slope = Some(slope);
    trend.level = level;
    trend.growing =
        slope > 0.0 && halves_agree(points, span) && rise_beats_noise(points, slope, span, MIN_RISE_OVER_SPREAD);
    if trend.growing {
        trend.seconds_to_limit = level.map(|l| if l >= limit { 0.0 } else { (limit - l) / slope });
    }
    trend
}

fn halves_agree(points: &[(f64, f64)], span: f64) -> bool {
    let middle = points[0].0 + span / 2.0;
    let split = points.partition_point(|&(t, _)| t < middle);
    let (older, newer) = points.split_at(split);
    if older.len() < MIN_POINTS / 2 || newer.len() < MIN_POINTS / 2 {
        return false;
    }
    let rises = |half: &[(f64, f64)], slope: f64| {
        let half_span = half[half.len() - 1].0 - half[0].0;
        rise_beats_noise(half, slope, half_span, HALF_MIN_RISE_OVER_SPREAD)
    };
    match (theil_sen(older), theil_sen(newer)) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
            a.min(b) >= HALVES_AGREEMENT * a.max(b) && rises(older, a) && rises(newer, b)
        }
        _ => false,
    }
}

fn rise_beats_noise(points: &[(f64, f64)], slope: f64, span: f64, factor: f64) -> bool {
    let t0 = points[0].0;
    let Some(intercept) = median(points.iter().map(|&(t, y)| y - slope * (t - t0)).collect()) else { return false };
    let residuals: Vec<f64> = points.iter().map(|&(t, y)| (y - intercept - slope * (t - t0)).abs()).collect();
    let spread = 1.4826 * median(residuals).unwrap_or(0.0);
    slope * span >= factor * spread
}

/// The Theil–Sen slope: the median of `(y_j − y_i) / (t_j − t_i)` over all pairs with
/// `t_j > t_i`. `None` with fewer than two distinct times.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(ti, yi)) in points.iter().enumerate() {
        for &(tj, yj) in &points[i + 1..] {
            if tj > ti {
                slopes.push((yj - yi) / (tj - ti));
            }
        }
    }
    median(slopes)
}

/// The ordinary least-squares line over the points, as `predict_linear` fits it: returns the
/// slope (per second) and the line's value at `now`. `None` with fewer than two distinct times.
pub fn least_squares(points: &[(f64, f64)], now: f64) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    // Centre the times for numerical stability (Unix seconds squared lose precision).
    let t_mean = points.iter().map(|p| p.0).sum::<f64>() / n;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(t, y) in points {
        sxy += (t - t_mean) * (y - y_mean);
        sxx += (t - t_mean) * (t - t_mean);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, y_mean + slope * (now - t_mean)))
}

/// The median (the mean of the two middle values for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, &mut upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    if values.len() % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;
