//! Follows one file source across rotation into its ring.
//!
//! **One OS thread per file source.** Reads are blocking syscalls and the runtime is
//! current-thread: a dedicated thread keeps a slow disk or a 1 GiB burst from stalling `/metrics`,
//! and unlike `spawn_blocking` it never occupies the small blocking pool the sampler needs. The
//! thread sleeps on a channel that a `notify` watcher wakes (on the configured path's directory
//! and on the real directory of the file being read, which differ for the Kubernetes
//! `/var/log/containers` symlinks); every [`POLL_INTERVAL`] it wakes anyway, because inotify can
//! miss or drop events.
//!
//! The watcher's thread also finds the files (`Discovery`, in `discover.rs`): on every event
//! it opens a new file the path names and queues it, so rotations cannot outrun the follower;
//! files that arrived at the path (`events.rs`) and were gone before any look are counted.
//!
//! Each wake-up is one [`Tailer::step`]:
//! 1. **Truncation** of the open file: `fstat` size below the read offset or below a size seen
//!    before, a shrink the watcher saw, or its first bytes no longer match the fingerprint
//!    (truncated and already rewritten past the offset). The bytes between the offset and the end
//!    of the copy are recovered from the rotated copy when one is found beside it (same
//!    fingerprint, not the same inode: logrotate's `copytruncate` copy); the rest, up to the
//!    largest size seen, is counted as lost at once (a lower bound: writes after the last size
//!    seen are unknowable); then reading restarts at 0 and `truncations` is counted.
//! 2. **Read to EOF** from the offset, splitting lines ([`LineSplitter`]) into the ring. After each
//!    chunk the fingerprint is checked again: a truncation between step 1 and the read would
//!    otherwise feed the new file's bytes from mid-line; such a chunk is left, with the offset, for
//!    step 1 of the next wake-up.
//! 3. **Every file found** since, oldest first (rename-and-create, delete-and-recreate, symlink
//!    switch, rotated siblings): the file being read is read to its end, then the next one from
//!    0. The last file left stays open, with its own unfinished line, and is read until idle for
//!    `ROTATED_GRACE` (late writes before the application reopens its log). While the path is
//!    missing the open file stays open and is read; a deleted file is closed once idle for
//!    [`PARTIAL_LINE_TIMEOUT`].
//! 4. An unfinished last line is flushed after [`PARTIAL_LINE_TIMEOUT`] without new bytes.
//!
//! The first open reads only the last `max_bytes` of the file (the first partial line dropped),
//! so a restarted sidecar shows recent lines at once.
//!
//! Every file the follower reads is opened by `open_file`.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::discover::{Discovery, Found, Noted};
use super::events::{EventKind, EventSorter};
use super::identity::{FileId, Fingerprint};
use super::lines::LineSplitter;
use super::{LogSource, SourceCounters, SourceKind};

/// How often a file is checked when no event arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// An unfinished last line is stored after this long without new bytes.
pub const PARTIAL_LINE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// A lasting problem (a missing file, a refused one) is logged again this often.
pub(crate) const PROBLEM_REPEAT: Duration = Duration::from_secs(60);
/// How long a rotated-away file is still read after it last grew: a writer that has not reopened
/// its log yet (logrotate `create` before the app's reopen) keeps appending to the old file.
pub(crate) const ROTATED_GRACE: Duration = Duration::from_secs(5);
/// The nice value the directory watcher thread asks for (it only stats and opens files).
const WATCHER_NICE: i32 = -10;
/// Most directory entries examined when looking for a copytruncate copy.
const MAX_COPY_CANDIDATES: usize = 256;

/// The file being read.
#[derive(Debug)]
struct Current {
    /// Shared with the watcher thread, which notes its size between reads.
    file: Arc<File>,
    path: PathBuf,
    id: FileId,
    offset: u64,
    fingerprint: Fingerprint,
    /// The largest size `fstat` showed.
    known_size: u64,
}

/// A file rotated away, still read until it has been idle for [`ROTATED_GRACE`].
#[derive(Debug)]
struct Rotated {
    file: Current,
    /// Its own unfinished line: the new file's lines must not join it.
    splitter: LineSplitter,
    last_growth: Instant,
}

/// The rotation-safe follower of one file source. [`TailThread::start`] runs it; tests may call
/// [`Tailer::step`] directly.
pub struct Tailer {
    source: Arc<LogSource>,
    pattern: String,
    /// Files found at the path (by the watcher thread or a poll), opened and waiting.
    discovery: Arc<Discovery>,
    splitter: LineSplitter,
    buf: Vec<u8>,
    current: Option<Current>,
    /// The previous file, kept open for late writes after a rotation.
    rotated: Option<Rotated>,
    /// Identity of the last file followed, to count a new file as a rotation.
    previous: Option<FileId>,
    at_start: bool,
    last_data: Instant,
    /// The last problem logged and when, so a lasting one is logged again only every
    /// [`PROBLEM_REPEAT`].
    problem: Option<(String, Instant)>,
    watch: Option<DirWatch>,
}

