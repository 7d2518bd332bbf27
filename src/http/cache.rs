//! The rendered `/metrics` body, cached per (snapshot, alert state, reload attempt, cleanup count,
//! detail or not), so a scrape storm costs one render per sampling interval. Its gzip form is compressed once per body, on the
//! first scrape that asks for it. A body for an older snapshot can never be served again: the
//! cleanup drops it.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use super::encoding;
use crate::measure::{Structure, Trim, Trimmed};
use crate::snapshot::Snapshot;

/// What a cached body was rendered from: (snapshot seq, alert seq, reload generation, cleanups
/// performed, 1 for a detail scrape else 0).
pub(crate) type RenderKey = (u64, u64, u64, u64, u64);

/// One rendered body and, once asked for, its gzip form.
#[derive(Debug)]
struct Cached {
    key: RenderKey,
    plain: Bytes,
    gzip: Option<Bytes>,
}

/// The cached body.
#[derive(Debug)]
pub(crate) struct MetricsCache {
    body: Mutex<Option<Cached>>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl MetricsCache {
    /// An empty cache; `snapshots` tells when a cached body is stale.
    pub(crate) fn new(snapshots: watch::Receiver<Arc<Snapshot>>) -> Self {
        Self { body: Mutex::new(None), snapshots }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Cached>> {
        self.body.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The body for `key`: the cached one, or `render()`'s (cached unless the snapshot is the
    /// placeholder, seq 0). The body is stored without spare capacity. `render` runs without the
    /// cache locked, so it may measure the cache ([`MetricsCache::structure`]).
    pub(crate) fn get_or_render(&self, key: RenderKey, render: impl FnOnce() -> String) -> Bytes {
        if let Some(c) = &*self.lock() {
            if c.key == key && key.0 != 0 {
                return c.plain.clone();
            }
        }
        let body = Bytes::from(render().into_bytes().into_boxed_slice());
        *self.lock() = Some(Cached { key, plain: body.clone(), gzip: None });
        body
    }

    /// The gzip form of the body for `key`, compressed once per cached body (outside the lock);
    /// the placeholder snapshot's body is compressed each time, as it is rendered each time.
    pub(crate) fn get_or_render_gzip(&self, key: RenderKey, render: impl FnOnce() -> String) -> Bytes {
        let plain = self.get_or_render(key, render);
        if let Some(Cached { key: k, gzip: Some(gz), .. }) = &*self.lock() {
            if *k == key && key.0 != 0 {
                return gz.clone();
            }
        }
        let gz = encoding::gzip(&plain);
        if let Some(c) = self.lock().as_mut().filter(|c| c.key == key) {
            c.gzip = Some(gz.clone());
        }
        gz
    }

    /// The cache as a structure: 0 or 1 body, its bytes (plain and gzip).
    pub(crate) fn structure(&self) -> Structure {
        let cache = self.lock();
        let bytes = cache.as_ref().map_or(0, |c| c.plain.len() + c.gzip.as_ref().map_or(0, Bytes::len));
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
            if cache.as_ref().is_some_and(|c| c.key.0 < latest) {
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
        let first = cache.get_or_render((1, 0, 0, 0, 0), || format!("{}", cache.structure().len));
        assert_eq!(&first[..], b"0", "no body yet while the first one renders");
        let second = cache.get_or_render((2, 0, 0, 0, 0), || format!("{}", cache.structure().bytes.unwrap_or(0)));
        assert_eq!(&second[..], b"1", "the previous one-byte body, measured while the next renders");
    }

    #[test]
    fn a_stale_body_is_dropped_and_a_current_one_kept() {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::empty("t")));
        let cache = MetricsCache::new(rx);
        let mut one = Snapshot::empty("t");
        one.seq = 1;
        tx.send_replace(Arc::new(one.clone()));
        let body = cache.get_or_render((1, 0, 0, 0, 0), || "x".repeat(5000));
        assert_eq!(body.len(), 5000);
        assert_eq!(cache.get_or_render((1, 0, 0, 0, 0), || unreachable!("cached")), body);
        assert!(cache.trim().is_empty(), "the body of the latest snapshot is kept");
        one.seq = 2;
        tx.send_replace(Arc::new(one));
        let trimmed = cache.trim();
        assert_eq!(trimmed.len(), 1);
        assert_eq!((trimmed[0].bytes_before, trimmed[0].bytes_after, trimmed[0].freed_bytes), (5000, 0, 5000));
        assert_eq!(cache.structure().len, 0);
    }

    #[test]
    fn the_gzip_body_is_compressed_once_per_body_and_decodes_to_it() {
        use std::io::Read;
        let (_tx, rx) = watch::channel(Arc::new(Snapshot::empty("t")));
        let cache = MetricsCache::new(rx);
        let text = "leakwatch_up 1\n".repeat(500);
        let gz = cache.get_or_render_gzip((1, 0, 0, 0, 0), || text.clone());
        assert!(gz.len() < text.len() / 10, "compressed: {} of {} bytes", gz.len(), text.len());
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut plain).expect("gzip");
        assert_eq!(plain, text);
        assert_eq!(cache.structure().bytes, Some((text.len() + gz.len()) as u64), "both forms are counted");
        let again = cache.get_or_render_gzip((1, 0, 0, 0, 0), || unreachable!("cached"));
        assert_eq!(again.as_ptr(), gz.as_ptr(), "the same compressed bytes, not a second compression");
        let next = cache.get_or_render_gzip((2, 0, 0, 0, 0), || "other\n".to_owned());
        assert_ne!(next, gz, "a new key renders and compresses anew");
    }
}
