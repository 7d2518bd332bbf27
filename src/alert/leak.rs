//! Leak detection: whether a resource grows significantly over a bounded sample history, and
//! when its peaks reach the limit.
//!
//! The window is cut into blocks of `retention / BLOCKS` (5 min by default), counted back from
//! the newest sample. Each block is summarised by the middle of its low and high quantiles
//! (`BLOCK_LOW`, `BLOCK_HIGH`): under a GC sawtooth shorter than a block that is the middle
//! of its troughs and peaks, whatever the phase, and one spike moves it little. Over those block
//! values:
//!
//! 1. **Significance, not size.** The slope is the median of the slopes between every pair of
//!    blocks (Theil–Sen); its confidence interval comes from the distribution of Kendall's S,
//!    widened by `(1 + ρ) / (1 − ρ)` for the lag-1 autocorrelation ρ of the blocks' residuals
//!    (slow wander and long-period sawtooths make neighbouring blocks alike). A series is growing
//!    only when the interval's lower bound is above zero (`Z_ENTER` standard deviations).
//! 2. **Shape**, to start: the older and the newer half of the blocks judged both rise and the
//!    smaller half-slope is at least `AGREE_ENTER` of the larger (a one-off step shows up in
//!    one half only, a leak in both); each third rises by `AGREE_THIRDS` of the slope (a
//!    staircase of a few steps has a flat third); over the whole window the newer half rises at
//!    least `SLOWING` as fast as the older. And always: over the whole window the newer half
//!    does not rise significantly slower than the older (its interval entirely below the
//!    older's): a warm-up levelling off slows down, a leak that stopped too, a leak keeps its pace.
//! 3. **Scale.** The whole window is tried first, then its newest two thirds and newest half
//!    (never fewer than `MIN_BLOCKS` blocks): a leak that started recently is judged on the
//!    part of the window it fills, so it is not averaged away by the flat history before it.
//! 4. **Hysteresis.** Once growing, a series stays growing while the lower bound at `Z_STAY`
//!    standard deviations is above zero and the window does not slow down significantly (the
//!    other shape checks only apply to start): a wandering series does not drop out for single
//!    evaluations; before an older block exists, a steeper shorter scale still significant at
//!    `Z_ENTER` holds instead of the flatter whole window. While growing, the **longer scale** may speak too: the older blocks of a
//!    `BlockLog` followed by the window's (at most `LONG_BLOCKS`),
//!    when its lower bound is above zero and its slope lies between the window's lower bound and
//!    `LONG_AGREE` times its upper bound (an hour of wander may flatten, three hours do not; a
//!    leak that started inside the window keeps the window's slope); that lower bound is taken at
//!    `Z_ENTER` when the longer scale's halves agree. A longer scale of at least two windows
//!    whose halves agree and which does not slow down overrules a window that slows down. The
//!    longer scale's newest two thirds speak instead of its whole when they span 1.5 windows
//!    and rise steeper, significantly (a flat stretch before an onset flattens the whole).
//!
//! The level "now" is the median of the samples of the judged blocks projected to now along the
//! slope; the **peaks** are their `PEAK_QUANTILE` quantile (the upper envelope: a GC sawtooth
//! is killed when its peaks, not its median, reach the limit). The time to the limit is
//! `(limit − peaks) / slope`; the level's `(limit − level) / slope` is reported alongside.
//!
//! [`least_squares`] is the baseline this is compared with: an ordinary least-squares line over
//! the same window, which is what Prometheus's `predict_linear` computes.

use super::history::WindowLimits;

