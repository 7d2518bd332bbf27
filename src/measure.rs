//! What a structure holds and what trimming it released: sizes from capacities (`capacity ×
//! slot size`; a hash table's buckets and control bytes as hashbrown lays them out), and the
//! shrink rule shared by every owner, and the trim protocol (`Trim`, `TrimInbox`) the cleanup
//! task drives. A leaf: it imports nothing from the crate.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Below this many spare bytes a buffer is left as it is (shrinking it would only cost a
/// reallocation on the next write).
pub(crate) const MIN_SPARE_BYTES: u64 = 1024;

/// The size and cap of one internal structure, as `/status` lists it and the
/// `leakwatch_structure_*` families export it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Structure {
    /// What it is (a fixed set: `log_lines`, `conn_first_seen`, ...).
    pub(crate) name: &'static str,
    /// The log source, for a log buffer's parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<String>,
    /// Entries held now (bytes for a byte buffer such as `log_text`).
    pub(crate) len: u64,
    /// The configured cap on `len`, when there is one.
    pub(crate) max: Option<u64>,
    /// Entries the allocation has room for, when it is a growable buffer.
    pub(crate) capacity: Option<u64>,
    /// Bytes the allocation holds (capacity × slot size), when known.
    pub(crate) bytes: Option<u64>,
}

impl Structure {
    /// A structure with only a count and a cap (no allocation of its own to measure).
    pub fn counted(name: &'static str, len: usize, max: Option<usize>) -> Self {
        Self { name, source: None, len: len as u64, max: max.map(|m| m as u64), capacity: None, bytes: None }
    }

    /// A `VecDeque` (or `Vec`) with `len` entries out of `capacity` slots of `T`.
    pub fn deque<T>(name: &'static str, len: usize, capacity: usize, max: Option<usize>) -> Self {
        Self {
            name,
            source: None,
            len: len as u64,
            max: max.map(|m| m as u64),
            capacity: Some(capacity as u64),
            bytes: Some(slots_bytes::<T>(capacity)),
        }
    }

    /// A `HashMap<K, V>`.
    pub fn map<K, V>(name: &'static str, map: &HashMap<K, V>, max: Option<usize>) -> Self {
        Self {
            name,
            source: None,
            len: map.len() as u64,
            max: max.map(|m| m as u64),
            capacity: Some(map.capacity() as u64),
            bytes: Some(hash_table_bytes::<K, V>(map.capacity())),
        }
    }

    /// The same structure, for the log source `source`.
    pub(crate) fn of_source(self, source: &str) -> Self {
        Self { source: Some(source.to_owned()), ..self }
    }
}

/// What trimming one structure changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trimmed {
    /// The structure's name (as in `Structure::name`).
    pub name: &'static str,
    /// The log source, for a log buffer's parts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Entries before and after (they differ only when dead entries were dropped).
    pub len_before: u64,
    /// See `len_before`.
    pub len_after: u64,
    /// Allocated slots before and after.
    pub capacity_before: u64,
    /// See `capacity_before`.
    pub capacity_after: u64,
    /// Bytes the allocation held before.
    pub bytes_before: u64,
    /// Bytes it holds after.
    pub bytes_after: u64,
    /// `bytes_before − bytes_after`.
    pub freed_bytes: u64,
}

impl Trimmed {
    /// The change between two measurements of one structure; `None` when nothing changed.
    pub(crate) fn between(before: &Structure, after: &Structure) -> Option<Self> {
        let (b, a) = (before.bytes.unwrap_or(0), after.bytes.unwrap_or(0));
        if before.len == after.len && before.capacity == after.capacity && b == a {
            return None;
        }
        Some(Self {
            name: before.name,
            source: before.source.clone(),
            len_before: before.len,
            len_after: after.len,
            capacity_before: before.capacity.unwrap_or(0),
            capacity_after: after.capacity.unwrap_or(0),
            bytes_before: b,
            bytes_after: a,
            freed_bytes: b.saturating_sub(a),
        })
    }
}

/// Bytes of `capacity` slots of `T`.
pub(crate) fn slots_bytes<T>(capacity: usize) -> u64 {
    (capacity as u64).saturating_mul(std::mem::size_of::<T>() as u64)
}

/// Bytes of a hash table that reports `capacity`: hashbrown keeps a power-of-two number of
/// buckets (7/8 of them usable from 8 up, all but one below), one `(K, V)` slot and one control
/// byte per bucket, plus one group (16 bytes) of trailing control bytes.
pub(crate) fn hash_table_bytes<K, V>(capacity: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let buckets =
        if capacity < 8 { (capacity + 1).next_power_of_two().max(4) } else { (capacity * 8 / 7).next_power_of_two() };
    (buckets as u64) * (std::mem::size_of::<(K, V)>() as u64 + 1) + 16
}

/// Whether a buffer of `len` entries in `capacity` slots of `slot` bytes is worth shrinking: at
/// least half of it is spare, and the spare part holds at least [`MIN_SPARE_BYTES`].
pub(crate) fn worth_shrinking(len: usize, capacity: usize, slot: usize) -> bool {
    let spare = capacity.saturating_sub(len);
    spare >= len && (spare as u64).saturating_mul(slot as u64) >= MIN_SPARE_BYTES
}

/// Shrinks a deque to its length when worth it; live entries are kept, in order.
pub(crate) fn shrink_deque<T>(deque: &mut VecDeque<T>) {
    if worth_shrinking(deque.len(), deque.capacity(), std::mem::size_of::<T>()) {
        deque.shrink_to_fit();
    }
}