impl Tailer {
    /// A follower of `source`, which must be a file source.
    pub fn new(source: Arc<LogSource>) -> io::Result<Self> {
        let SourceKind::File { pattern } = &source.kind else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a file source", source.name)));
        };
        let pattern = pattern.clone();
        let max_line_bytes = source.ring.limits().max_line_bytes;
        Ok(Self {
            discovery: Arc::new(Discovery::new(source.clone(), pattern.clone())),
            source,
            pattern,
            splitter: LineSplitter::new(max_line_bytes),
            buf: vec![0; READ_CHUNK],
            current: None,
            rotated: None,
            previous: None,
            at_start: true,
            last_data: Instant::now(),
            problem: None,
            watch: None,
        })
    }

    /// One pass: truncation check, read to EOF, every file found since in order, partial-line
    /// timeout.
    pub fn step(&mut self) {
        self.step_looking(true);
    }

    /// [`Tailer::step`]; with `look` false the path is not looked at (the watcher thread looked
    /// on the event that woke the follower: a look of the follower's own would only make the
    /// watcher's next one wait for it, see [`Discovery::discover`]).
    fn step_looking(&mut self, look: bool) {
        // The caps may have been reloaded.
        self.splitter.set_max_line_bytes(self.source.ring.limits().max_line_bytes);
        self.drain_rotated();
        self.check_truncation();
        self.drain();
        if look {
            if let Err(problem) = self.discovery.discover() {
                self.problem(problem);
            }
        }
        while let Some(found) = self.discovery.take_next() {
            self.switch_to(found);
        }
        if self.current.is_none() && matches!(resolve(&self.pattern), Ok(None)) {
            self.report(format!("{}: no such file; waiting for it to appear", self.pattern));
        }
        self.close_if_deleted();
        self.at_start = false;
        if self.splitter.has_partial() && self.last_data.elapsed() >= PARTIAL_LINE_TIMEOUT {
            self.flush_partial();
        }
        if let Some(w) = &mut self.watch {
            if !w.ready {
                // Before the path's directory is watched (not after: the watcher thread could
                // handle a file's event uncounted and count the file its look opens): files
                // arriving from then on are directory events. One accounted for without an event
                // (it came before the watch) only offsets a later one: a lower bound.
                self.discovery.count_files();
            }
            let current = self.current.as_ref().map(|c| c.path.as_path());
            w.update(&self.pattern, current);
        }
    }

    /// What a directory event does (the watcher thread calls it): notes the size of the file
    /// being read and opens a new file the path names. Tests call it to stand for an event.
    pub fn observe(&self) {
        self.discovery.on_event(EventKind::Names);
    }

    /// Reads what is left and stores the unfinished line (shutdown).
    pub fn finish(&mut self) {
        self.drain_rotated();
        self.retire_rotated();
        self.drain();
        self.flush_partial();
    }

    /// Reads late writes to the rotated-away file; lets it go once idle for [`ROTATED_GRACE`].
    fn drain_rotated(&mut self) {
        let Some(mut rotated) = self.rotated.take() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        let read = read_to_eof(&mut rotated.file, &mut buf, &self.source, &mut rotated.splitter);
        self.buf = buf;
        match read {
            Ok(0) => {}
            Ok(_) => rotated.last_growth = Instant::now(),
            Err(e) => self.problem(format!("{}: read failed: {e}", rotated.file.path.display())),
        }
        let idle = rotated.last_growth.elapsed() >= ROTATED_GRACE;
        self.rotated = Some(rotated);
        if idle {
            self.retire_rotated();
        }
    }

    /// Stores the rotated file's unfinished line and closes it.
    fn retire_rotated(&mut self) {
        if let Some(mut rotated) = self.rotated.take() {
            let mut writer = self.source.ring.writer();
            rotated.splitter.flush(|line, cut| {
                writer.push(line, cut);
            });
        }
    }

    fn counters(&self) -> &SourceCounters {
        &self.source.counters
    }

    /// Counts a read problem and reports it.
    fn problem(&mut self, message: String) {
        SourceCounters::add(&self.source.counters.read_errors, 1);
        self.report(message);
    }

    /// Shows a problem in the source's figures and logs it: at once, then every
    /// [`PROBLEM_REPEAT`] while it lasts.
    fn report(&mut self, message: String) {
        let due = match &self.problem {
            Some((last, at)) => *last != message || at.elapsed() >= PROBLEM_REPEAT,
            None => true,
        };
        if due {
            tracing::warn!(source = %self.source.name, "{message}");
            *self.source.counters.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
            self.problem = Some((message, Instant::now()));
        }
    }

    /// A file is followed again: no problem in force. True when there was one.
    fn resolved(&mut self) -> bool {
        let had = self.problem.take().is_some();
        if had {
            *self.source.counters.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        had
    }

    fn ingest(&mut self, chunk: &[u8]) {
        let mut writer = self.source.ring.writer();
        self.splitter.feed(chunk, |line, cut| {
            writer.push(line, cut);
        });
    }

    fn flush_partial(&mut self) {
        let mut writer = self.source.ring.writer();
        self.splitter.flush(|line, cut| {
            writer.push(line, cut);
        });
    }

    /// Stores the unfinished line as cut (its end was truncated away).
    fn cut_partial(&mut self) {
        let mut writer = self.source.ring.writer();
        self.splitter.cut_off(|line, cut| {
            writer.push(line, cut);
        });
    }

    /// Reads the open file from its offset to EOF.
    fn drain(&mut self) {
        let Some(mut cur) = self.current.take() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        let print_len = cur.fingerprint.bytes().len();
        match read_to_eof(&mut cur, &mut buf, &self.source, &mut self.splitter) {
            Ok(0) => {}
            Ok(_) => self.last_data = Instant::now(),
            Err(e) => self.problem(format!("{}: read failed: {e}", cur.path.display())),
        }
        if cur.fingerprint.bytes().len() > print_len {
            self.discovery.read_print(&cur.fingerprint);
        }
        self.buf = buf;
        self.current = Some(cur);
    }

    /// Detects a shrink or an in-place rewrite of the open file and restarts it at 0.
    ///
    /// Bytes lost in the truncation are counted at once: the file's largest known size before it
    /// (from this follower's `fstat`s and the watcher's, see [`Discovery::truncated_from`])
    /// minus what was read or recovered from the copy. Writes after the last size seen are
    /// unknowable, so this is a lower bound; exact when the size was seen after the last write.
    fn check_truncation(&mut self) {
        let Some(cur) = &mut self.current else { return };
        let size = match cur.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                let message = format!("{}: fstat failed: {e}", cur.path.display());
                return self.problem(message);
            }
        };
        // Shrunk below what was read or seen (the watcher may have seen a truncation that was
        // rewritten past the offset since, with a fingerprint too short to tell).
        let shrunk = size < cur.offset || size < cur.known_size || self.discovery.shrink_seen();
        if !shrunk && !rewritten(cur) {
            cur.known_size = cur.known_size.max(size);
            return;
        }
        let (path, offset, known) = (cur.path.clone(), cur.offset, cur.known_size.max(cur.offset));
        // The size now, not the one read before the check: a truncation that came after that
        // `fstat` (found by the rewrite check) would leave the watch expecting the old size, and the
        // watcher would take the real one for a second truncation.
        let size = cur.file.metadata().map_or(size, |m| m.len());
        let recovered = self.recover_from_copy();
        // An unfinished line here lost its end to the truncation (or to the gap between the copy
        // and the truncation): stored as cut, never joined to the new file's first bytes and
        // never passed off as a line written whole.
        self.cut_partial();
        // A rewrite past the offset may have been noted by the watcher as the new file's size.
        let (noted, (later, later_bytes)) = self.discovery.truncated_from(size);
        let before = match noted {
            Noted::ShrunkFrom(n) => n.max(known),
            Noted::Size(n) if shrunk => n.max(known),
            Noted::Size(_) => known,
        };
        // Later truncations the watcher saw before this look took whole generations, unread.
        let lost = before.saturating_sub(offset + recovered) + later_bytes;
        if lost > 0 {
            self.discovery.count_lost(lost, None);
        }
        SourceCounters::add(&self.counters().truncations, 1 + later);
        tracing::info!(source = %self.source.name, path = %path.display(), offset, size, recovered, lost,
            "file truncated (copytruncate?): reading from its start");
        if let Some(cur) = &mut self.current {
            cur.offset = 0;
            cur.known_size = size;
            cur.fingerprint = Fingerprint::read(&cur.file).unwrap_or_default();
            self.discovery.read_print(&cur.fingerprint);
        }
    }

    /// After a truncation, reads the bytes past the offset from the rotated copy beside the file
    /// (a regular file with another inode that starts with the same fingerprint and is at least
    /// as long as the offset; the newest if several). Returns the bytes recovered.
    fn recover_from_copy(&mut self) -> u64 {
        let Some(cur) = &self.current else { return 0 };
        if cur.fingerprint.bytes().is_empty() || cur.offset == 0 {
            return 0;
        }
        let Some(dir) = cur.path.parent() else { return 0 };
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        let mut best: Option<(SystemTime, File, u64)> = None;
        for entry in entries.flatten().take(MAX_COPY_CANDIDATES) {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || FileId::of(&meta) == cur.id || meta.len() <= cur.offset {
                continue;
            }
            let Ok((file, _)) = open_file(&entry.path()) else { continue };
            let matches = Fingerprint::read(&file).is_ok_and(|fp| cur.fingerprint.continues_in(&fp));
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if matches && best.as_ref().is_none_or(|(t, _, _)| mtime > *t) {
                best = Some((mtime, file, meta.len()));
            }
        }
        let Some((_, file, len)) = best else { return 0 };
        let (mut offset, print) = (cur.offset, cur.fingerprint.clone());
        let mut buf = std::mem::take(&mut self.buf);
        while offset < len {
            let want = buf.len().min((len - offset) as usize);
            match file.read_at(&mut buf[..want], offset) {
                Ok(0) | Err(_) => break,
                // The copy rewritten in place since it was chosen (the next copytruncate's copy
                // over it): these bytes are another generation's; left, and counted lost.
                Ok(_) if !Fingerprint::read(&file).is_ok_and(|fp| print.continues_in(&fp)) => break,
                Ok(n) => {
                    offset += n as u64;
                    SourceCounters::add(&self.counters().bytes_read, n as u64);
                    self.ingest(&buf[..n]);
                }
            }
        }
        self.buf = buf;
        offset - self.current.as_ref().map_or(offset, |c| c.offset)
    }

    /// Moves on to the next file found at the path: the open file is read to its end first and
    /// kept (with its unfinished line) for late writes; the new one is read from its start (the
    /// first file, at start-up, from its last `max_bytes`).
    fn switch_to(&mut self, found: Found) {
        if self.current.as_ref().is_some_and(|c| c.id == found.id) {
            return;
        }
        let from_tail = self.at_start && self.current.is_none() && self.previous.is_none();
        let (path, seen, truncated, truncations) = (found.path.clone(), found.seen, found.truncated, found.truncations);
        let (next, mid_line) =
            match start_reading(found, from_tail.then_some(self.source.ring.limits().max_bytes as u64)) {
                Ok(next) => next,
                Err(e) => return self.problem(format!("{}: cannot read: {e}", path.display())),
            };
        // Discovery admitted the path's file; a rotated sibling is checked here, on its descriptor.
        if let Err(why) = super::guard::admit(&self.source, &self.pattern, &path, &next.file) {
            return self.problem(why);
        }
        // Truncated while it waited: what the watcher saw in it is gone.
        let (lost, shrinks) =
            if next.known_size < seen { (truncated + seen, truncations + 1) } else { (truncated, truncations) };
        if lost > 0 {
            self.discovery.count_lost(lost, None);
        }
        SourceCounters::add(&self.counters().truncations, shrinks);
        // Finish the old file first: every byte written to it before the switch is read; keep it
        // open (with its unfinished line) for writes that still land in it after the switch.
        self.drain();
        if let Some(old) = self.current.take() {
            self.drain_rotated();
            self.retire_rotated();
            let splitter =
                std::mem::replace(&mut self.splitter, LineSplitter::new(self.source.ring.limits().max_line_bytes));
            self.rotated = Some(Rotated { file: old, splitter, last_growth: Instant::now() });
        }
        if self.previous.is_some_and(|p| p != next.id) {
            SourceCounters::add(&self.counters().rotations, 1);
        }
        if self.resolved() || self.previous.is_none() {
            tracing::info!(source = %self.source.name, path = %next.path.display(), offset = next.offset, "following");
        }
        if mid_line {
            self.splitter.skip_first_line();
        }
        self.previous = Some(next.id);
        self.discovery.reading(next.file.clone(), next.id);
        self.discovery.read_print(&next.fingerprint);
        self.current = Some(next);
        self.drain();
    }

    /// Closes a deleted, fully read file once it has been idle (so its disk space is freed).
    fn close_if_deleted(&mut self) {
        let Some(cur) = &self.current else { return };
        let deleted = cur.file.metadata().is_ok_and(|m| m.nlink() == 0);
        if deleted && self.last_data.elapsed() >= PARTIAL_LINE_TIMEOUT {
            self.discovery.closed(cur.id);
            self.flush_partial();
            self.current = None;
        }
    }
}