/// The window is cut into this many blocks (of `retention / BLOCKS` each).
pub(crate) const BLOCKS: usize = 12;
/// The longer scale (hysteresis only) spans at most this many blocks, older ones included.
pub(crate) const LONG_BLOCKS: usize = 3 * BLOCKS;
/// The longer scale's slope may exceed the window's upper bound by at most this factor.
pub(crate) const LONG_AGREE: f64 = 2.0;
/// Fewer blocks than this are never judged.
pub(crate) const MIN_BLOCKS: usize = 6;
/// Fewer points than this are never judged.
pub(crate) const MIN_POINTS: usize = 8;
/// A block's low quantile.
pub(crate) const BLOCK_LOW: f64 = 0.1;
/// A block's high quantile.
pub(crate) const BLOCK_HIGH: f64 = 0.9;
/// Standard deviations of the slope's lower bound to start calling a series growing.
pub(crate) const Z_ENTER: f64 = 2.33;
/// Standard deviations of the slope's lower bound to keep calling it growing.
pub(crate) const Z_STAY: f64 = 1.0;
/// The smaller half-slope must be at least this share of the larger one to start growing.
pub(crate) const AGREE_ENTER: f64 = 0.5;
/// To start growing, each third of the blocks must rise by at least this share of the slope.
pub(crate) const AGREE_THIRDS: f64 = 0.3;
/// To start growing, the newer half of the window must rise at least this share as fast as the older.
pub(crate) const SLOWING: f64 = 0.6;
/// The quantile of the projected samples taken as the peaks.
pub(crate) const PEAK_QUANTILE: f64 = 0.95;
/// The largest lag-1 autocorrelation allowed for in the variance (beyond, the inflation is capped).
const MAX_AUTOCORRELATION: f64 = 0.9;

/// What the detector concluded about one series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Trend {
    /// Points in the window.
    pub(crate) samples: usize,
    /// The share of the retention the window covers, 0..=1.
    pub(crate) fill: f64,
    /// Whether the window is full enough to judge (`fill >= min_fill` and enough points and blocks).
    pub(crate) ready: bool,
    /// Theil–Sen slope over the blocks judged, units per second (when ready).
    pub(crate) slope: Option<f64>,
    /// The lower bound of the slope's confidence interval (when ready).
    pub(crate) slope_low: Option<f64>,
    /// Seconds of history the judgement used (the whole window or its newest part).
    pub(crate) judged_seconds: Option<f64>,
    /// The level now along that slope (when ready).
    pub(crate) level: Option<f64>,
    /// The peaks now along that slope (the upper envelope; when ready).
    pub(crate) peaks: Option<f64>,
    /// Whether the series grows significantly (see the module doc).
    pub(crate) growing: bool,
    /// Seconds until the peaks reach the limit at `slope`; only when growing (0 at or above it).
    pub(crate) seconds_to_limit: Option<f64>,
    /// Seconds until the level reaches the limit; only when growing.
    pub(crate) level_seconds_to_limit: Option<f64>,
}

impl Trend {
    /// The peaks' share of `limit` `ahead` seconds from now along the slope (when growing).
    pub(crate) fn projected_ratio(&self, ahead: f64, limit: f64) -> Option<f64> {
        let (peaks, slope) = (self.peaks?, self.slope?);
        (self.growing && limit > 0.0).then(|| (peaks + slope * ahead) / limit)
    }
}

/// One block of samples, summarised: its mean time, the middle of its low and high quantiles,
/// and its high quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Block {
    /// The mean time of its points.
    pub(crate) t: f64,
    /// The middle of its [`BLOCK_LOW`] and [`BLOCK_HIGH`] quantiles.
    pub(crate) value: f64,
    /// The time its oldest point was taken.
    pub(crate) start: f64,
    /// The time its block ends (its newest point's time, or the block's edge).
    pub(crate) end: f64,
    /// Its [`BLOCK_HIGH`] quantile.
    pub(crate) high: f64,
}

