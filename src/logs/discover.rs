//! Learns every file a followed path names, as it appears, so rotation cannot outrun the reader.
//!
//! The directory watcher calls `Discovery::on_event` from its own thread for every event; the
//! follower calls `Discovery::discover` at start and after a poll interval without events
//! (events can be missed). Each call
//! resolves the path and, when it names a file other than the last one seen, **opens it at
//! once** and queues it: an open descriptor keeps a renamed or deleted file readable, so
//! however many rotations happen before the follower runs again, it drains every file in order.
//! A file that left the path between the `stat` and the `open` is looked for beside the path by
//! its identity (renamed: it is read); gone (deleted), it cannot be read by anyone: its size at
//! the `stat` is counted as lost (a lower bound).
//!
//! One look runs at a time (the watcher's and the follower's would otherwise queue a file twice).
//! Rotated siblings found by a look are older than the path's file when the path still names it
//! after the scan; when the path moves on during the scan (several rotations within it), the look
//! is made again, and after `MAX_LOOKS` the files are ordered by their times (`Stamp`): files
//! rotated within one clock tick of each other may then be read out of order.
//!
//! The queue holds at most [`MAX_PENDING_FILES`] descriptors (deleted files keep their disk
//! space while open). When it is full the oldest queued file is given up: its lines and bytes
//! at that moment are counted as lost (writes to it afterwards cannot be known).
//!
//! Between reads the watcher also notes the size of the file being read: that is what a later
//! truncation is measured against (see `Discovery::truncated_from`).
//!
//! **Files never opened.** A file renamed over, shifted off a numbered chain, deleted, or a
//! symlink switched away from it before any look cannot be opened, and leaves no size behind. But
//! its arrival at the path is a queued directory event ([`super::events`]): once the directory is
//! watched, the files that *appeared* at the path are counted from events, the files *accounted
//! for* (queued to be read, or counted lost by their size) by the looks, and every look settles
//! the difference: `appeared − accounted`, at its largest so far, is the number of files never
//! opened (`SourceCounters::unread_files`). A file is counted as appeared before the look its
//! event starts, and an event comes after its file arrived, so a file the look opens (at the path,
//! found beside it by identity, or as a rotated sibling) is never counted. Files accounted for
//! without an event (a sibling that was never at the path; one that arrived just before the watch
//! began) offset later ones: the count is a lower bound, exact when each file arrived by an event.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use super::events::EventKind;
use super::identity::{FileId, Fingerprint};
use super::tail::{is_glob, open_file, resolve};
use super::{LogSource, SourceCounters};

/// Most files opened ahead of the follower.
pub const MAX_PENDING_FILES: usize = 16;
/// Most looks at the path in one discovery while it keeps naming new files (see
/// [`Discovery::discover`]).
const MAX_LOOKS: usize = 4;
/// How many files already queued are remembered (so a rotated sibling is not read twice).
const KNOWN_FILES: usize = 64;
/// Most directory entries examined when looking for rotated siblings.
const MAX_SIBLINGS: usize = 256;
/// Rotated siblings with these endings are compressed: never read.
const COMPRESSED: [&str; 6] = [".gz", ".xz", ".bz2", ".zst", ".zip", ".lz4"];

/// When a file was last written, then when its inode last changed: the order files left the
/// path in. A file is no longer written once rotated away, and a rename sets its change time, so
/// a file renamed after another sorts after it even when both were last written in the same
/// clock tick.
type Stamp = (SystemTime, i64, i64);

/// Rotated siblings found, with their [`Stamp`]s.
type Siblings = Vec<(Stamp, Found)>;

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.ctime(), meta.ctime_nsec())
}

/// A file found at the path and opened, not read yet.
#[derive(Debug)]
pub(crate) struct Found {
    /// The open file.
    pub(crate) file: Arc<File>,
    /// The path it was opened by.
    pub(crate) path: PathBuf,
    /// Its identity.
    pub(crate) id: FileId,
    /// Its size when the watcher last looked while it waited.
    pub(crate) seen: u64,
    /// Bytes truncated away while it waited (it is read from its start: all were unread).
    pub(crate) truncated: u64,
    /// Truncations the watcher saw while it waited.
    pub(crate) truncations: u64,
}

