//! The snapshot's JSON form (for `GET /status`): label enums as their label values, durations
//! in seconds and times in Unix seconds (both through `crate::seconds`), `(table, state)` maps nested by table, error counts as a
//! list.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::{
    Basis, CgroupVersion, CgroupVia, ErrorCounts, ErrorReason, ErrorSource, FdKind, ProcState, Protocol, SockState,
    SocketMethod,
};

/// Label enums serialize as their label value (also as map keys).
macro_rules! as_label {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )*};
}

as_label!(
    Protocol,
    SockState,
    ProcState,
    FdKind,
    SocketMethod,
    CgroupVersion,
    CgroupVia,
    Basis,
    ErrorSource,
    ErrorReason
);

/// `{(tcp, established): 3}` as `{"tcp": {"established": 3}}`.
pub(crate) fn by_table<S: Serializer>(m: &BTreeMap<(Protocol, SockState), u64>, s: S) -> Result<S::Ok, S::Error> {
    let mut nested: BTreeMap<Protocol, BTreeMap<SockState, u64>> = BTreeMap::new();
    for (&(p, st), &n) in m {
        nested.entry(p).or_default().insert(st, n);
    }
    let mut map = s.serialize_map(Some(nested.len()))?;
    for (p, states) in &nested {
        map.serialize_entry(p, states)?;
    }
    map.end()
}

impl Serialize for ErrorCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Entry(ErrorSource, ErrorReason, u64);
        impl Serialize for Entry {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut e = s.serialize_struct("Error", 3)?;
                e.serialize_field("source", &self.0)?;
                e.serialize_field("reason", &self.1)?;
                e.serialize_field("count", &self.2)?;
                e.end()
            }
        }
        let mut seq = s.serialize_seq(None)?;
        for (source, reason, n) in self.iter() {
            seq.serialize_element(&Entry(source, reason, n))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::*;

    #[test]
    fn a_snapshot_serializes_with_label_values_seconds_and_nested_tables() {
        let mut s = Snapshot::empty("app");
        s.seq = 3;
        s.taken_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        s.duration = Duration::from_millis(2);
        s.errors.record(ErrorSource::SmapsRollup, ErrorReason::PermissionDenied);
        s.target.sockets = Some(SocketSample {
            held: [((Protocol::Tcp, SockState::CloseWait), 2), ((Protocol::Tcp6, SockState::Listen), 1)]
                .into_iter()
                .collect(),
            stale_after: Duration::from_secs(60),
            ..SocketSample::default()
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["seq"], 3);
        assert_eq!(v["taken_at"], 1_700_000_000.5);
        assert_eq!(v["duration"], 0.002);
        assert_eq!(v["target"]["name"], "app");
        assert_eq!(v["target"]["sockets"]["held"]["tcp"]["close_wait"], 2);
        assert_eq!(v["target"]["sockets"]["held"]["tcp6"]["listen"], 1);
        assert_eq!(v["target"]["sockets"]["stale_after"], 60.0);
        assert_eq!(v["errors"][0]["source"], "smaps_rollup");
        assert_eq!(v["errors"][0]["reason"], "permission_denied");
        assert_eq!(v["errors"][0]["count"], 1);
        assert!(v["target"]["memory"].is_null());
    }
}