/// Reads `cur` from its offset to EOF into the ring through `splitter`; returns the bytes read.
fn read_to_eof(cur: &mut Current, buf: &mut [u8], source: &LogSource, splitter: &mut LineSplitter) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        match cur.file.read_at(buf, cur.offset) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                // Truncated and rewritten past the offset since the last check (copytruncate
                // while the writer goes on): these bytes are the new file's, from mid-line. Leave
                // them and the offset for the truncation check, which recovers the old file's
                // bytes from the copy and reads the new one from its start.
                if rewritten(cur) {
                    return Ok(total);
                }
                // An incomplete fingerprint (the file was empty or short when it was taken) is
                // completed from the bytes read, never from a later look at the file: one
                // taken after another truncation and rewrite would make the next generation pass
                // for this one, and its bytes from mid-line join this one's unfinished line.
                if !cur.fingerprint.is_complete() && !cur.fingerprint.extend_from(cur.offset, &buf[..n]) {
                    return Ok(total);
                }
                cur.offset += n as u64;
                total += n as u64;
                SourceCounters::add(&source.counters.bytes_read, n as u64);
                let mut writer = source.ring.writer();
                splitter.feed(&buf[..n], |line, cut| {
                    writer.push(line, cut);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
            Err(e) => return Err(e),
        }
    }
}

