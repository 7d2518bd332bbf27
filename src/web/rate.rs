//! `rate_limit`: one token bucket over all requests (exporter-toolkit uses Go's
//! `rate.Limiter`): a token every `interval`, at most `burst` saved; a request without a token
//! is answered 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bucket.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    burst: u32,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// A full bucket of `burst` tokens, refilled one per `interval` (not zero).
    pub(crate) fn new(interval: Duration, burst: u32) -> Self {
        Self { interval, burst, state: Mutex::new((f64::from(burst), Instant::now())) }
    }

    /// Takes a token if one is there.
    pub(crate) fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = *state;
        let earned = now.saturating_duration_since(last).as_secs_f64() / self.interval.as_secs_f64();
        let tokens = (tokens + earned).min(f64::from(self.burst));
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = RateLimit::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limit.allow_at(t0)));
        assert!(!limit.allow_at(t0));
        assert!(!limit.allow_at(t0 + Duration::from_millis(500)));
        assert!(limit.allow_at(t0 + Duration::from_millis(1000)));
        assert!(!limit.allow_at(t0 + Duration::from_millis(1100)));
        assert!((0..3).all(|_| limit.allow_at(t0 + Duration::from_secs(60))), "refills to the burst");
        assert!(!limit.allow_at(t0 + Duration::from_secs(60)), "and no further");
        let none = RateLimit::new(Duration::from_secs(1), 0);
        assert!(!none.allow_at(t0 + Duration::from_secs(5)), "burst 0 refuses everything, as in Go");
    }
}
