//! The pre-mortem: the key figures of the last samples, kept continuously in a small ring, and
//! the OOM reports frozen from it (plus the last lines of each log source) when a kill is seen.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::logs::ring::{Cursor, ReadLimits};
use crate::logs::LogSources;
use crate::measure::Structure;
use crate::measure::{shrink_deque, trim_with, Trimmed};
use crate::snapshot::oom::{OomReport, PremortemSample};

/// Samples kept before a kill.
pub(crate) const PREMORTEM_SAMPLES: usize = 12;
/// Reports kept (the newest).
pub(crate) const MAX_REPORTS: usize = 8;
/// Log lines per source in a report.
pub(crate) const REPORT_LOG_LINES: usize = 20;
/// Log sources in a report (the first ones configured).
pub(crate) const REPORT_LOG_SOURCES: usize = 8;
/// A longer log line is cut to this many bytes in a report.
pub(crate) const REPORT_LINE_BYTES: usize = 512;
/// A process exit this soon after a kill seen before any exit (notified or polled) names the
/// killed process in that kill's report.
pub(crate) const EXIT_ATTRIBUTION_SECONDS: f64 = 10.0;

/// The ring of recent samples and the newest reports.
#[derive(Debug, Default)]
pub(crate) struct Premortem {
    ring: VecDeque<PremortemSample>,
    reports: VecDeque<Arc<OomReport>>,
}

impl Premortem {
    /// Adds one sample, dropping the oldest beyond [`PREMORTEM_SAMPLES`].
    pub(crate) fn push(&mut self, sample: PremortemSample) {
        if self.ring.len() >= PREMORTEM_SAMPLES {
            self.ring.pop_front();
        }
        self.ring.push_back(sample);
    }

    /// Freezes the ring into a report (the ring starts afresh: the next report covers the time
    /// after this kill), with the log sources' last lines.
    pub(crate) fn freeze(&mut self, mut report: OomReport, logs: &LogSources) -> Arc<OomReport> {
        report.samples = self.ring.drain(..).collect();
        report.logs = last_lines(logs);
        let report = Arc::new(report);
        if self.reports.len() >= MAX_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back(report.clone());
        report
    }

    /// Names `pid` in the newest report when it names no process yet and is at most
    /// [`EXIT_ATTRIBUTION_SECONDS`] old (the kill was seen before the victim exited).
    pub(crate) fn attribute_exit(&mut self, pid: i32, now: f64) -> bool {
        let Some(last) = self.reports.back_mut() else { return false };
        if !last.pids.is_empty() || now - last.at > EXIT_ATTRIBUTION_SECONDS {
            return false;
        }
        Arc::make_mut(last).pids.push(pid);
        true
    }

    /// The reports, newest first.
    pub(crate) fn reports(&self) -> Vec<Arc<OomReport>> {
        self.reports.iter().rev().cloned().collect()
    }

    /// Releases spare room (the ring's, once the target is gone and it was drained); every
    /// sample and report stays.
    pub(crate) fn trim(&mut self) -> Vec<Trimmed> {
        let ring = trim_with(&mut self.ring, ring_structure, shrink_deque);
        let reports = trim_with(&mut self.reports, reports_structure, shrink_deque);
        ring.into_iter().chain(reports).collect()
    }

    /// The ring's and the reports' sizes.
    pub(crate) fn structures(&self) -> [Structure; 2] {
        [ring_structure(&self.ring), reports_structure(&self.reports)]
    }
}

fn ring_structure(ring: &VecDeque<PremortemSample>) -> Structure {
    Structure::deque::<PremortemSample>("oom_premortem_samples", ring.len(), ring.capacity(), Some(PREMORTEM_SAMPLES))
}

fn reports_structure(reports: &VecDeque<Arc<OomReport>>) -> Structure {
    Structure::deque::<Arc<OomReport>>("oom_reports", reports.len(), reports.capacity(), Some(MAX_REPORTS))
}

fn last_lines(logs: &LogSources) -> BTreeMap<String, Vec<String>> {
    let limits = ReadLimits { lines: REPORT_LOG_LINES, bytes: usize::MAX };
    logs.list()
        .iter()
        .take(REPORT_LOG_SOURCES)
        .map(|source| {
            let page = source.ring.read(Cursor::Before(u64::MAX), limits, None);
            let lines = page
                .iter()
                .map(|l| String::from_utf8_lossy(&l.text[..l.text.len().min(REPORT_LINE_BYTES)]).into_owned())
                .collect();
            (source.name.clone(), lines)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::RingLimits;
    use crate::logs::{LogSource, SourceKind};
    use crate::snapshot::oom::{Detection, SeenBy};

    fn report() -> OomReport {
        OomReport {
            at: 1.0,
            target: "app".into(),
            detection: Detection::Cgroup,
            seen_by: SeenBy::Pidfd,
            kills: 1,
            pids: vec![7],
            cgroup: None,
            samples: Vec::new(),
            logs: BTreeMap::new(),
        }
    }

    #[test]
    fn the_ring_and_the_reports_are_capped_and_a_report_takes_the_ring() {
        let limits = RingLimits { max_lines: 100, max_bytes: 1 << 20, max_line_bytes: 4096, max_subscribers: 1 };
        let source = Arc::new(LogSource::new("app", SourceKind::Stdout, limits));
        for i in 0..30 {
            source.ring.push(format!("line {i} {}", "x".repeat(600)).as_bytes(), false);
        }
        let logs = LogSources::new(vec![source]);
        let mut p = Premortem::default();
        for i in 0..20 {
            p.push(PremortemSample { at: i as f64, ..PremortemSample::default() });
        }
        assert_eq!(p.structures()[0].len, PREMORTEM_SAMPLES as u64);
        let r = p.freeze(report(), &logs);
        assert_eq!(r.samples.len(), PREMORTEM_SAMPLES);
        assert_eq!(r.samples.last().map(|s| s.at), Some(19.0), "the newest sample before the kill is last");
        let lines = &r.logs["app"];
        assert_eq!(lines.len(), REPORT_LOG_LINES);
        assert!(lines.last().unwrap().starts_with("line 29 "));
        assert!(lines.iter().all(|l| l.len() <= REPORT_LINE_BYTES));
        assert_eq!(p.structures()[0].len, 0, "the next report covers the time after this kill");
        for _ in 0..20 {
            p.freeze(report(), &logs);
        }
        assert_eq!(p.reports().len(), MAX_REPORTS);
        assert!(!p.attribute_exit(41, 1.0), "the newest names its process already");
        p.freeze(OomReport { pids: Vec::new(), ..report() }, &logs);
        assert!(p.attribute_exit(42, 1.0 + EXIT_ATTRIBUTION_SECONDS), "a recent report without pids");
        assert!(!p.attribute_exit(43, 1.0), "it names one already");
        assert_eq!(p.reports()[0].pids, vec![42]);
        p.freeze(report(), &logs);
        assert!(!p.attribute_exit(44, 100.0), "too late");
        assert_eq!(p.structures()[1].len, MAX_REPORTS as u64);
    }
}