#[derive(Debug, Default)]
struct State {
    /// The last file queued or read: the next different one is new.
    last: Option<FileId>,
    /// The newest file queued or read (its modification time bounds the rotated siblings).
    newest: Option<Arc<File>>,
    /// The files queued or read lately, oldest first (at most [`KNOWN_FILES`]). An identity
    /// means that file only while it is held open: a closed file's inode may be reused.
    known: VecDeque<(FileId, Weak<File>)>,
    /// The first bytes of files read lately (at most [`KNOWN_FILES`]): a sibling that starts
    /// like one of them is a copy (`copytruncate`), not a rotated file.
    prints: VecDeque<Fingerprint>,
    pending: VecDeque<Found>,
    /// The file being read, whose size the watcher notes between reads.
    watched: Option<Arc<File>>,
    /// Its size at the last note.
    observed: u64,
    /// Its size before it first shrank since the follower last looked (a truncation).
    shrunk_from: Option<u64>,
    /// Truncations seen after that one before the follower looked, and the bytes of the whole
    /// generations they took (written after one truncation, gone at the next: never read).
    later: (u64, u64),
    /// Files are counted in `appeared` and `accounted` (the directory is watched).
    counting: bool,
    /// Files that appeared at the path by directory events.
    appeared: u64,
    /// Files queued to be read, or counted lost by their size.
    accounted: u64,
    /// Files counted as never opened: `appeared − accounted` at its largest.
    unread: u64,
}

/// The files found for one source, shared by its watcher thread and its follower.
#[derive(Debug)]
pub(crate) struct Discovery {
    source: Arc<LogSource>,
    pattern: String,
    state: Mutex<State>,
    /// Held through a whole [`Discovery::discover`]: the watcher thread and the follower look at
    /// the same time, and a look that compared the path with the last file, then stalled while
    /// the other queued that file, the follower read it and the path moved on, would queue it
    /// again after the newer one (read twice, counted as one more rotation).
    looking: Mutex<()>,
    /// Test hook: runs once between a look at the path and its open.
    #[cfg(test)]
    hook: Hook,
}

/// A test's action at a point of a look (a rotation there, deterministically).
#[cfg(test)]
#[derive(Default)]
struct Hook(Mutex<Option<(Point, HookAction)>>);

#[cfg(test)]
type HookAction = Box<dyn FnOnce(&Path) + Send>;

/// Where a test hook runs.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// Between the look at the path (`stat`) and its open; given the path.
    PathOpened,
    /// Between the listing of rotated siblings and their opens; given the directory.
    SiblingsListed,
}

#[cfg(test)]
impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

#[cfg(test)]
impl Hook {
    fn run(&self, at: Point, path: &Path) {
        let hook = {
            let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_some_and(|(point, _)| *point == at) {
                slot.take()
            } else {
                None
            }
        };
        if let Some((_, hook)) = hook {
            hook(path);
        }
    }
}

/// What a look at the path found.
#[derive(Debug)]
enum Opened {
    /// A file not queued or read before, opened.
    New(Found),
    /// The last file queued or read.
    Same,
    /// No file (or one deleted between the look and its open).
    Missing,
}

/// What the watcher noted of a truncated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// It saw the file shrink, from this size.
    ShrunkFrom(u64),
    /// It did not see it shrink; its last size noted (the new content's, if rewritten past it).
    Size(u64),
}

impl State {
    /// Notes a file queued or read.
    fn remember(&mut self, id: FileId, file: &Arc<File>) {
        if self.known.len() == KNOWN_FILES {
            self.known.pop_front();
        }
        self.known.push_back((id, Arc::downgrade(file)));
        self.newest = Some(file.clone());
    }

    /// Notes a file queued to be read, or counted lost by its size.
    fn account(&mut self) {
        if self.counting {
            self.accounted += 1;
        }
    }

    /// Whether `id` is a file queued or read and still open.
    fn knows(&self, id: FileId) -> bool {
        self.known.iter().any(|(k, f)| *k == id && f.strong_count() > 0)
    }
}