/// Summarises the points of one block (oldest first) ending at `end`: it needs two points
/// covering at least `min_span` seconds. `values` is scratch space.
pub(crate) fn summarize(block: &[(f64, f64)], end: f64, min_span: f64, values: &mut Vec<f64>) -> Option<Block> {
    let (first, last) = (block.first()?, block.last()?);
    if block.len() < 2 || last.0 - first.0 < min_span {
        return None;
    }
    values.clear();
    values.extend(block.iter().map(|p| p.1));
    let low = quantile(values, BLOCK_LOW)?;
    let high = quantile(values, BLOCK_HIGH)?;
    let t = block.iter().map(|p| p.0).sum::<f64>() / block.len() as f64;
    Some(Block { t, value: (low + high) / 2.0, start: first.0, end, high })
}

/// A Theil–Sen fit over blocks: the slope and its confidence interval.
#[derive(Debug, Clone, Copy)]
struct Fit {
    slope: f64,
    low: f64,
    high: f64,
}

/// Judges the points of a window (oldest first) at time `now` against `limit`; `older` are
/// summaries of blocks before the window (oldest first; see [`BlockLog`](super::history::BlockLog)),
/// `was_growing` is the previous judgement (the hysteresis).
pub(crate) fn judge(
    points: &[(f64, f64)],
    older: &[Block],
    now: f64,
    limit: f64,
    window: &WindowLimits,
    was_growing: bool,
) -> Trend {
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
    let blocks = blocks(points, retention / BLOCKS as f64);
    if blocks.len() < MIN_BLOCKS {
        return trend;
    }
    let z = if was_growing { Z_STAY } else { Z_ENTER };
    let n = blocks.len();
    let mut scales = vec![n, n * 2 / 3, n / 2];
    scales.retain(|&m| m >= MIN_BLOCKS);
    scales.dedup();
    let mut chosen: Option<(f64, Fit)> = None;
    let mut whole = None;
    // A series slowing down over the whole window is not rescued by a shorter scale.
    // Staying growing, a window that slows down is overruled by a longer scale of at least
    // twice the window whose halves agree and which does not slow down itself: an hour of
    // wander can look like a leak stopping, hours of it do not.
    let long = if was_growing { longer(older, &blocks) } else { None };
    let slowing = decelerating(&blocks, !was_growing)
        && !long
            .as_deref()
            .is_some_and(|l| l.len() >= 2 * n && halves_agree(l, AGREE_ENTER) && !decelerating(l, false));
    let long = long.filter(|_| !slowing);
    for &m in &scales {
        let judged = &blocks[n - m..];
        let Some(fit) = sen(judged, z) else { continue };
        whole.get_or_insert((judged[0].start, fit));
        let shape = was_growing || (halves_agree(judged, AGREE_ENTER) && thirds_rise(judged, fit.slope));
        if !slowing && fit.low > 0.0 && fit.slope > 0.0 && shape {
            // Staying growing before a longer scale exists, a steeper shorter scale that is
            // significant at [`Z_ENTER`] holds: a wandering leak that went pending on its newest
            // half is not dropped when the flatter whole window takes over.
            if let Some((_, c)) = chosen {
                if c.slope >= fit.slope || !sen(judged, Z_ENTER).is_some_and(|f| f.low > 0.0) {
                    continue;
                }
            }
            chosen = Some((judged[0].start, fit));
            if !was_growing || long.is_some() {
                break;
            }
        }
    }
    // Staying growing, the longer scale speaks when it is significant and its slope lies above
    // the window's lower bound and within [`LONG_AGREE`] times its upper bound: a wandering
    // series' hour may flatten, its three hours do not;
    // a leak that started in the window keeps the window's steeper slope, and a flat window
    // is not lifted by a step hours ago.
    // When the longer scale's halves agree (no onset inside it), the window's lower bound for
    // that is taken at [`Z_ENTER`]: under a sawtooth whose period is half the window, the
    // window's slope follows the ramp at the top of a period, and its interval at [`Z_STAY`]
    // leaves out the longer scale's (right) slope.
    if was_growing && !slowing {
        // The newest two thirds of the longer scale, when they span 1.5 windows and rise
        // steeper and significantly, speak instead of its whole: an onset inside the longer
        // scale (a flat stretch before the leak) flattens the whole.
        let long = long.and_then(|mut long| {
            let fit = sen(&long, Z_STAY)?;
            let part = long.len() / 3;
            let newer = (long.len() - part >= n + n / 2).then(|| sen(&long[part..], Z_STAY)).flatten();
            let fit = match newer {
                Some(f) if f.slope > fit.slope && f.low > 0.0 => {
                    long.drain(..part);
                    f
                }
                _ => fit,
            };
            Some((long.first()?.start, fit, long))
        });
        let within = |f: &Fit, long: &[Block]| {
            whole.is_some_and(|(_, w): (f64, Fit)| {
                let low = if halves_agree(long, AGREE_ENTER) {
                    sen(&blocks, Z_ENTER).map_or(w.low, |a| a.low.min(w.low))
                } else {
                    w.low
                };
                low <= f.slope && f.slope <= LONG_AGREE * w.high
            })
        };
        if let Some((from, fit, _)) = long.filter(|(_, f, l)| f.low > 0.0 && f.slope > 0.0 && within(f, l)) {
            chosen = Some((from, fit));
        }
    }
    let Some((from, fit)) = chosen.or(whole) else { return trend };
    let growing = chosen.is_some();
    let mut projected: Vec<f64> =
        points.iter().filter(|&&(t, _)| t >= from).map(|&(t, y)| y + fit.slope * (now - t)).collect();
    let level = quantile(&mut projected, 0.5);
    let peaks = quantile(&mut projected, PEAK_QUANTILE);
    trend.ready = true;
    trend.slope = Some(fit.slope);
    trend.slope_low = Some(fit.low);
    trend.judged_seconds = Some(now.max(blocks[n - 1].t) - from);
    trend.level = level;
    trend.peaks = peaks;
    trend.growing = growing;
    if growing {
        let to_limit = |v: f64| if v >= limit { 0.0 } else { (limit - v) / fit.slope };
        trend.seconds_to_limit = peaks.map(to_limit);
        trend.level_seconds_to_limit = level.map(to_limit);
    }
    trend
}

