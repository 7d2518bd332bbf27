//! `leakwatch_structure_*` (the size, cap and allocation of every internal structure `/status`
//! lists, but the log buffers, which have their own `leakwatch_log_buffer_*` families per source)
//! and `leakwatch_cleanup*` (cleanups by trigger, bytes freed), rendered after the
//! snapshot's families in the same scrape, from the same structure list `/status` shows.

use super::family::Family;
use crate::cleanup::{CleanupStats, Trigger};
use crate::measure::Structure;
use crate::metric_names as n;

/// Adds the structure and cleanup families: each structure's allocation, and on a detail scrape
/// its entries and cap; cleanups by trigger and bytes freed.
pub(crate) fn structures(out: &mut Vec<Family>, structures: &[Structure], cleanup: Option<&CleanupStats>) {
    let mut entries = Family::gauge(n::STRUCTURE_ENTRIES, "Entries of a structure.").detail();
    let mut max = Family::gauge(n::STRUCTURE_MAX_ENTRIES, "Cap on a structure's entries.").detail();
    let mut bytes = Family::gauge(n::STRUCTURE_ALLOCATED_BYTES, "Bytes allocated by a structure.");
    for s in structures.iter().filter(|s| s.source.is_none()) {
        let labels = [("structure", s.name)];
        entries.add(&labels, s.len as f64);
        max.add_opt(&labels, s.max);
        bytes.add_opt(&labels, s.bytes);
    }
    out.extend([entries, max, bytes]);
    let Some(c) = cleanup else { return };
    let mut f = Family::counter(n::CLEANUPS_TOTAL, "Cleanups of leakwatch's own structures.");
    for t in Trigger::ALL {
        f.add(&[("trigger", t.as_str())], c.performed.get(t) as f64);
    }
    out.push(f);
    let mut f = Family::counter(n::CLEANUP_FREED_BYTES_TOTAL, "Bytes released by cleanups.");
    f.add(&[], c.freed_bytes_total as f64);
    out.push(f);
    let mut f = Family::gauge(n::CLEANUP_LAST_TIMESTAMP_SECONDS, "Unix time when the last cleanup started.").detail();
    f.add_opt(&[], c.last.as_ref().map(|r| r.at));
    out.push(f);
    let mut f = Family::gauge(n::CLEANUP_LAST_FREED_BYTES, "Bytes the last cleanup released.").detail();
    f.add_opt(&[], c.last.as_ref().map(|r| r.freed_bytes));
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_and_cleanups_render_with_bounded_labels() {
        let structures = [
            Structure::counted("alert_instances", 3, None),
            Structure::deque::<u64>("alert_transitions", 2, 4, Some(1000)),
            Structure::deque::<u8>("log_text", 10, 64, Some(4096)).of_source("app"),
        ];
        let render = |structures: &[Structure], cleanup: Option<&CleanupStats>| {
            let mut out = Vec::new();
            super::structures(&mut out, structures, cleanup);
            let families: Vec<_> = out.into_iter().filter(|f| !f.is_empty()).map(Family::finish).collect();
            let mut text = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &families, &mut text).expect("encode");
            String::from_utf8(text).expect("utf-8")
        };
        let text = render(&structures, Some(&CleanupStats::default()));
        assert!(text.contains("leakwatch_structure_entries{structure=\"alert_instances\"} 3"), "{text}");
        assert!(!text.contains("log_text"), "log buffers have their own families: {text}");
        assert!(text.contains("leakwatch_structure_allocated_bytes{structure=\"alert_transitions\"} 32"), "{text}");
        assert!(text.contains("leakwatch_structure_max_entries{structure=\"alert_transitions\"} 1000"), "{text}");
        assert!(!text.contains("leakwatch_structure_max_entries{structure=\"alert_instances\""), "no cap, no series");
        assert!(text.contains("leakwatch_cleanups_total{trigger=\"memory\"} 0"), "{text}");
        assert!(!text.contains("leakwatch_cleanup_last_timestamp_seconds"), "no cleanup yet: {text}");
        assert!(!render(&[], None).contains("cleanup"));
    }
}