impl Discovery {
    /// Discovery for `source`, following `pattern`.
    pub(crate) fn new(source: Arc<LogSource>, pattern: String) -> Self {
        Self {
            source,
            pattern,
            state: Mutex::default(),
            looking: Mutex::new(()),
            #[cfg(test)]
            hook: Hook::default(),
        }
    }

    /// Test hook: `action` runs once, the next time a look reaches `at`.
    #[cfg(test)]
    pub(crate) fn hook_at(&self, at: Point, action: impl FnOnce(&Path) + Send + 'static) {
        *self.hook.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, Box::new(action)));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A directory event: notes the size of the file being read and, for anything but a data
    /// change, opens a new file the path names. A file that appeared at the path is counted
    /// before that look (see the module doc); an overflow of the event queue is counted.
    pub(crate) fn on_event(&self, kind: EventKind) {
        self.observe();
        match kind {
            EventKind::Data => return,
            EventKind::Names => {}
            EventKind::Appeared => {
                let mut state = self.lock();
                if state.counting {
                    state.appeared += 1;
                }
            }
            EventKind::Overflow => {
                SourceCounters::add(&self.source.counters.event_overflows, 1);
                tracing::warn!(source = %self.source.name,
                    "the file event queue overflowed: files may have come and gone unseen (not counted)");
            }
        }
        // The follower reports problems on its own pass.
        let _ = self.discover();
    }

    /// From now on, files that appear at the path by directory events are counted, and so are
    /// the files accounted for (the follower calls it after its first look, just before the
    /// path's directory is watched: a file that arrived before had no event).
    pub(crate) fn count_files(&self) {
        self.lock().counting = true;
    }

    /// Counts the files that appeared at the path and were never opened nor counted by their
    /// size, since the last settling (after each look that went through; see the module doc).
    fn settle(&self) {
        let new = {
            let mut state = self.lock();
            let unread = state.appeared.saturating_sub(state.accounted);
            let new = unread.saturating_sub(state.unread);
            state.unread += new;
            new
        };
        if new > 0 {
            SourceCounters::add(&self.source.counters.unread_files, new);
            tracing::warn!(source = %self.source.name, files = new,
                "files arrived at the path and were gone before they could be opened: their lines are lost (their size is unknown)");
        }
    }

    /// Notes the size of the file being read.
    pub(crate) fn observe(&self) {
        let mut state = self.lock();
        for f in &mut state.pending {
            if let Ok(m) = f.file.metadata() {
                if m.len() < f.seen {
                    f.truncated += f.seen;
                    f.truncations += 1;
                }
                f.seen = m.len();
            }
        }
        let Some(size) = state.watched.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()) else { return };
        if size < state.observed {
            match state.shrunk_from {
                None => state.shrunk_from = Some(state.observed),
                Some(_) => {
                    state.later.0 += 1;
                    state.later.1 += state.observed;
                }
            }
        }
        state.observed = size;
    }

    /// Resolves the path; opens and queues the file it names if it is a new one. Fails with a
    /// message when the path names something that cannot be read.
    pub(crate) fn discover(&self) -> Result<(), String> {
        let _looking = self.looking.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Settled only after a look that saw every file that was at the path: one that stopped at
        // a missing path (mid-rotation) did not list the rotated siblings.
        let complete = self.look()?;
        if complete {
            self.settle();
        }
        Ok(())
    }

    /// [`Discovery::discover`], under its lock; true when the path's file and its rotated
    /// siblings were looked at (or the path still names the last file known).
    fn look(&self) -> Result<bool, String> {
        let mut newest = match self.open_path()? {
            Opened::New(found) => found,
            Opened::Same => return Ok(true),
            Opened::Missing => return Ok(false),
        };
        // Files that were at the path and renamed away before anyone saw them (several renames
        // between two looks): newer than the newest file known, oldest first, before this one.
        // A sibling is older than the path's file only if the path still names that file after
        // the scan: otherwise the scan may have met files rotated after it (read in the wrong
        // order), so the path's file is kept for its turn and the look is made again.
        let stamp_of = |f: &Found| f.file.metadata().map(|m| stamp(&m)).unwrap_or((SystemTime::UNIX_EPOCH, 0, 0));
        let mut earlier: Vec<(Stamp, Found)> = Vec::new();
        let mut siblings;
        let mut looks = 1;
        let stable = loop {
            let mut exclude: Vec<FileId> = earlier.iter().map(|(_, f)| f.id).collect();
            exclude.push(newest.id);
            siblings = self.rotated_siblings(&exclude);
            let now = resolve(&self.pattern).ok().flatten().map(|(_, meta)| FileId::of(&meta));
            if now == Some(newest.id) {
                break true;
            }
            if looks == MAX_LOOKS {
                break false;
            }
            looks += 1;
            match self.open_path() {
                Ok(Opened::New(next)) => earlier.push((stamp_of(&newest), std::mem::replace(&mut newest, next))),
                Ok(_) | Err(_) => break false,
            }
        };
        // Oldest first ([`Stamp`]); on equal times a file the path named before comes before a
        // sibling.
        earlier.extend(siblings);
        let id = newest.id;
        let last = match stable {
            true => Some(newest),
            // Not confirmed: the path's file takes its place by its times too.
            false => {
                earlier.push((stamp_of(&newest), newest));
                None
            }
        };
        earlier.sort_by_key(|(stamp, _)| *stamp);
        let found = earlier.into_iter().map(|(_, f)| f).chain(last);
        let mut given_up = Vec::new();
        {
            let mut state = self.lock();
            for f in found {
                // (The path's new file may reuse the inode of a file read and closed before.)
                if f.id != id && state.knows(f.id) {
                    continue;
                }
                state.remember(f.id, &f.file);
                state.account();
                state.pending.push_back(f);
                if state.pending.len() > MAX_PENDING_FILES {
                    given_up.extend(state.pending.pop_front());
                }
            }
            state.last = Some(id);
        }
        for lost in given_up {
            let (lines, bytes) = count_lines(&lost.file);
            self.count_lost(bytes, Some(lines));
            tracing::warn!(source = %self.source.name, path = %lost.path.display(), lines, bytes,
                "more than {MAX_PENDING_FILES} rotated files waiting: the oldest is given up and counted as lost");
        }
        Ok(true)
    }

    /// Resolves the path; opens the file it names when it is not the last one queued or read.
    /// [`Opened::Same`]: nothing new; [`Opened::Missing`]: no file there (or it was deleted
    /// before the open: counted as lost).
    ///
    /// The path is looked at (`stat`) before it is opened, and a rotation may come in between:
    /// then the file opened is not the one looked at ([`Discovery::left_path`] finds where that
    /// one went), and the size looked at is not the opened file's.
    fn open_path(&self) -> Result<Opened, String> {
        let (path, meta) = match resolve(&self.pattern) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(Opened::Missing),
            Err(e) => return Err(format!("{}: {e}", self.pattern)),
        };
        if !meta.is_file() {
            let why = format!(
                "{}: not a regular file (a {}); refusing to read it",
                path.display(),
                crate::fsread::kind_of(&meta)
            );
            self.source.counters.refuse(&why);
            return Err(why);
        }
        let looked = FileId::of(&meta);
        if self.lock().last == Some(looked) {
            return Ok(Opened::Same);
        }
        #[cfg(test)]
        self.hook.run(Point::PathOpened, &path);
        let opened = match open_file(&path) {
            Ok(opened) => Some(opened),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: cannot open: {e}", path.display())),
        };
        if opened.as_ref().is_none_or(|(_, m)| FileId::of(m) != looked) {
            // Rotated between the stat and the open. Counting the file looked at as lost (or,
            // with the size looked at, taking the new file for a truncated one) was wrong when it
            // had only been renamed: it was read later as a sibling, counted lost all the same.
            if let Some(renamed) = self.left_path(&path, looked, meta.len()) {
                super::guard::admit(&self.source, &self.pattern, &renamed.path, &renamed.file)?;
                // The path's new file (if any) is opened again by the next look.
                return Ok(Opened::New(renamed));
            }
        }
        let Some((file, opened)) = opened else { return Ok(Opened::Missing) };
        let id = FileId::of(&opened);
        if self.lock().last == Some(id) {
            return Ok(Opened::Same);
        }
        // The size looked at is this file's only if it is the file looked at (a smaller size now
        // then means it was truncated, or replaced by a new file reusing its inode: lost bytes).
        let seen = if id == looked { meta.len() } else { opened.len() };
        // Checked before the file is remembered: a refused one is looked at again at the next pass
        // (another link to the same file is refused for its own reason, a fixed path is followed).
        super::guard::admit(&self.source, &self.pattern, &path, &file)?;
        Ok(Opened::New(Found { file: Arc::new(file), path, id, seen, truncated: 0, truncations: 0 }))
    }

    /// The file `id` (of `size` bytes when looked at) left `path` before it could be opened.
    /// Renamed beside it (`app.log` → `app.log.1`): found by its identity, opened and returned.
    /// Otherwise (deleted, renamed elsewhere, or a symlink switched away from it) nobody will read
    /// it: unless it is a file already queued or read, its size is counted as lost (a lower
    /// bound: it may have grown since).
    fn left_path(&self, path: &Path, id: FileId, size: u64) -> Option<Found> {
        if self.lock().knows(id) {
            return None;
        }
        let name = path.file_name();
        // A directory listing taken while other entries are renamed may miss one: look twice.
        for _ in 0..2 {
            let Some(entries) = path.parent().and_then(|dir| std::fs::read_dir(dir).ok()) else { break };
            for entry in entries.flatten().take(MAX_SIBLINGS) {
                if Some(entry.file_name().as_os_str()) == name {
                    continue;
                }
                if !entry.metadata().is_ok_and(|m| m.is_file() && FileId::of(&m) == id) {
                    continue;
                }
                let Ok((file, meta)) = open_file(&entry.path()) else { continue };
                if FileId::of(&meta) == id {
                    let seen = meta.len();
                    return Some(Found {
                        file: Arc::new(file),
                        path: entry.path(),
                        id,
                        seen,
                        truncated: 0,
                        truncations: 0,
                    });
                }
            }
        }
        self.count_lost(size, None);
        self.lock().account();
        tracing::warn!(source = %self.source.name, path = %path.display(), bytes = size,
            "a rotated file was deleted (or moved away) before it could be opened: its bytes are counted as lost");
        None
    }

    /// Regular files beside the path named like it (`app.log.1`, `app.log-20260101`; not
    /// compressed), not known, not in `exclude`, modified since the newest file known: the rotated
    /// files the path named between two looks. Opened, oldest first. None for a glob or before
    /// the first file.
    fn rotated_siblings(&self, exclude: &[FileId]) -> Vec<(Stamp, Found)> {
        // A sibling renamed between the listing and its open (the next rotation shifting
        // `app.log.1` to `app.log.2`) would be missed, and once a newer file is known it is
        // older than the floor: never read, never counted. The listing is taken again then.
        let mut attempt = 1;
        loop {
            match self.list_siblings(exclude) {
                Ok(found) => return found,
                Err(found) if attempt == MAX_LOOKS => return found,
                Err(_) => attempt += 1,
            }
        }
    }

    /// One listing for [`Discovery::rotated_siblings`]; `Err` (with what it found) when a sibling
    /// listed was gone or another file by the time it was opened (one that cannot be opened for
    /// another reason is left out, not looked for again).
    fn list_siblings(&self, exclude: &[FileId]) -> Result<Siblings, Siblings> {
        let path = Path::new(&self.pattern);
        let (floor, known, prints) = {
            let state = self.lock();
            let floor = state.newest.as_ref().and_then(|f| f.metadata().ok()).and_then(|m| m.modified().ok());
            let known: Vec<FileId> =
                state.known.iter().filter(|(_, f)| f.strong_count() > 0).map(|(id, _)| *id).collect();
            (floor, known, state.prints.clone())
        };
        let (Some(floor), Some(dir), Some(name)) = (floor, path.parent(), path.file_name()) else {
            return Ok(Vec::new());
        };
        if is_glob(&self.pattern) {
            return Ok(Vec::new());
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
        let name = name.as_encoded_bytes();
        let mut siblings: Vec<(Stamp, PathBuf, FileId)> = entries
            .flatten()
            .take(MAX_SIBLINGS)
            .filter(|e| {
                let n = e.file_name();
                let n = n.as_encoded_bytes();
                n.len() > name.len() && n.starts_with(name) && !COMPRESSED.iter().any(|c| n.ends_with(c.as_bytes()))
            })
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let id = FileId::of(&meta);
                meta.modified().ok().filter(|t| *t >= floor)?;
                (!exclude.contains(&id) && !known.contains(&id)).then(|| (stamp(&meta), e.path(), id))
            })
            .collect();
        // Times are coarse (a clock tick): on a tie `app.log.3` is older than `app.log.2`
        // (logrotate numbering), other names sort as they read (dates).
        let number = |p: &Path| -> u64 {
            let n = p.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
            std::str::from_utf8(&n[name.len().min(n.len())..])
                .ok()
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.parse().ok())
                .unwrap_or(0)
        };
        siblings.sort_by_key(|(stamp, p, _)| (*stamp, std::cmp::Reverse(number(p)), p.clone()));
        #[cfg(test)]
        self.hook.run(Point::SiblingsListed, dir);
        let mut moved = false;
        let found = siblings
            .into_iter()
            .filter_map(|(stamp, p, listed)| {
                // Gone, or another file under that name: moved (an unreadable one is not).
                let (file, meta) = match open_file(&p) {
                    Ok((file, meta)) if FileId::of(&meta) == listed => (file, meta),
                    Ok(_) => {
                        moved = true;
                        return None;
                    }
                    Err(e) => {
                        moved |= e.kind() == io::ErrorKind::NotFound;
                        return None;
                    }
                };
                let print = Fingerprint::read(&file).ok()?;
                let copy = !print.bytes().is_empty()
                    && prints.iter().any(|known| known.continues_in(&print) || print.continues_in(known));
                let found = Found {
                    file: Arc::new(file),
                    path: p,
                    id: FileId::of(&meta),
                    seen: meta.len(),
                    truncated: 0,
                    truncations: 0,
                };
                (!copy).then_some((stamp, found))
            })
            .filter(|(_, f)| !exclude.contains(&f.id))
            .collect();
        if moved {
            Err(found)
        } else {
            Ok(found)
        }
    }

    /// The next file found, oldest first.
    pub(crate) fn take_next(&self) -> Option<Found> {
        self.lock().pending.pop_front()
    }

    /// The follower reads `file` (identity `id`) now: its size is noted from here on.
    pub(crate) fn reading(&self, file: Arc<File>, id: FileId) {
        let mut state = self.lock();
        state.observed = file.metadata().map(|m| m.len()).unwrap_or(0);
        if state.pending.is_empty() {
            state.last = Some(id);
        }
        if !state.knows(id) {
            state.remember(id, &file);
        }
        state.watched = Some(file);
        state.shrunk_from = None;
        state.later = (0, 0);
    }

    /// The follower closed the file `id` (deleted and idle): a new file reusing its inode is new.
    pub(crate) fn closed(&self, id: FileId) {
        let mut state = self.lock();
        state.watched = None;
        if state.last == Some(id) {
            state.last = None;
        }
    }

    /// The follower read a file starting with `print` (or saw more of its start).
    pub(crate) fn read_print(&self, print: &Fingerprint) {
        if print.bytes().is_empty() {
            return;
        }
        let mut state = self.lock();
        if state.prints.len() == KNOWN_FILES {
            state.prints.pop_front();
        }
        state.prints.retain(|p| !p.continues_in(print));
        state.prints.push_back(print.clone());
    }

    /// Whether the watcher saw the file being read shrink since the follower last looked.
    pub(crate) fn shrink_seen(&self) -> bool {
        self.lock().shrunk_from.is_some()
    }

    /// What the watcher noted of the file being read before a truncation the follower just
    /// found, and the truncations it saw after that one with the bytes of the generations they
    /// took; the watch then restarts from `size_now`.
    pub(crate) fn truncated_from(&self, size_now: u64) -> (Noted, (u64, u64)) {
        let mut state = self.lock();
        let noted = match state.shrunk_from.take() {
            Some(n) => Noted::ShrunkFrom(n),
            None => Noted::Size(state.observed),
        };
        state.observed = size_now;
        (noted, std::mem::take(&mut state.later))
    }

    /// Counts bytes that will never be read, and their lines (estimated from the source's mean
    /// line length when unknown; see [`lines_in`]).
    pub(crate) fn count_lost(&self, bytes: u64, lines: Option<u64>) {
        let lines = lines.unwrap_or_else(|| lines_in(&self.source, bytes));
        let counters = &self.source.counters;
        SourceCounters::add(&counters.lost_bytes, bytes);
        SourceCounters::add(&counters.lost_lines, lines);
    }
}