/// The older blocks that end before the window's first, then the window's: at most
/// [`LONG_BLOCKS`], newest kept. `None` without an older block.
fn longer(older: &[Block], recent: &[Block]) -> Option<Vec<Block>> {
    let first = recent.first()?.start;
    let mut long: Vec<Block> = older.iter().filter(|b| b.end <= first).copied().collect();
    if long.is_empty() {
        return None;
    }
    long.extend_from_slice(recent);
    let skip = long.len().saturating_sub(LONG_BLOCKS);
    Some(long.split_off(skip))
}

/// Cuts the points into blocks of `len` seconds counted back from the newest point; a block
/// needs two points and to cover half its length (the oldest one may be partial).
fn blocks(points: &[(f64, f64)], len: f64) -> Vec<Block> {
    let mut out = Vec::with_capacity(BLOCKS + 1);
    let Some(&(newest, _)) = points.last() else { return out };
    if len <= 0.0 {
        return out;
    }
    let mut end = points.len();
    let mut edge = newest - len;
    let mut values = Vec::with_capacity(points.len() / BLOCKS + 2);
    while end > 0 {
        let start = points[..end].partition_point(|&(t, _)| t <= edge);
        if let Some(block) = summarize(&points[start..end], points[end - 1].0, len / 2.0, &mut values) {
            out.push(block);
        }
        end = start;
        edge -= len;
    }
    out.reverse();
    out
}