/// Shrinks a vector to `keep` slots (at least its length) when worth it.
pub(crate) fn shrink_vec<T>(vec: &mut Vec<T>, keep: usize) {
    let keep = keep.max(vec.len());
    if worth_shrinking(keep, vec.capacity(), std::mem::size_of::<T>()) {
        vec.shrink_to(keep);
    }
}

/// Shrinks a hash map to its length when worth it; every entry is kept.
pub(crate) fn shrink_map<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    let slot = std::mem::size_of::<(K, V)>() + 1;
    if worth_shrinking(map.len(), map.capacity(), slot) {
        map.shrink_to_fit();
    }
}

/// Measures a structure, runs `trim` on it, measures again: the change, if any.
pub(crate) fn trim_with<S>(
    state: &mut S,
    measure: impl Fn(&S) -> Structure,
    trim: impl FnOnce(&mut S),
) -> Option<Trimmed> {
    let before = measure(state);
    trim(state);
    Trimmed::between(&before, &measure(state))
}

/// Grows `buf` by at least `extra`, doubling but never past `cap` (so a full buffer holds no
/// slack beyond its cap).
pub(crate) fn reserve_capped<T>(buf: &mut VecDeque<T>, extra: usize, cap: usize) {
    let needed = buf.len() + extra;
    if needed > buf.capacity() {
        let target = (buf.capacity() * 2).clamp(needed, cap.max(needed));
        buf.reserve_exact(target - buf.len());
    }
}

/// A request for an owner to trim its structures; it answers with what changed.
pub(crate) type TrimRequest = oneshot::Sender<Vec<Trimmed>>;
/// Where an owner receives trim requests (it answers between its own passes).
pub(crate) type TrimInbox = mpsc::Receiver<TrimRequest>;

/// A structure the cleanup can trim from its own task (it sits behind its own short lock).
pub(crate) trait Trim: Send + Sync {
    /// Trims and reports what changed.
    fn trim(&self) -> Vec<Trimmed>;
}

/// A trim inbox and the sender the cleanup task keeps for it.
pub(crate) fn trim_channel() -> (mpsc::Sender<TrimRequest>, TrimInbox) {
    mpsc::channel(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_table_sizes_follow_the_bucket_layout() {
        assert_eq!(hash_table_bytes::<u64, u64>(0), 0);
        // 3 usable of 4 buckets; 7 of 8; 14 of 16; 28 of 32.
        for (capacity, buckets) in [(3, 4), (7, 8), (14, 16), (28, 32), (57_344, 65_536)] {
            assert_eq!(hash_table_bytes::<u64, u64>(capacity), buckets * 17 + 16, "capacity {capacity}");
        }
        // What the standard map reports matches the layout it is computed from.
        let mut m: HashMap<u64, u64> = HashMap::new();
        for i in 0..1000 {
            m.insert(i, i);
        }
        let buckets = (hash_table_bytes::<u64, u64>(m.capacity()) - 16) / 17;
        assert!(buckets.is_power_of_two() && buckets as usize >= m.capacity(), "{buckets} for {}", m.capacity());
    }

    #[test]
    fn only_mostly_spare_buffers_are_shrunk() {
        assert!(!worth_shrinking(600, 1000, 32), "less than half spare");
        assert!(worth_shrinking(500, 1000, 32));
        assert!(!worth_shrinking(0, 16, 32), "512 spare bytes are not worth a reallocation");
        assert!(worth_shrinking(0, 32, 32));
        assert!(!worth_shrinking(10, 10, 1 << 20), "nothing spare");
    }

    #[test]
    fn shrinking_keeps_every_entry_in_order_and_reports_the_capacity_difference() {
        let mut d: VecDeque<u64> = VecDeque::new();
        for i in 0..10_000 {
            d.push_back(i);
        }
        // Wrap the ring so the live part spans the end of the buffer.
        for i in 0..9_950 {
            d.pop_front();
            if i % 2 == 0 {
                d.push_back(10_000 + i);
            }
        }
        let expected: Vec<u64> = d.iter().copied().collect();
        let measure = |d: &VecDeque<u64>| Structure::deque::<u64>("test", d.len(), d.capacity(), Some(10_000));
        let cap_before = d.capacity();
        let t = trim_with(&mut d, measure, shrink_deque).unwrap();
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), expected, "no entry lost or reordered");
        assert_eq!(t.capacity_before, cap_before as u64);
        assert_eq!(t.capacity_after, d.capacity() as u64);
        assert_eq!(t.freed_bytes, ((cap_before - d.capacity()) * 8) as u64);
        assert_eq!((t.len_before, t.len_after), (expected.len() as u64, expected.len() as u64));
        assert!(trim_with(&mut d, measure, shrink_deque).is_none(), "a second trim changes nothing");
    }

    #[test]
    fn maps_shrink_to_their_entries() {
        let mut m: HashMap<u64, std::time::Instant> = HashMap::new();
        let now = std::time::Instant::now();
        for i in 0..20_000 {
            m.insert(i, now);
        }
        m.retain(|k, _| *k < 10);
        let t = trim_with(&mut m, |m| Structure::map("m", m, Some(65_536)), shrink_map).unwrap();
        assert_eq!(m.len(), 10);
        assert!((0..10).all(|k| m.contains_key(&k)));
        assert_eq!(t.bytes_after, hash_table_bytes::<u64, std::time::Instant>(m.capacity()));
        assert!(t.freed_bytes > 500_000, "{t:?}");
    }

    #[test]
    fn capped_growth_never_passes_the_cap() {
        let mut d: VecDeque<u8> = VecDeque::new();
        for _ in 0..1000 {
            reserve_capped(&mut d, 1, 700);
            if d.len() < 700 {
                d.push_back(0);
            }
        }
        assert!(d.capacity() <= 700 + 8, "capacity {}", d.capacity());
    }
}