/// Lines in `bytes` never seen: at least one when there are any, else `bytes` divided by the
/// source's mean line length so far, rounded up (exact when every line has the same length).
pub(crate) fn lines_in(source: &LogSource, bytes: u64) -> u64 {
    if bytes == 0 {
        return 0;
    }
    let read = source.counters.bytes_read.load(std::sync::atomic::Ordering::Relaxed);
    let lines = source.ring.stats().lines_total;
    if read == 0 || lines == 0 {
        return 1;
    }
    // bytes × lines / read, rounded up, without overflow.
    ((u128::from(bytes) * u128::from(lines)).div_ceil(u128::from(read)) as u64).max(1)
}

/// Lines (an unfinished last one included) and bytes in `file` now.
fn count_lines(file: &File) -> (u64, u64) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut offset, mut last) = (0u64, 0u64, b'\n');
    loop {
        match file.read_at(&mut buf, offset) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                last = buf[n - 1];
                offset += n as u64;
            }
        }
    }
    (lines + u64::from(last != b'\n'), offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::RingLimits;
    use crate::logs::SourceKind;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The watcher thread and the follower look at the same time; a file must never be queued
    /// again after a newer one (it would be read a second time and counted as one more rotation).
    #[test]
    fn concurrent_looks_never_queue_a_file_again_after_a_newer_one() {
        let dir = std::env::temp_dir().join(format!("leakwatch-discover-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.log");
        std::fs::write(&path, "file 0\n").unwrap();
        let limits = RingLimits { max_lines: 100, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 1 };
        let source = Arc::new(LogSource::new("app", SourceKind::File { pattern: path.display().to_string() }, limits));
        let discovery = Arc::new(Discovery::new(source, path.display().to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let lookers: Vec<_> = (0..3)
            .map(|_| {
                let (d, stop) = (discovery.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = d.discover();
                    }
                })
            })
            .collect();
        let number = |f: &File| {
            let mut buf = [0u8; 32];
            let n = f.read_at(&mut buf, 0).unwrap();
            std::str::from_utf8(&buf[5..n - 1]).unwrap().parse::<u64>().unwrap()
        };
        // The follower: holds the file it reads and the one before (as `Rotated`).
        let (mut taken, mut held) = (Vec::new(), VecDeque::new());
        // Each rotation waits until the follower took the file before (as the rotation tests'
        // writer does): a look that stalled between its check and its push would queue it again.
        for n in 1..=1000u64 {
            std::fs::rename(&path, dir.join("app.log.1")).unwrap();
            std::fs::write(&path, format!("file {n}\n")).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while taken.last() < Some(&n) {
                assert!(std::time::Instant::now() < deadline, "file {n} never queued");
                let Some(found) = discovery.take_next() else {
                    std::thread::yield_now();
                    continue;
                };
                taken.push(number(&found.file));
                discovery.reading(found.file.clone(), found.id);
                held.push_back(found.file);
                if held.len() > 2 {
                    held.pop_front();
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for l in lookers {
            l.join().unwrap();
        }
        while let Some(found) = discovery.take_next() {
            taken.push(number(&found.file));
        }
        let back = taken.windows(2).find(|w| w[1] <= w[0]);
        assert!(back.is_none(), "a file queued again after a newer one: {back:?} in {} files", taken.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
