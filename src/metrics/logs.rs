//! Per-source log figures, rendered from `snapshot.logs` (copied from the rings and the readers'
//! counters at each sampling pass).

use super::family::Family;
use crate::logs::ring::LINE_OVERHEAD_BYTES;
use crate::logs::LogSourceStats;
use crate::metric_names as n;

/// A family's name, help and the figure it shows of a source.
type Row = (&'static str, &'static str, fn(&LogSourceStats) -> u64);

/// Adds the `leakwatch_log_*` families.
pub(crate) fn logs(out: &mut Vec<Family>, sources: &[LogSourceStats]) {
    let mut info = Family::gauge(
        n::LOG_SOURCE_INFO,
        "One series per log source: its kind (file, stdout, stderr) and, for a file, its configured path or glob; always 1.",
    );
    for s in sources {
        info.add(&[("source", &s.name), ("kind", s.kind), ("path", s.pattern.as_deref().unwrap_or(""))], 1.0);
    }
    out.push(info);
    let counters: [Row; 8] = [
        (n::LOG_LINES_TOTAL, "Lines stored in the source's buffer since start.", |s| s.ring.lines_total),
        (n::LOG_BYTES_TOTAL, "Bytes read from the source (before overlong lines are cut).", |s| s.bytes_read),
        (n::LOG_LINES_CUT_TOTAL, "Lines longer than max_line_bytes, stored cut with a marker.", |s| {
            s.ring.cut_total
        }),
        (
            n::LOG_ROTATIONS_TOTAL,
            "Times the followed path moved to a new file (rename, delete and recreate, symlink switch).",
            |s| s.rotations,
        ),
        (
            n::LOG_TRUNCATIONS_TOTAL,
            "Times the followed file shrank or was rewritten in place (copytruncate).",
            |s| s.truncations,
        ),
        (
            n::LOG_READ_ERRORS_TOTAL,
            "Failed attempts to open, stat or read the source (permission, not a regular file, I/O); retried.",
            |s| s.read_errors,
        ),
        (
            n::LOG_REFUSALS_TOTAL,
            "Opens refused by the log path guard: a link to one of leakwatch's own files or outside \
             logs.allowed_dirs, a special file system, not a regular file; retried.",
            |s| s.refusals,
        ),
        (
            n::LOG_LOST_BYTES_TOTAL,
            "Bytes known to have been written to the source but never read (a truncation window, a rotated file gone before it was opened); a lower bound.",
            |s| s.lost_bytes,
        ),
    ];
    for (name, help, value) in counters {
        let mut f = Family::counter(name, help);
        for s in sources {
            f.add(&[("source", &s.name)], value(s) as f64);
        }
        out.push(f);
    }
    let mut dropped = Family::counter(
        n::LOG_LINES_DROPPED_TOTAL,
        "Lines lost by reason: evicted (pushed out of the buffer by newer lines), subscriber_lag (evicted \
         before a live subscriber read them, per subscriber), truncation (known lost: a truncation window, a rotated file gone before it was opened; a lower bound).",
    );
    for s in sources {
        for (reason, n) in
            [("evicted", s.ring.evicted_total), ("subscriber_lag", s.ring.lagged_total), ("truncation", s.lost_lines)]
        {
            dropped.add(&[("source", &s.name), ("reason", reason)], n as f64);
        }
    }
    out.push(dropped);
    let mut unknown = Family::counter(
        n::LOG_UNKNOWN_LOSSES_TOTAL,
        "Losses leakwatch cannot measure, by reason: rotation (a file that appeared at the path and was gone \
         before it could be opened), truncation (every truncation: what was written after the last size seen is \
         unknowable), overflow (the file event queue overflowed). While none moves, the lines and bytes counted \
         lost are exact; otherwise they are a lower bound.",
    );
    for s in sources {
        for (reason, n) in s.unknown_losses.by_reason() {
            unknown.add(&[("source", &s.name), ("reason", reason)], n as f64);
        }
    }
    out.push(unknown);
    let gauges: [Row; 6] = [
        (n::LOG_BUFFER_LINES, "Lines held in the source's buffer.", |s| s.ring.lines as u64),
        (
            n::LOG_BUFFER_BYTES,
            "Bytes of the source's buffer counted against max_bytes: the text held plus 16 per line entry slot.",
            |s| s.ring.counted_bytes() as u64,
        ),
        (n::LOG_BUFFER_MAX_LINES, "The buffer's line cap (max_lines).", |s| s.limits.max_lines as u64),
        (n::LOG_BUFFER_MAX_BYTES, "The buffer's text byte cap (max_bytes).", |s| s.limits.max_bytes as u64),
        (n::LOG_SUBSCRIBERS, "Live subscribers of the source.", |s| s.ring.subscribers as u64),
        (
            n::LOG_BUFFER_ALLOCATED_BYTES,
            "Bytes the buffer has allocated (line entries and text, used or spare): what a cleanup can shrink.",
            |s| (s.ring.line_capacity * LINE_OVERHEAD_BYTES + s.ring.text_capacity) as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let mut f = Family::gauge(name, help);
        for s in sources {
            f.add(&[("source", &s.name)], value(s) as f64);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::RingLimits;
    use crate::logs::{LogSource, SourceKind};

    #[test]
    fn every_source_gets_every_family() {
        let limits = RingLimits { max_lines: 2, max_bytes: 4096, max_line_bytes: 64, max_subscribers: 1 };
        let app = LogSource::new("app", SourceKind::File { pattern: "/var/log/a.log".into() }, limits);
        for line in ["a", "b", "c"] {
            app.ring.push(line.as_bytes(), false);
        }
        let out_src = LogSource::new("stdout", SourceKind::Stdout, limits);
        let mut out = Vec::new();
        logs(&mut out, &[app.stats(), out_src.stats()]);
        let text = {
            let families: Vec<_> = out.into_iter().map(Family::finish).collect();
            let mut buf = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &families, &mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(
            text.contains(r#"leakwatch_log_source_info{source="app",kind="file",path="/var/log/a.log"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"leakwatch_log_source_info{source="stdout",kind="stdout",path=""} 1"#), "{text}");
        assert!(text.contains(r#"leakwatch_log_lines_total{source="app"} 3"#), "{text}");
        assert!(text.contains(r#"leakwatch_log_lines_dropped_total{source="app",reason="evicted"} 1"#), "{text}");
        assert!(text.contains(r#"leakwatch_log_buffer_lines{source="app"} 2"#), "{text}");
        assert!(text.contains(r#"leakwatch_log_buffer_max_bytes{source="stdout"} 4096"#), "{text}");
    }
}
