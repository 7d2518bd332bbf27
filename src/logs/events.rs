//! What a directory event means for one file source: [`EventSorter`] turns each `notify` event
//! into an [`EventKind`] for `Discovery::on_event`.
//!
//! inotify queues directory events in order and keeps them while the watcher thread is starved
//! (unless the queue overflows, which is itself an event). So after the fact the watcher knows
//! how many files **appeared at the path** (`IN_CREATE`, or `IN_MOVED_TO` onto its name), even
//! files that were renamed over or deleted before anyone could open them; `Discovery` compares
//! that with the files it opened to count the ones never opened.
//!
//! A file renamed away from the path and back (`IN_MOVED_FROM`/`IN_MOVED_TO` pairs, matched by
//! their cookie) is not a new file. A hard link or a symlink re-created onto the file the path
//! already names would be taken for one (documented in `docs/logs.md`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::event::{CreateKind, EventKind as Kind, ModifyKind, RenameMode};

/// How many names a file at the path was lately renamed to are remembered.
const MOVED_AWAY: usize = 16;

/// What the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// A file's data changed (or it was opened): only sizes are noted.
    Data,
    /// Names in a directory changed (or anything else): the path is resolved again.
    Names,
    /// A file appeared at the path (created there or moved onto its name): the path is resolved
    /// again, and the file must be opened or counted.
    Appeared,
    /// The kernel's event queue overflowed: events were dropped.
    Overflow,
}

/// Sorts the events of a source's watched directories (see the module doc).
#[derive(Debug)]
pub(crate) struct EventSorter {
    /// The directories the path is in, as configured and resolved (events name either), and its
    /// file name; `None` for a glob (its files are not counted this way).
    path: Option<(Vec<PathBuf>, OsString)>,
    /// The last rename's source (`IN_MOVED_FROM`): its cookie and path.
    from: Option<(usize, PathBuf)>,
    /// Names files at the path were renamed to lately: renamed back, a file is not a new one.
    moved_away: VecDeque<PathBuf>,
}

impl EventSorter {
    /// A sorter for the source following `pattern`.
    pub(crate) fn new(pattern: &str) -> Self {
        let path = Path::new(pattern);
        let named = match (super::tail::is_glob(pattern), path.parent(), path.file_name()) {
            (false, Some(dir), Some(name)) => {
                let mut dirs = vec![dir.to_path_buf()];
                dirs.extend(std::fs::canonicalize(dir).ok().filter(|real| real != dir));
                Some((dirs, name.to_os_string()))
            }
            _ => None,
        };
        Self { path: named, from: None, moved_away: VecDeque::new() }
    }

    /// Whether `p` is the followed path.
    fn is_path(&self, p: &Path) -> bool {
        self.path.as_ref().is_some_and(|(dirs, name)| {
            p.file_name() == Some(name.as_os_str()) && p.parent().is_some_and(|d| dirs.iter().any(|dir| dir == d))
        })
    }