/// Whether the open file no longer starts with its fingerprint (rewritten in place).
fn rewritten(cur: &Current) -> bool {
    !cur.fingerprint.bytes().is_empty()
        && Fingerprint::read(&cur.file).is_ok_and(|now| !cur.fingerprint.continues_in(&now))
}

/// Opens a regular file for reading: **every file the follower reads is opened here**.
/// Through [`crate::fsread::open_regular`]: a FIFO cannot block the open, anything but a regular
/// file is refused.
pub(super) fn open_file(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    crate::fsread::open_regular(path).map_err(|e| match e {
        crate::fsread::FileError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })
}

/// Starts reading a file found at the path. With `tail`, the offset is set to the last `tail`
/// bytes; the flag says the first line read is partial and must be dropped.
fn start_reading(found: Found, tail: Option<u64>) -> io::Result<(Current, bool)> {
    let Found { file, path, id, .. } = found;
    let size = file.metadata()?.len();
    let fingerprint = Fingerprint::read(&file)?;
    let offset = tail.map_or(0, |max| size.saturating_sub(max));
    let mut mid_line = false;
    if offset > 0 {
        let mut before = [0u8; 1];
        mid_line = file.read_at(&mut before, offset - 1)? == 1 && before[0] != b'\n';
    }
    let current = Current { id, file, path, offset, fingerprint, known_size: size };
    Ok((current, mid_line))
}

