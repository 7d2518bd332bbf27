//! The configured log sources as running readers: [`LogSourceSpec`] (a source that passed
//! validation), [`Followers`] (the registry and the tail thread of every file source, built from
//! the specs at start and turned into new specs by a reload, keeping each ring that stays) and
//! the pure diff between two spec lists ([`source_actions`]).
//!
//! `Followers::source` is the one place a [`LogSource`] is made from its spec (at start and
//! for a source a reload adds).

use std::sync::Arc;

use super::guard::SharedPolicy;
use super::ring::RingLimits;
use super::tail::TailThread;
use super::{LogSource, LogSources, SourceKind};

/// A log source that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSourceSpec {
    /// The source name.
    pub name: String,
    /// A file (path or glob) or one of the wrapped command's streams.
    pub(crate) kind: SourceKind,
    /// The ring's caps.
    pub limits: RingLimits,
}

/// What happens to one log source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceAction {
    /// The source stays where it is: its ring (lines, subscribers) stays, resized in place to
    /// the spec's caps.
    Keep(LogSourceSpec),
    /// The source stays but its path changed: following restarts at the new path; the ring
    /// (lines, subscribers) and counters stay.
    Move(LogSourceSpec),
    /// A new source.
    Add(LogSourceSpec),
    /// A source that is no longer configured: its reader stops and its streams end.
    Remove(String),
}

/// The actions that turn the sources `old` into `new`, removals first, then `new`'s order.
pub(crate) fn source_actions(old: &[LogSourceSpec], new: &[LogSourceSpec]) -> Vec<SourceAction> {
    let mut actions: Vec<SourceAction> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.name == o.name))
        .map(|o| SourceAction::Remove(o.name.clone()))
        .collect();
    for n in new {
        actions.push(match old.iter().find(|o| o.name == n.name) {
            None => SourceAction::Add(n.clone()),
            Some(o) if o.kind != n.kind => SourceAction::Move(n.clone()),
            Some(_) => SourceAction::Keep(n.clone()),
        });
    }
    actions
}

/// The log registry and the tail thread of every file source (the `run`-mode streams are
/// captured by the wrapped command's pipes instead).
pub(crate) struct Followers {
    logs: Arc<LogSources>,
    tails: Vec<(String, TailThread)>,
    /// Which files the readers may open (shared by every source).
    pub(crate) paths: SharedPolicy,
}

impl Followers {
    /// A source for every spec, not followed yet ([`Followers::start`]); every source opens
    /// files through `paths`.
    pub(crate) fn new(specs: &[LogSourceSpec], paths: SharedPolicy) -> Self {
        let sources = specs.iter().map(|spec| Self::source(spec, &paths)).collect();
        Self { logs: Arc::new(LogSources::new(sources)), tails: Vec::new(), paths }
    }

    /// Starts a tail thread for every file source (a source that cannot be followed is logged
    /// and stays, empty).
    pub(crate) fn start(&mut self) {
        for source in self.logs.list().iter() {
            self.follow(source.clone());
        }
    }

    /// The registry (the routes, the sampler and the cleanup share it).
    pub(crate) fn logs(&self) -> &Arc<LogSources> {
        &self.logs
    }

    fn follow(&mut self, source: Arc<LogSource>) {
        if !matches!(source.kind, SourceKind::File { .. }) {
            return;
        }
        match TailThread::start(source.clone()) {
            Ok(t) => self.tails.push((source.name.clone(), t)),
            Err(e) => tracing::error!(source = %source.name, "cannot start following the source: {e}"),
        }
    }

    fn stop(&mut self, name: &str) {
        if let Some(i) = self.tails.iter().position(|(n, _)| n == name) {
            self.tails.swap_remove(i).1.stop();
        }
    }

    /// Turns the sources `old` into `new` (blocking: stopping a tail thread joins it).
    pub(crate) fn reconfigure(&mut self, old: &[LogSourceSpec], new: &[LogSourceSpec]) {
        let current = self.logs.list();
        let find = |name: &str| current.iter().find(|s| s.name == name).cloned();
        let mut next: Vec<Arc<LogSource>> = Vec::with_capacity(new.len());
        let mut removed = Vec::new();
        for action in source_actions(old, new) {
            match action {
                SourceAction::Remove(name) => removed.push(name),
                SourceAction::Keep(spec) => match find(&spec.name) {
                    Some(s) => {
                        s.ring.set_limits(spec.limits);
                        next.push(s);
                    }
                    None => next.push(self.add(&spec)),
                },
                SourceAction::Move(spec) => match find(&spec.name) {
                    Some(s) => {
                        // The old path's last lines are read before the new one is followed.
                        self.stop(&spec.name);
                        s.ring.set_limits(spec.limits);
                        let moved = Arc::new(s.moved_to(spec.kind.clone()));
                        self.follow(moved.clone());
                        tracing::info!(source = %spec.name, "log source now follows a new path; its buffer is kept");
                        next.push(moved);
                    }
                    None => next.push(self.add(&spec)),
                },
                SourceAction::Add(spec) => {
                    tracing::info!(source = %spec.name, "log source added");
                    next.push(self.add(&spec));
                }
            }
        }
        self.logs.replace(next);
        // Once out of the registry: stop the reader, then end the live streams.
        for name in removed {
            self.stop(&name);
            if let Some(s) = find(&name) {
                s.ring.close();
            }
            tracing::info!(source = %name, "log source removed");
        }
    }