    /// What `event` means for the source.
    pub(crate) fn sort(&mut self, event: &notify::Result<notify::Event>) -> EventKind {
        let Ok(event) = event else { return EventKind::Names };
        if event.need_rescan() {
            return EventKind::Overflow;
        }
        let path = event.paths.first().map(PathBuf::as_path);
        match event.kind {
            Kind::Modify(ModifyKind::Data(_)) | Kind::Access(_) => EventKind::Data,
            Kind::Create(CreateKind::Folder) => EventKind::Names,
            Kind::Create(_) if path.is_some_and(|p| self.is_path(p)) => EventKind::Appeared,
            Kind::Modify(ModifyKind::Name(RenameMode::From)) => {
                self.from = path.zip(event.attrs.tracker()).map(|(p, cookie)| (cookie, p.to_path_buf()));
                EventKind::Names
            }
            Kind::Modify(ModifyKind::Name(RenameMode::To)) => {
                let Some(to) = path else { return EventKind::Names };
                // The source of this rename, when it was in a watched directory.
                let from = match (&self.from, event.attrs.tracker()) {
                    (Some((cookie, from)), Some(tracker)) if *cookie == tracker => Some(from.clone()),
                    _ => None,
                };
                if from.as_deref().is_some_and(|f| self.is_path(f)) {
                    if self.moved_away.len() == MOVED_AWAY {
                        self.moved_away.pop_front();
                    }
                    self.moved_away.push_back(to.to_path_buf());
                }
                if !self.is_path(to) {
                    return EventKind::Names;
                }
                match from {
                    Some(f) if self.moved_away.contains(&f) => {
                        self.moved_away.retain(|m| *m != f);
                        EventKind::Names
                    }
                    _ => EventKind::Appeared,
                }
            }
            _ => EventKind::Names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, DataChange, Flag, RemoveKind};
    use notify::Event;

    fn ev(kind: Kind, path: &str, cookie: Option<usize>) -> notify::Result<Event> {
        let e = Event::new(kind).add_path(PathBuf::from(path));
        Ok(match cookie {
            Some(c) => e.set_tracker(c),
            None => e,
        })
    }

    fn rename(from: &str, to: &str, cookie: usize) -> [notify::Result<Event>; 2] {
        [
            ev(Kind::Modify(ModifyKind::Name(RenameMode::From)), from, Some(cookie)),
            ev(Kind::Modify(ModifyKind::Name(RenameMode::To)), to, Some(cookie)),
        ]
    }

    #[test]
    fn files_appearing_at_the_path_are_told_apart_from_other_events() {
        let mut s = EventSorter::new("/var/log/app/app.log");
        let mut sort = |e: notify::Result<Event>| s.sort(&e);
        assert_eq!(sort(ev(Kind::Create(CreateKind::File), "/var/log/app/app.log", None)), EventKind::Appeared);
        assert_eq!(sort(ev(Kind::Create(CreateKind::File), "/var/log/app/app.log.1", None)), EventKind::Names);
        assert_eq!(sort(ev(Kind::Create(CreateKind::File), "/elsewhere/app.log", None)), EventKind::Names);
        assert_eq!(sort(ev(Kind::Create(CreateKind::Folder), "/var/log/app/app.log", None)), EventKind::Names);
        assert_eq!(
            sort(ev(Kind::Modify(ModifyKind::Data(DataChange::Any)), "/var/log/app/app.log", None)),
            EventKind::Data
        );
        assert_eq!(sort(ev(Kind::Access(AccessKind::Any), "/var/log/app/app.log", None)), EventKind::Data);
        assert_eq!(sort(ev(Kind::Remove(RemoveKind::File), "/var/log/app/app.log", None)), EventKind::Names);
        assert_eq!(sort(Ok(Event::new(Kind::Other).set_flag(Flag::Rescan))), EventKind::Overflow);
        assert_eq!(sort(Err(notify::Error::generic("gone"))), EventKind::Names);
        // Moved in from an unwatched directory (no IN_MOVED_FROM): a new file.
        assert_eq!(
            sort(ev(Kind::Modify(ModifyKind::Name(RenameMode::To)), "/var/log/app/app.log", Some(7))),
            EventKind::Appeared
        );
    }

    #[test]
    fn a_file_renamed_away_from_the_path_and_back_is_no_new_file() {
        let mut s = EventSorter::new("/logs/app.log");
        let kinds = |s: &mut EventSorter, pair: [notify::Result<Event>; 2]| pair.map(|e| s.sort(&e));
        // logrotate: app.log → app.log.1 (names only), then a new app.log moved in from a temp name.
        assert_eq!(kinds(&mut s, rename("/logs/app.log", "/logs/app.log.1", 1)), [EventKind::Names; 2]);
        assert_eq!(kinds(&mut s, rename("/logs/.tmp", "/logs/app.log", 2)), [EventKind::Names, EventKind::Appeared]);
        // The rotated file renamed back onto the path: the same file, once.
        assert_eq!(kinds(&mut s, rename("/logs/app.log.1", "/logs/app.log", 3)), [EventKind::Names; 2]);
        assert_eq!(
            kinds(&mut s, rename("/logs/app.log.1", "/logs/app.log", 4)),
            [EventKind::Names, EventKind::Appeared]
        );
        // Cookies that do not match: the source is unknown, the file is new.
        s.sort(&rename("/logs/app.log", "/logs/x", 5)[0]);
        assert_eq!(s.sort(&rename("/logs/x", "/logs/app.log", 6)[1]), EventKind::Appeared);
    }

    #[test]
    fn a_glob_counts_no_appearances() {
        let mut s = EventSorter::new("/logs/*.log");
        assert_eq!(s.sort(&ev(Kind::Create(CreateKind::File), "/logs/a.log", None)), EventKind::Names);
    }
}