/// What the pattern names now: the path itself, or a glob's newest regular file (by mtime).
pub(super) fn resolve(pattern: &str) -> io::Result<Option<(PathBuf, std::fs::Metadata)>> {
    if !is_glob(pattern) {
        return match std::fs::metadata(pattern) {
            Ok(meta) => Ok(Some((PathBuf::from(pattern), meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
    }
    let paths = glob::glob(pattern).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let newest = paths
        .flatten()
        .filter_map(|p| std::fs::metadata(&p).ok().filter(|m| m.is_file()).map(|m| (p, m)))
        .max_by_key(|(_, m)| m.modified().unwrap_or(SystemTime::UNIX_EPOCH));
    Ok(newest)
}

/// Whether a configured path is a glob pattern.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The directories a tailer watches: the pattern's directory and the real directory of the file
/// being read (they differ when the path is a symlink into another directory).
struct DirWatch {
    watcher: RecommendedWatcher,
    watched: Vec<PathBuf>,
    /// The file the watch list was computed for (recomputed only when it changes).
    for_file: Option<PathBuf>,
    /// Set once the pattern's directory is watched (it may not exist at start).
    ready: bool,
}

impl DirWatch {
    fn update(&mut self, pattern: &str, current: Option<&Path>) {
        if self.ready && self.for_file.as_deref() == current {
            return;
        }
        let mut wanted: Vec<PathBuf> = Vec::new();
        let static_dir = Path::new(pattern).parent().filter(|d| !is_glob(&d.to_string_lossy()));
        wanted.extend(static_dir.map(Path::to_path_buf));
        if let Some(file) = current {
            wanted.extend(file.parent().map(Path::to_path_buf));
            if let Some(real) = std::fs::canonicalize(file).ok().and_then(|r| r.parent().map(Path::to_path_buf)) {
                wanted.push(real);
            }
        }
        wanted.sort();
        wanted.dedup();
        for old in self.watched.iter().filter(|d| !wanted.contains(d)) {
            let _ = self.watcher.unwatch(old);
        }
        let mut watched = Vec::new();
        for dir in wanted {
            if self.watched.contains(&dir) || self.watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok() {
                watched.push(dir);
            }
        }
        self.ready = static_dir.is_none_or(|d| watched.iter().any(|w| w == d));
        self.watched = watched;
        self.for_file = current.map(Path::to_path_buf);
    }
}

/// A tailer running on its own thread.
pub struct TailThread {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    watcher_paused: Arc<AtomicBool>,
    wake: SyncSender<()>,
    join: JoinHandle<()>,
}

impl TailThread {
    /// Starts following `source` (a file source) on a new thread named after it.
    pub fn start(source: Arc<LogSource>) -> io::Result<Self> {
        let mut tailer = Tailer::new(source.clone())?;
        // Capacity 1: a pending wake-up covers any number of events (each step reads everything).
        let (wake, woken) = sync_channel::<()>(1);
        let events = wake.clone();
        let discovery = tailer.discovery.clone();
        let mut prioritized = false;
        let name = source.name.clone();
        let mut sorter = EventSorter::new(&tailer.pattern);
        let watcher_paused = Arc::new(AtomicBool::new(false));
        let pausing_watcher = watcher_paused.clone();
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Test hook: the events wait in the kernel's queue, in order.
            while pausing_watcher.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !prioritized {
                prioritized = true;
                // A file that lives a few ms must be opened before it is deleted, and a size
                // noted before a truncation: ask for a higher priority for the watcher thread
                // (Linux: `who = 0` is the calling thread). Without CAP_SYS_NICE this fails and
                // the default stays; the log says which.
                match rustix::process::setpriority_process(None, WATCHER_NICE) {
                    Ok(()) => tracing::debug!(source = %name, nice = WATCHER_NICE, "file watcher thread prioritized"),
                    Err(e) => tracing::info!(source = %name,
                        "file watcher thread at the default priority (nice {WATCHER_NICE} refused: {e}; needs CAP_SYS_NICE)"),
                }
            }
            discovery.on_event(sorter.sort(&event));
            let _ = events.try_send(());
        }) {
            Ok(watcher) => {
                tailer.watch = Some(DirWatch { watcher, watched: Vec::new(), for_file: None, ready: false });
            }
            Err(e) => tracing::warn!(source = %source.name, "no file events ({e}); polling every {POLL_INTERVAL:?}"),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let (stopping, pausing) = (stop.clone(), paused.clone());
        let join = std::thread::Builder::new()
            .name(format!("tail-{}", source.name))
            .spawn(move || run(tailer, &woken, &stopping, &pausing))?;
        Ok(Self { stop, paused, watcher_paused, wake, join })
    }

    /// Test hook: a paused watcher thread handles no file event (they wait in the kernel's
    /// queue, in order), as a starved one: with the follower paused too, nothing looks at the
    /// path. Resume the watcher before the follower (the follower's change of the watched
    /// directories waits for the watcher thread).
    pub fn pause_watcher(&self, paused: bool) {
        self.watcher_paused.store(paused, Ordering::Release);
    }

    /// Test hook: a paused follower reads nothing (the watcher still opens the files it finds),
    /// to starve it across rotations on purpose.
    pub fn set_paused(&self, paused: bool) {
        // Only a change wakes the follower: a caller polling with `set_paused(false)` must not
        // flood it with wake-ups, which it would take for file events and never look itself.
        if self.paused.swap(paused, Ordering::AcqRel) != paused {
            let _ = self.wake.try_send(());
        }
    }

    /// Stops the thread after a last read, and waits for it.
    pub fn stop(self) {
        self.watcher_paused.store(false, Ordering::Release);
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        if self.join.join().is_err() {
            tracing::error!("a log tailer thread panicked");
        }
    }
}

fn run(mut tailer: Tailer, woken: &Receiver<()>, stop: &AtomicBool, paused: &AtomicBool) {
    // The follower looks at the path itself at start, without file events, and after a poll
    // interval without events (events can be lost; a lost one ends in a rescan event, on which
    // the watcher looks); on an event the watcher thread has looked. While events come, the
    // follower never holds the look's lock, so the prioritized watcher never waits for it.
    let mut by_event = false;
    // A wake-up that ends a pause is not a file event: the first pass after one looks itself
    // (the test hook's wake-ups would otherwise keep the follower from ever looking).
    let mut was_paused = false;
    // And it looks at least every poll interval even while events keep coming (a fast writer's
    // events never leave it a quiet interval; a file the watcher did not queue would wait).
    let mut last_look = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let is_paused = paused.load(Ordering::Acquire);
        if !is_paused {
            let look = was_paused || !by_event || tailer.watch.is_none() || last_look.elapsed() >= POLL_INTERVAL;
            if look {
                last_look = Instant::now();
            }
            tailer.step_looking(look);
        }
        was_paused = is_paused;
        match woken.recv_timeout(POLL_INTERVAL) {
            Ok(()) => by_event = true,
            Err(RecvTimeoutError::Timeout) => by_event = false,
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tailer.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::discover::Point;
    use crate::logs::ring::RingLimits;

    /// Lines `seqs`, 32 bytes each with the newline.
    fn lines(seqs: std::ops::Range<u64>) -> String {
        seqs.map(|seq| format!("{:.<31}\n", format!("seq={seq:09} "))).collect()
    }

    fn seqs(source: &LogSource) -> Vec<u64> {
        let page = source.ring.read(
            crate::logs::ring::Cursor::After(0),
            crate::logs::ring::ReadLimits { lines: usize::MAX, bytes: usize::MAX },
            None,
        );
        page.iter().map(|l| std::str::from_utf8(&l.text[4..13]).unwrap().parse().unwrap()).collect()
    }

    /// A fresh temp directory holding `app.log` with `content`.
    fn temp_log(tag: &str, content: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("leakwatch-tail-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.log");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    /// A file source named `app` following `path`, its ring capped at `max_lines`.
    fn file_source(path: &Path, max_lines: usize) -> LogSource {
        let limits = RingLimits { max_lines, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 1 };
        LogSource::new("app", SourceKind::File { pattern: path.display().to_string() }, limits)
    }

    /// `path` opened and read from its start, as the follower's current file.
    fn reading_from_start(path: &Path) -> Current {
        let (file, meta) = open_file(path).unwrap();
        let found = Found {
            file: Arc::new(file),
            path: path.to_path_buf(),
            id: FileId::of(&meta),
            seen: 0,
            truncated: 0,
            truncations: 0,
        };
        start_reading(found, None).unwrap().0
    }

    /// A follower reading `app.log` (lines 0..100) in a new directory, and that file (still
    /// open) renamed to `app.log.2`: the path now names file S (lines 100..200).
    fn rotated_once(tag: &str) -> (PathBuf, PathBuf, Arc<LogSource>, Tailer) {
        let (dir, path) = temp_log(tag, &lines(0..100));
        let source = Arc::new(file_source(&path, 1000));
        let mut tailer = Tailer::new(source.clone()).unwrap();
        tailer.step();
        assert_eq!(seqs(&source), (0..100).collect::<Vec<_>>());
        std::fs::rename(&path, dir.join("app.log.2")).unwrap();
        std::fs::write(&path, lines(100..200)).unwrap();
        (dir, path, source, tailer)
    }

    /// The race behind the starved-rotation test's spurious loss (issue 17), made deterministic:
    /// the look at the path finds file S, and before it is opened S is renamed to `app.log.1`
    /// and a new file takes the path. The look used to open the new file with S's size (a
    /// "truncation" of S's bytes, counted lost) and read S later as a sibling all the same.
    #[test]
    fn a_file_renamed_between_the_look_and_the_open_is_read_and_not_counted_lost() {
        let (dir, _, source, mut tailer) = rotated_once("renamed-at-open");
        let renamed = dir.join("app.log.1");
        tailer.discovery.hook_at(Point::PathOpened, move |p| {
            std::fs::rename(p, &renamed).unwrap();
            std::fs::write(p, lines(200..250)).unwrap();
        });
        tailer.step();
        let stats = source.stats();
        assert_eq!((stats.lost_lines, stats.lost_bytes, stats.truncations), (0, 0, 0), "{stats:?}");
        assert_eq!(seqs(&source), (0..250).collect::<Vec<_>>(), "every line once, in order");
        assert_eq!(stats.rotations, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The same, with the open between the rename and the new file's creation (`ENOENT`): the
    /// file was counted lost as if deleted.
    #[test]
    fn a_file_renamed_before_its_open_and_no_new_file_yet_is_read_and_not_counted_lost() {
        let (dir, path, source, mut tailer) = rotated_once("renamed-no-file");
        let renamed = dir.join("app.log.1");
        tailer.discovery.hook_at(Point::PathOpened, move |p| std::fs::rename(p, &renamed).unwrap());
        tailer.step();
        std::fs::write(&path, lines(200..250)).unwrap();
        tailer.step();
        let stats = source.stats();
        assert_eq!((stats.lost_lines, stats.lost_bytes), (0, 0), "{stats:?}");
        assert_eq!(seqs(&source), (0..250).collect::<Vec<_>>(), "every line once, in order");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file deleted between the look and the open is lost for everyone: counted, exactly here.
    #[test]
    fn a_file_deleted_between_the_look_and_the_open_is_counted_lost() {
        let (dir, path, source, mut tailer) = rotated_once("deleted-at-open");
        tailer.discovery.hook_at(Point::PathOpened, |p| std::fs::remove_file(p).unwrap());
        tailer.step();
        std::fs::write(&path, lines(200..250)).unwrap();
        tailer.step();
        let stats = source.stats();
        assert_eq!((stats.lost_lines, stats.lost_bytes), (100, 100 * 32), "{stats:?}");
        assert_eq!(seqs(&source), (0..100).chain(200..250).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A rotated sibling never seen at the path, shifted by the next rotation between the
    /// listing of siblings and its open (`app.log.1` → `app.log.2`): it was skipped, and once the
    /// path's newer file was known it was older than the floor, so never read and never counted
    /// (the starved-rotation test then waited forever for one rotation more).
    #[test]
    fn a_sibling_shifted_between_the_listing_and_its_open_is_still_read() {
        let (dir, path, source, mut tailer) = rotated_once("sibling-shifted");
        // S goes to `app.log.1` (A, already read, to `app.log.3`) before anyone looked: only the
        // sibling listing can find it.
        std::fs::rename(dir.join("app.log.2"), dir.join("app.log.3")).unwrap();
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        std::fs::write(&path, lines(200..250)).unwrap();
        tailer.discovery.hook_at(Point::SiblingsListed, |dir| {
            std::fs::rename(dir.join("app.log.3"), dir.join("app.log.4")).unwrap();
            std::fs::rename(dir.join("app.log.1"), dir.join("app.log.2")).unwrap();
        });
        tailer.step();
        let stats = source.stats();
        assert_eq!((stats.lost_lines, stats.rotations), (0, 2), "{stats:?}");
        assert_eq!(seqs(&source), (0..250).collect::<Vec<_>>(), "every line once, in order");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A follower that read `app.log` (lines 0..100) in a new directory, counting files from
    /// directory events from now on (as once the directory is watched).
    fn counting(tag: &str) -> (PathBuf, PathBuf, Arc<LogSource>, Tailer) {
        let (dir, path) = temp_log(tag, &lines(0..100));
        let source = Arc::new(file_source(&path, 1000));
        let mut tailer = Tailer::new(source.clone()).unwrap();
        tailer.step();
        tailer.discovery.count_files();
        (dir, path, source, tailer)
    }

    /// The watcher, starved, handles the queued events of `n` files that appeared at the path.
    fn appeared(tailer: &Tailer, n: usize) {
        (0..n).for_each(|_| tailer.discovery.on_event(EventKind::Appeared));
    }

    /// `app.log.1`-only rotation three times before anyone looked: the second file was renamed
    /// over by the third and never opened. Its bytes are unknown; the file is counted from the
    /// three `IN_CREATE` events that come in after the fact, and nothing else is.
    #[test]
    fn a_file_renamed_over_before_any_look_is_counted_unread() {
        let (dir, path, source, mut tailer) = counting("renamed-over");
        for k in 1..=3 {
            std::fs::rename(&path, dir.join("app.log.1")).unwrap();
            std::fs::write(&path, lines(k * 100..k * 100 + 100)).unwrap();
        }
        appeared(&tailer, 3);
        tailer.step();
        let stats = source.stats();
        assert_eq!(stats.unknown_losses.rotation, 1, "{stats:?}");
        assert_eq!((stats.lost_lines, stats.lost_bytes), (0, 0), "its size was never seen: {stats:?}");
        assert_eq!(seqs(&source), (0..100).chain(200..400).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Delete + recreate twice before any look: the first new file is gone unopened (the next one
    /// may reuse its inode, so no identity tells them apart; the two events do).
    #[test]
    fn a_file_deleted_before_any_look_is_counted_unread_even_when_its_inode_is_reused() {
        let (dir, path, source, mut tailer) = counting("deleted-unseen");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, lines(100..200)).unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, lines(200..300)).unwrap();
        let reused = std::fs::metadata(&path).unwrap().ino() == ino;
        appeared(&tailer, 2);
        tailer.step();
        let stats = source.stats();
        assert_eq!(stats.unknown_losses.rotation, 1, "inode reused: {reused}; {stats:?}");
        assert_eq!(seqs(&source), (0..100).chain(200..300).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// No false counts: a file renamed between the look and its open, found beside the path by
    /// its identity and read, is accounted for; so is every file a look opened before its event
    /// was handled.
    #[test]
    fn a_file_opened_late_by_its_identity_is_not_counted_unread() {
        let (dir, path, source, mut tailer) = counting("late-open");
        std::fs::rename(&path, dir.join("app.log.2")).unwrap();
        std::fs::write(&path, lines(100..200)).unwrap();
        let renamed = dir.join("app.log.1");
        tailer.discovery.hook_at(Point::PathOpened, move |p| {
            std::fs::rename(p, &renamed).unwrap();
            std::fs::write(p, lines(200..250)).unwrap();
        });
        appeared(&tailer, 1); // S's event: its look meets the rename
        tailer.step();
        appeared(&tailer, 1); // the new file's event, handled after the look that opened it
        let stats = source.stats();
        assert_eq!((stats.unknown_losses, stats.lost_lines), (Default::default(), 0), "{stats:?}");
        assert_eq!(seqs(&source), (0..250).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A look that finds the path missing (mid-rotation) has not listed the rotated siblings: it
    /// settles nothing, or the file waiting at `app.log.1` would be counted, then read.
    #[test]
    fn a_look_at_a_missing_path_counts_nothing_unread() {
        let (dir, path, source, mut tailer) = counting("missing-path");
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        std::fs::write(&path, lines(100..200)).unwrap();
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        appeared(&tailer, 1);
        assert_eq!(source.stats().unknown_losses.rotation, 0);
        std::fs::write(&path, lines(200..300)).unwrap();
        appeared(&tailer, 1);
        tailer.step();
        let stats = source.stats();
        assert_eq!(stats.unknown_losses.rotation, 0, "{stats:?}");
        assert_eq!(seqs(&source), (0..300).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The garbled line of the back-to-back truncation runs (issue 17): a reader can see half a
    /// line (a write straddling a page is visible page by page); the file is truncated before
    /// the rest is read. That half was stored as a whole line, a line nobody wrote; it is stored
    /// cut now, and the new file's lines follow intact.
    #[test]
    fn an_unfinished_line_at_a_truncation_is_stored_cut() {
        let (dir, path) = temp_log("cut-at-trunc", &(lines(0..10) + "seq=000000010 half"));
        let source = Arc::new(file_source(&path, 1000));
        let mut tailer = Tailer::new(source.clone()).unwrap();
        tailer.step();
        assert_eq!(source.stats().ring.lines, 10, "the half line waits for its end");
        // `> app.log` (no copy), and the next generation, shorter than the offset.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        std::fs::write(&path, lines(100..105)).unwrap();
        tailer.step();
        let page = source.ring.read(
            crate::logs::ring::Cursor::After(0),
            crate::logs::ring::ReadLimits { lines: usize::MAX, bytes: usize::MAX },
            None,
        );
        let got: Vec<(String, bool)> =
            page.iter().map(|l| (String::from_utf8_lossy(l.text).into_owned(), l.cut)).collect();
        let mut want: Vec<(String, bool)> = lines(0..10).lines().map(|l| (l.to_owned(), false)).collect();
        want.push((format!("seq=000000010 half{}", crate::logs::ring::CUT_MARKER), true));
        want.extend(lines(100..105).lines().map(|l| (l.to_owned(), false)));
        assert_eq!(got, want);
        assert_eq!(source.stats().truncations, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The garbled line of a loaded back-to-back copytruncate run (issue 17): a file truncated
    /// to empty has an empty fingerprint, which matched anything. Taken again from the file
    /// after a read, it was the next generation's when the file had been truncated and
    /// rewritten meanwhile; that generation, read from the old offset, joined its mid-line bytes
    /// to the unfinished line. The fingerprint is completed from the bytes read now.
    #[test]
    fn a_fingerprint_completed_from_the_bytes_read_catches_the_next_rewrite() {
        let (dir, path) = temp_log("empty-print", "");
        let source = file_source(&path, 100);
        let (mut splitter, mut buf) = (LineSplitter::new(1024), vec![0; READ_CHUNK]);
        let mut cur = reading_from_start(&path);
        assert!(cur.fingerprint.bytes().is_empty());
        std::fs::write(&path, "seq=1 gen one\nseq=2 gen o").unwrap();
        assert_eq!(read_to_eof(&mut cur, &mut buf, &source, &mut splitter).unwrap(), 25);
        assert_eq!(cur.fingerprint.bytes(), b"seq=1 gen one\nseq=2 gen o");
        // Truncated and rewritten past the offset before the next read.
        std::fs::write(&path, "seq=3 gen two, longer than generation one\n").unwrap();
        assert_eq!(read_to_eof(&mut cur, &mut buf, &source, &mut splitter).unwrap(), 0, "nothing from mid-line");
        assert_eq!(source.stats().ring.lines, 1, "only seq=1; seq=2 waits, never joined to gen two");
        assert!(rewritten(&cur), "the truncation check sees the rewrite");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bytes_of_a_file_rewritten_past_the_offset_are_left_for_the_truncation_check() {
        let (dir, path) = temp_log("rewrite", "seq=1 old\nseq=2 old\n");
        let source = file_source(&path, 100);
        let (mut splitter, mut buf) = (LineSplitter::new(1024), vec![0; READ_CHUNK]);
        let mut cur = reading_from_start(&path);
        assert_eq!(read_to_eof(&mut cur, &mut buf, &source, &mut splitter).unwrap(), 20);
        // copytruncate, and the writer went on past the old offset before the next read.
        std::fs::write(&path, "seq=3 new line, longer than the old file\n").unwrap();
        assert_eq!(read_to_eof(&mut cur, &mut buf, &source, &mut splitter).unwrap(), 0, "nothing from mid-line");
        assert_eq!(cur.offset, 20, "the old offset, for the recovery from the copy");
        assert_eq!(source.stats().ring.lines, 2, "only the old file's lines");
        assert!(rewritten(&cur), "the truncation check sees the rewrite");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