    /// The source of `spec`, followed when it is a file.
    fn add(&mut self, spec: &LogSourceSpec) -> Arc<LogSource> {
        let source = Self::source(spec, &self.paths);
        self.follow(source.clone());
        source
    }

    /// The one place a [`LogSource`] is made from its spec.
    fn source(spec: &LogSourceSpec, paths: &SharedPolicy) -> Arc<LogSource> {
        Arc::new(LogSource::new(spec.name.clone(), spec.kind.clone(), spec.limits).with_paths(paths.clone()))
    }

    /// Stops every tail thread after a last read (shutdown; blocking).
    pub(crate) fn stop_all(self) {
        self.tails.into_iter().for_each(|(_, t)| t.stop());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::{Cursor, ReadLimits};
    use std::io::Write;
    use std::path::Path;
    use std::time::{Duration, Instant};

    fn spec(name: &str, path: &Path, max_lines: usize) -> LogSourceSpec {
        LogSourceSpec {
            name: name.into(),
            kind: SourceKind::File { pattern: path.to_string_lossy().into_owned() },
            limits: RingLimits { max_lines, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 4 },
        }
    }

    #[test]
    fn sources_are_kept_moved_added_and_removed_by_name() {
        let p = Path::new;
        let old = [spec("a", p("/a.log"), 10), spec("b", p("/b.log"), 10), spec("c", p("/c.log"), 10)];
        let new = [spec("c", p("/c.log"), 5), spec("b", p("/b2.log"), 10), spec("d", p("/d.log"), 10)];
        let actions = source_actions(&old, &new);
        assert_eq!(
            actions,
            vec![
                SourceAction::Remove("a".into()),
                SourceAction::Keep(new[0].clone()),
                SourceAction::Move(new[1].clone()),
                SourceAction::Add(new[2].clone()),
            ]
        );
        assert!(source_actions(&old, &old).iter().all(|a| matches!(a, SourceAction::Keep(_))));
    }

    fn append(path: &Path, lines: std::ops::Range<u32>) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        for i in lines {
            writeln!(f, "line {i}").unwrap();
        }
    }

    fn texts(source: &LogSource) -> Vec<String> {
        let page = source.ring.read(Cursor::After(0), ReadLimits { lines: usize::MAX, bytes: usize::MAX }, None);
        page.iter().map(|l| String::from_utf8_lossy(l.text).into_owned()).collect()
    }

    fn wait_for(what: &str, ok: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn expected(lines: std::ops::Range<u32>) -> Vec<String> {
        lines.map(|i| format!("line {i}")).collect()
    }

    #[test]
    fn sources_keep_their_lines_across_caps_and_path_changes_and_removed_ones_end() {
        let dir = std::env::temp_dir().join(format!("leakwatch-apply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, b2, d) = (dir.join("a.log"), dir.join("b.log"), dir.join("b2.log"), dir.join("d.log"));
        for p in [&a, &b, &b2, &d] {
            std::fs::write(p, "").unwrap();
        }
        let old = vec![spec("a", &a, 100), spec("b", &b, 100), spec("gone", &d, 100)];
        let mut followers = Followers::new(&old, SharedPolicy::default());
        followers.start();
        let logs = followers.logs().clone();
        append(&a, 0..10);
        append(&b, 0..10);
        let (ring_a, ring_b) = (logs.get("a").unwrap().ring.clone(), logs.get("b").unwrap().ring.clone());
        wait_for("the first lines", || ring_a.stats().lines == 10 && ring_b.stats().lines == 10);
        let gone = logs.get("gone").unwrap();
        let mut gone_sub = gone.ring.subscribe(0).unwrap();

        // a: caps change (more lines allowed); b: moves to b2.log; gone: removed; new: added.
        let new = vec![spec("b", &b2, 100), spec("a", &a, 200), spec("new", &d, 100)];
        followers.reconfigure(&old, &new);
        let names: Vec<String> = logs.list().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["b", "a", "new"], "the new order");
        let (now_a, now_b) = (logs.get("a").unwrap(), logs.get("b").unwrap());
        assert!(Arc::ptr_eq(&now_a.ring, &ring_a) && Arc::ptr_eq(&now_b.ring, &ring_b), "the same rings");
        assert_eq!(now_a.ring.limits().max_lines, 200);
        assert_eq!(now_b.kind, new[0].kind);
        assert_eq!(texts(&now_a), expected(0..10), "every buffered line of a is still there");
        assert_eq!(texts(&now_b), expected(0..10), "every buffered line of b is still there");
        append(&a, 10..20);
        append(&b2, 10..20);
        append(&b, 100..101);
        wait_for("lines after the reload", || ring_a.stats().lines == 20 && ring_b.stats().lines == 20);
        assert_eq!(texts(&now_a), expected(0..20));
        assert_eq!(texts(&now_b), expected(0..20), "b follows b2.log and no longer b.log");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(rt.block_on(gone_sub.next_page(ReadLimits { lines: 10, bytes: 1 << 20 })).is_none(), "stream ended");

        // Shrinking below what is held evicts the oldest only.
        let shrunk = vec![spec("b", &b2, 5), spec("a", &a, 200), spec("new", &d, 100)];
        followers.reconfigure(&new, &shrunk);
        assert_eq!(texts(&logs.get("b").unwrap()), expected(15..20));
        followers.stop_all();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
