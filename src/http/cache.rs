//! The rendered `/metrics` body, cached per (snapshot, alert state, reload attempt, cleanup count), so a scrape
//! storm costs one render per sampling interval. A body for an older snapshot can never be served
//! again: the cleanup drops it.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cleanup::{Structure, Trim, Trimmed};
use crate::snapshot::Snapshot;

/// What a cached body was rendered from: (snapshot seq, alert seq, reload generation, cleanups
/// performed).
pub type RenderKey = (u64, u64, u64, u64);

/// The cached body.
#[derive(Debug)]
pub struct MetricsCache {
    body: Mutex<Option<(RenderKey, Bytes)>>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl MetricsCache {
    /// An empty cache; `snapshots` tells when a cached body is stale.
    pub fn new(snapshots: watch::Receiver<Arc<Snapshot>>) -> Self {
        Self { body: Mutex::new(None), snapshots }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(RenderKey, Bytes)>> {
        self.body.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The body for `key`: the cached one, or `render()`'s (cached unless the snapshot is the
    /// placeholder, seq 0). The body is stored without spare capacity. `render` runs without the
    /// cache locked, so it may measure the cache ([`MetricsCache::structure`]).
    pub fn get_or_render(&self, key: RenderKey, render: impl FnOnce() -> String) -> Bytes {
        if let Some((k, body)) = &*self.lock() {
            if *k == key && key.0 != 0 {
                return body.clone();
            }
        }
        let body = Bytes::from(render().into_bytes().into_boxed_slice());
        *self.lock() = Some((key, body.clone()));
        body
    }

    /// The cache as a structure: 0 or 1 body, its bytes.
    pub fn structure(&self) -> Structure {
        let cache = self.lock();
        let bytes = cache.as_ref().map_or(0, |(_, b)| b.len());
        Structure {
            bytes: Some(bytes as u64),
            ..Structure::counted("metrics_cache", usize::from(cache.is_some()), Some(1))
        }
    }
}

impl Trim for MetricsCache {
    /// Drops a body rendered from an older snapshot (the next scrape renders anew anyway).
    fn trim(&self) -> Vec<Trimmed> {
        let latest = self.snapshots.borrow().seq;
        let before = self.structure();
        {
            let mut cache = self.lock();
            if cache.as_ref().is_some_and(|((seq, ..), _)| *seq < latest) {
                *cache = None;
            }
        }
        Trimmed::between(&before, &self.structure()).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_may_measure_the_cache_it_fills() {
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::empty("t")));
        let cache = MetricsCache::new(rx);
        let first = cache.get_or_render((1, 0, 0, 0), || format!("{}", cache.structure().len));
        assert_eq!(&first[..], b"0", "no body yet while the first one renders");
        let second = cache.get_or_render((2, 0, 0, 0), || format!("{}", cache.structure().bytes.unwrap_or(0)));
        assert_eq!(&second[..], b"1", "the previous one-byte body, measured while the next renders");
    }

    #[test]
    fn a_stale_body_is_dropped_and_a_current_one_kept() {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::empty("t")));
        let cache = MetricsCache::new(rx);
        let mut one = Snapshot::empty("t");
        one.seq = 1;
        tx.send_replace(Arc::new(one.clone()));
        let body = cache.get_or_render((1, 0, 0, 0), || "x".repeat(5000));
        assert_eq!(body.len(), 5000);
        assert_eq!(cache.get_or_render((1, 0, 0, 0), || unreachable!("cached")), body);
        assert!(cache.trim().is_empty(), "the body of the latest snapshot is kept");
        one.seq = 2;
        tx.send_replace(Arc::new(one));
        let trimmed = cache.trim();
        assert_eq!(trimmed.len(), 1);
        assert_eq!((trimmed[0].bytes_before, trimmed[0].bytes_after, trimmed[0].freed_bytes), (5000, 0, 5000));
        assert_eq!(cache.structure().len, 0);
    }
}
