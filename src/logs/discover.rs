//! Learns every file a followed path names, as it appears, so rotation cannot outrun the reader.
//!
//! The directory watcher calls [`Discovery::on_event`] from its own thread for every event; the
//! follower calls [`Discovery::discover`] on each wake-up too (events can be missed). Each call
//! resolves the path and, when it names a file other than the last one seen, **opens it at
//! once** and queues it: an open descriptor keeps a renamed or deleted file readable, so
//! however many rotations happen before the follower runs again, it drains every file in order.
//! A file found deleted between the `stat` and the `open` cannot be read by anyone: its size at
//! the `stat` is counted as lost (a lower bound).
//!
//! The queue holds at most [`MAX_PENDING_FILES`] descriptors (deleted files keep their disk
//! space while open). When it is full the oldest queued file is given up: its lines and bytes
//! at that moment are counted as lost (writes to it afterwards cannot be known).
//!
//! Between reads the watcher also notes the size of the file being read: that is what a later
//! truncation is measured against (see [`Discovery::truncated_from`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::identity::FileId;
use super::tail::{kind, open_file, resolve};
use super::{LogSource, SourceCounters};

/// Most files opened ahead of the follower.
pub const MAX_PENDING_FILES: usize = 16;

/// A file found at the path and opened, not read yet.
#[derive(Debug)]
pub struct Found {
    /// The open file.
    pub file: File,
    /// The path it was opened by.
    pub path: PathBuf,
    /// Its identity.
    pub id: FileId,
}

#[derive(Debug, Default)]
struct State {
    /// The last file queued or read: the next different one is new.
    last: Option<FileId>,
    pending: VecDeque<Found>,
    /// The file being read, whose size the watcher notes between reads.
    watched: Option<Arc<File>>,
    /// Its size at the last note.
    observed: u64,
    /// Its size before it first shrank since the follower last looked (a truncation).
    shrunk_from: Option<u64>,
}

/// The files found for one source, shared by its watcher thread and its follower.
#[derive(Debug)]
pub struct Discovery {
    source: Arc<LogSource>,
    pattern: String,
    state: Mutex<State>,
}

/// What the watcher noted of a truncated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// It saw the file shrink, from this size.
    ShrunkFrom(u64),
    /// It did not see it shrink; its last size noted (the new content's, if rewritten past it).
    Size(u64),
}

/// What the watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A file's data changed: only sizes are noted.
    Data,
    /// Names in a directory changed (or anything else): the path is resolved again.
    Names,
}

impl Discovery {
    /// Discovery for `source`, following `pattern`.
    pub fn new(source: Arc<LogSource>, pattern: String) -> Self {
        Self { source, pattern, state: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A directory event: notes the size of the file being read and, for name changes, opens
    /// a new file the path names.
    pub fn on_event(&self, kind: EventKind) {
        self.observe();
        if kind == EventKind::Names {
            // The follower reports problems on its own pass.
            let _ = self.discover();
        }
    }

    /// Notes the size of the file being read.
    pub fn observe(&self) {
        let mut state = self.lock();
        let Some(size) = state.watched.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()) else { return };
        if size < state.observed && state.shrunk_from.is_none() {
            state.shrunk_from = Some(state.observed);
        }
        state.observed = size;
    }

    /// Resolves the path; opens and queues the file it names if it is a new one. Fails with a
    /// message when the path names something that cannot be read.
    pub fn discover(&self) -> Result<(), String> {
        let (path, meta) = match resolve(&self.pattern) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", self.pattern)),
        };
        if !meta.is_file() {
            return Err(format!("{}: not a regular file ({}); refusing to read it", path.display(), kind(&meta)));
        }
        if self.lock().last == Some(FileId::of(&meta)) {
            return Ok(());
        }
        let (file, id) = match open_file(&path) {
            Ok((file, meta)) => (file, FileId::of(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Deleted between the stat and the open: nobody can read it any more.
                self.count_lost(meta.len(), None);
                tracing::warn!(source = %self.source.name, path = %path.display(), bytes = meta.len(),
                    "a rotated file was deleted before it could be opened: its bytes are counted as lost");
                return Ok(());
            }
            Err(e) => return Err(format!("{}: cannot open: {e}", path.display())),
        };
        let given_up = {
            let mut state = self.lock();
            if state.last == Some(id) {
                return Ok(());
            }
            state.last = Some(id);
            state.pending.push_back(Found { file, path, id });
            if state.pending.len() > MAX_PENDING_FILES {
                state.pending.pop_front()
            } else {
                None
            }
        };
        if let Some(lost) = given_up {
            let (lines, bytes) = count_lines(&lost.file);
            self.count_lost(bytes, Some(lines));
            tracing::warn!(source = %self.source.name, path = %lost.path.display(), lines, bytes,
                "more than {MAX_PENDING_FILES} rotated files waiting: the oldest is given up and counted as lost");
        }
        Ok(())
    }

    /// The next file found, oldest first.
    pub fn take_next(&self) -> Option<Found> {
        self.lock().pending.pop_front()
    }

    /// Files opened and waiting.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// The follower reads `file` (identity `id`) now: its size is noted from here on.
    pub fn reading(&self, file: Arc<File>, id: FileId) {
        let mut state = self.lock();
        state.observed = file.metadata().map(|m| m.len()).unwrap_or(0);
        state.watched = Some(file);
        state.shrunk_from = None;
        if state.pending.is_empty() {
            state.last = Some(id);
        }
    }

    /// The follower closed the file `id` (deleted and idle): a new file reusing its inode is new.
    pub fn closed(&self, id: FileId) {
        let mut state = self.lock();
        state.watched = None;
        if state.last == Some(id) {
            state.last = None;
        }
    }

    /// What the watcher noted of the file being read before a truncation the follower just
    /// found; the watch then restarts from `size_now`.
    pub fn truncated_from(&self, size_now: u64) -> Noted {
        let mut state = self.lock();
        let noted = match state.shrunk_from.take() {
            Some(n) => Noted::ShrunkFrom(n),
            None => Noted::Size(state.observed),
        };
        state.observed = size_now;
        noted
    }

    /// Counts bytes that will never be read, and their lines (estimated from the source's mean
    /// line length when unknown; see [`lines_in`]).
    pub fn count_lost(&self, bytes: u64, lines: Option<u64>) {
        let lines = lines.unwrap_or_else(|| lines_in(&self.source, bytes));
        let counters = &self.source.counters;
        SourceCounters::add(&counters.lost_bytes, bytes);
        SourceCounters::add(&counters.lost_lines, lines);
    }
}

/// Lines in `bytes` never seen: at least one when there are any, else `bytes` divided by the
/// source's mean line length so far, rounded up (exact when every line has the same length).
pub fn lines_in(source: &LogSource, bytes: u64) -> u64 {
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