/// Theil–Sen over the blocks, with the lower bound of the slope's confidence interval at `z`
/// standard deviations of Kendall's S (widened for the residuals' lag-1 autocorrelation).
fn sen(blocks: &[Block], z: f64) -> Option<Fit> {
    let mut slopes = pair_slopes(blocks);
    let slope = quantile(&mut slopes, 0.5)?;
    let mut offsets: Vec<f64> = blocks.iter().map(|b| b.value - slope * b.t).collect();
    let intercept = quantile(&mut offsets, 0.5)?;
    let residuals: Vec<f64> = blocks.iter().map(|b| b.value - intercept - slope * b.t).collect();
    let (mut lag, mut sq) = (0.0, 0.0);
    for w in residuals.windows(2) {
        lag += w[0] * w[1];
    }
    for r in &residuals {
        sq += r * r;
    }
    let rho = if sq > 0.0 { (lag / sq).clamp(0.0, MAX_AUTOCORRELATION) } else { 0.0 };
    let n = blocks.len() as f64;
    let variance = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0 * (1.0 + rho) / (1.0 - rho);
    let pairs = slopes.len() as f64;
    let rank = ((pairs - z * variance.sqrt()) / 2.0).floor();
    let (low, high) = if rank < 0.0 {
        (f64::NEG_INFINITY, f64::INFINITY)
    } else {
        // Two selections, not a sort: the longer scale has up to 630 pairs per fit.
        let last = slopes.len() - 1;
        let k = (rank as usize).min(last);
        let low = *slopes.select_nth_unstable_by(k, f64::total_cmp).1;
        let high = *slopes.select_nth_unstable_by(last - k, f64::total_cmp).1;
        (low, high)
    };
    Some(Fit { slope, low, high })
}

fn pair_slopes(blocks: &[Block]) -> Vec<f64> {
    let mut slopes = Vec::with_capacity(blocks.len() * blocks.len().saturating_sub(1) / 2);
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            if b.t > a.t {
                slopes.push((b.value - a.value) / (b.t - a.t));
            }
        }
    }
    slopes
}

/// Whether the older and the newer half both rise and agree to `agree`.
fn halves_agree(blocks: &[Block], agree: f64) -> bool {
    let half = blocks.len() / 2;
    let slope = |b: &[Block]| quantile(&mut pair_slopes(b), 0.5);
    match (slope(&blocks[..half]), slope(&blocks[blocks.len() - half..])) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => a.min(b) >= agree * a.max(b),
        _ => false,
    }
}

/// Whether the newer half of the blocks rises significantly slower than the older (their
/// intervals at [`Z_ENTER`] apart): a warm-up levelling off, or a leak that stopped. To start
/// growing, the newer half must also rise at least [`SLOWING`] as fast as the older (a young
/// window is too short for the intervals to tell).
fn decelerating(blocks: &[Block], starting: bool) -> bool {
    let half = blocks.len() / 2;
    match (sen(&blocks[..half], Z_ENTER), sen(&blocks[blocks.len() - half..], Z_ENTER)) {
        (Some(older), Some(newer)) => {
            newer.high < older.low || (starting && older.slope > 0.0 && newer.slope < SLOWING * older.slope)
        }
        _ => false,
    }
}

/// Whether each third of the blocks rises by at least [`AGREE_THIRDS`] of `slope` (a staircase
/// of a few one-off steps has a flat third; a leak rises in each).
fn thirds_rise(blocks: &[Block], slope: f64) -> bool {
    let n = blocks.len();
    let cuts = [0, n / 3, n - n / 3, n];
    cuts.windows(2).all(|w| {
        let part = &blocks[w[0]..w[1]];
        part.len() >= 2 && quantile(&mut pair_slopes(part), 0.5).is_some_and(|s| s >= AGREE_THIRDS * slope)
    })
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

/// The `q` quantile (0..=1, nearest rank; the median of an even count is the mean of the two
/// middle values); reorders `values`. `None` when empty.
fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let last = values.len() - 1;
    if (q - 0.5).abs() < f64::EPSILON && values.len() % 2 == 0 {
        let mid = values.len() / 2;
        let (_, &mut upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
        let lower = values[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        return Some((lower + upper) / 2.0);
    }
    let k = ((q.clamp(0.0, 1.0) * last as f64).round() as usize).min(last);
    let (_, &mut v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    Some(v)
}

#[cfg(test)]
#[path = "leak_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "leak_corpus.rs"]
mod leak_corpus;
