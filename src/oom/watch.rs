//! The exit watcher: one thread blocked in `poll(2)` on
//!
//! - a pidfd per target process (`pidfd_open`), readable the moment the process exits;
//! - an inotify watch on the target cgroup's v2 `memory.events` (the kernel notifies changes);
//! - a pipe that wakes it for a new watch set (and closes to stop it);
//! - while the target is near its limit, a timeout of [`NEAR_LIMIT_POLL`]: the counter is read
//!   that often, so a kill is usually seen between the kernel's decision and the victim's exit
//!   (v1 has no unprivileged notification; the exit of a large process takes milliseconds).
//!
//! The cgroup's counter file (`memory.events` on v2, `memory.oom_control` on v1) is opened in
//! advance and kept open while the target lives: when a process exits it is read at once, before a
//! container runtime removes the cgroup (it does within milliseconds; after `rmdir` the open file
//! answers `ENODEV`). Together with `/proc/vmstat` `oom_kill` before and after, that reading goes
//! to the sampler as an [`Event`]; the sampler's ledger decides what it counts.
//!
//! A sidecar needs no privilege for any of this: pidfds of processes in a shared PID namespace,
//! read-only cgroup files, inotify. (v1's `cgroup.event_control` would need write access.)

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::inotify;

use super::ledger::CgroupKey;
use crate::parse::cgroup::flat_keyed;
use crate::snapshot::CgroupVersion;

/// Events kept for the sampler before the watcher drops new ones (counted).
pub(crate) const MAX_PENDING_EVENTS: usize = 256;

/// Most pidfds held at once (the sampler caps the group anyway).
pub(crate) const MAX_PIDFDS: usize = 256;

/// How long a process the sampler no longer finds stays watched: a dying process loses its
/// command line (its memory is torn down) before it becomes a zombie and its pidfd fires.
pub(crate) const LEAVING_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the counter is read while the target is near its limit.
pub(crate) const NEAR_LIMIT_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// What to watch: the target's processes (pid, start time in ticks) and its cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WatchSet {
    /// Processes to watch for their exit; empty when pidfds cannot be used (another pid
    /// namespace's `/proc`, a fixture tree).
    pub(crate) processes: Vec<(i32, u64)>,
    /// The cgroup whose counter is read on exit (and watched on v2).
    pub(crate) cgroup: Option<WatchedCgroup>,
    /// `/proc/vmstat` to read around an exit (the host-wide `oom_kill`).
    pub(crate) vmstat: Option<PathBuf>,
    /// The target is near its limit: read the counter every [`NEAR_LIMIT_POLL`].
    pub(crate) near_limit: bool,
}

/// A located cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatchedCgroup {
    /// Its directory's identity.
    pub(crate) key: CgroupKey,
    /// Hierarchy version.
    pub(crate) version: CgroupVersion,
    /// The directory holding the `memory.*` files.
    pub(crate) dir: PathBuf,
}

impl WatchedCgroup {
    /// The file holding `oom_kill`.
    pub(crate) fn counter_file(&self) -> PathBuf {
        self.dir.join(match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        })
    }
}

/// What the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A watched process exited.
    Exited {
        /// The process.
        pid: i32,
        /// The cgroup it was in.
        cgroup: Option<CgroupKey>,
        /// `oom_kill` read at once; `None` when unreadable (the cgroup was already removed).
        counter: Option<u64>,
        /// Host `oom_kill` at the last watch update and right after the exit.
        vmstat: Option<(u64, u64)>,
    },
    /// The counter changed: notified (v2), or read by the near-limit poll.
    Changed {
        /// The cgroup.
        cgroup: CgroupKey,
        /// `oom_kill` now.
        counter: u64,
        /// Whether the kernel notified it (else the near-limit poll read it).
        notified: bool,
    },
}

/// The handle: give it watch sets, take its events. Dropping it stops the thread.
pub(crate) struct Watcher {
    sets: mpsc::Sender<WatchSet>,
    events: mpsc::Receiver<Event>,
    wake: Option<OwnedFd>,
    dropped: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("dropped", &self.dropped()).finish()
    }
}

impl Watcher {
    /// Starts the thread; `notify` is called after every batch of events.
    pub(crate) fn start(notify: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Watcher> {
        let (set_tx, set_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::sync_channel(MAX_PENDING_EVENTS);
        let (wake_rx, wake_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let dropped = Arc::new(AtomicU64::new(0));
        let state = Thread {
            sets: set_rx,
            events: event_tx,
            wake: wake_rx,
            inotify,
            watch: None,
            pidfds: Vec::new(),
            counter: None,
            last_counter: None,
            near_limit: false,
            vmstat_path: None,
            vmstat_before: None,
            vmstat_next: None,
            dropped: dropped.clone(),
            notify,
        };
        let thread = std::thread::Builder::new().name("leakwatch-oom".into()).spawn(move || state.run())?;
        Ok(Watcher { sets: set_tx, events: event_rx, wake: Some(wake_tx), dropped, thread: Some(thread) })
    }

    /// Replaces what is watched.
    pub(crate) fn set(&self, set: WatchSet) {
        if self.sets.send(set).is_ok() {
            if let Some(fd) = &self.wake {
                let _ = rustix::io::write(fd, &[1]);
            }
        }
    }

    /// Events since the last call, oldest first.
    pub(crate) fn drain(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Events dropped because the sampler did not take them in time.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Closing the pipe's write end ends the thread's poll with EOF.
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Thread {
    sets: mpsc::Receiver<WatchSet>,
    events: mpsc::SyncSender<Event>,
    wake: OwnedFd,
    inotify: OwnedFd,
    /// The inotify watch descriptor on the v2 counter file.
    watch: Option<i32>,
    /// Watched processes; a deadline marks one the last watch set no longer named (kept for
    /// [`LEAVING_GRACE`]).
    pidfds: Vec<(i32, OwnedFd, Option<std::time::Instant>)>,
    counter: Option<(WatchedCgroup, File)>,
    /// The counter as last read (the near-limit poll reports changes only).
    last_counter: Option<u64>,
    near_limit: bool,
    vmstat_path: Option<PathBuf>,
    vmstat_before: Option<u64>,
    /// The host counter at the last set (the baseline after the next one).
    vmstat_next: Option<u64>,
    dropped: Arc<AtomicU64>,
    notify: Arc<dyn Fn() + Send + Sync>,
}

impl Thread {
    fn run(mut self) {
        loop {
            let (wake, changed, exited) = match self.wait() {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::error!("the OOM exit watcher stops: poll failed: {e}");
                    return;
                }
            };
            let mut sent = false;
            // Exits first: the counter must be read before the cgroup goes away.
            for index in exited.into_iter().rev() {
                let (pid, _, _) = self.pidfds.swap_remove(index);
                sent |= self.exited(pid);
            }
            let now = std::time::Instant::now();
            self.pidfds.retain(|(_, _, leaving)| leaving.is_none_or(|deadline| deadline > now));
            if changed {
                drain_inotify(&self.inotify);
            }
            if changed || self.near_limit {
                if let Some((c, file)) = &self.counter {
                    let key = c.key;
                    match read_oom_kill(file) {
                        // Notified: always passed on (the ledger dedupes); polled: only a change.
                        Some(counter) if changed || self.last_counter.is_some_and(|last| last != counter) => {
                            self.last_counter = Some(counter);
                            sent |= self.send(Event::Changed { cgroup: key, counter, notified: changed });
                        }
                        Some(counter) => self.last_counter = Some(counter),
                        None => {}
                    }
                }
            }
            if sent {
                (self.notify)();
            }
            if wake {
                let mut buf = [0u8; 64];
                match rustix::io::read(&self.wake, &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e == rustix::io::Errno::INTR => {}
                    Err(e) => {
                        tracing::error!("the OOM exit watcher stops: {e}");
                        return;
                    }
                }
                if let Some(set) = self.sets.try_iter().last() {
                    if self.apply(set) {
                        (self.notify)();
                    }
                }
            }
        }
    }

    /// Blocks until something is ready: (wake pipe, counter file changed, indexes of exited pidfds).
    fn wait(&self) -> rustix::io::Result<(bool, bool, Vec<usize>)> {
        let mut fds = Vec::with_capacity(2 + self.pidfds.len());
        fds.push(PollFd::new(&self.wake, PollFlags::IN));
        fds.push(PollFd::new(&self.inotify, PollFlags::IN));
        fds.extend(self.pidfds.iter().map(|(_, fd, _)| PollFd::new(fd, PollFlags::IN)));
        let near = Timespec { tv_sec: 0, tv_nsec: NEAR_LIMIT_POLL.as_nanos() as _ };
        // Wake up now and then to let leaving processes go after their grace.
        let leaving = Timespec { tv_sec: 1, tv_nsec: 0 };
        let timeout = if self.near_limit && self.counter.is_some() {
            Some(&near)
        } else if self.pidfds.iter().any(|(_, _, l)| l.is_some()) {
            Some(&leaving)
        } else {
            None
        };
        loop {
            match poll(&mut fds, timeout) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
        let ready = |f: &PollFd<'_>| !f.revents().is_empty();
        let exited = fds[2..].iter().enumerate().filter(|(_, f)| ready(f)).map(|(i, _)| i).collect();
        Ok((ready(&fds[0]), ready(&fds[1]), exited))
    }

    /// Reads the counter (and the host's) for a process that exited and reports it.
    fn exited(&mut self, pid: i32) -> bool {
        let counter = self.counter.as_ref().and_then(|(_, file)| read_oom_kill(file));
        self.last_counter = counter.or(self.last_counter);
        let vmstat = self.vmstat_before.zip(self.vmstat_path.as_deref().and_then(read_vmstat_oom_kill));
        let cgroup = self.counter.as_ref().map(|(c, _)| c.key);
        self.send(Event::Exited { pid, cgroup, counter, vmstat })
    }

    fn send(&self, event: Event) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Takes a new watch set; returns whether it reported an exit. A process the set no longer
    /// names stays watched for [`LEAVING_GRACE`]: the pass may have missed it because it is dying
    /// (an exiting process's command line reads empty before its pidfd fires); one that already
    /// exited is reported now, with the old counter file and host baseline.
    fn apply(&mut self, set: WatchSet) -> bool {
        let mut sent = false;
        let deadline = std::time::Instant::now() + LEAVING_GRACE;
        let mut index = 0;
        while index < self.pidfds.len() {
            let (pid, ref fd, ref mut leaving) = self.pidfds[index];
            if set.processes.iter().any(|(p, _)| *p == pid) {
                *leaving = None;
                index += 1;
                continue;
            }
            leaving.get_or_insert(deadline);
            let mut one = [PollFd::new(fd, PollFlags::IN)];
            let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
            if poll(&mut one, Some(&zero)).is_ok_and(|n| n > 0) {
                self.pidfds.swap_remove(index);
                sent |= self.exited(pid);
            } else {
                index += 1;
            }
        }
        self.vmstat_path = set.vmstat.clone();
        self.near_limit = set.near_limit;
        // The host baseline lags one set behind, so a kill between a pass and the victim's exit
        // is still above it, and stays put while a process the pass lost may still be dying.
        if self.pidfds.iter().all(|(.., leaving)| leaving.is_none()) {
            let now = set.vmstat.as_deref().and_then(read_vmstat_oom_kill);
            self.vmstat_before = self.vmstat_next.or(now);
            self.vmstat_next = now;
        }
        for &(pid, start) in set.processes.iter().take(MAX_PIDFDS) {
            if self.pidfds.iter().any(|(p, _, _)| *p == pid) {
                continue;
            }
            if self.pidfds.len() >= MAX_PIDFDS {
                break;
            }
            match open_pidfd(pid, start) {
                Ok(Some(fd)) => self.pidfds.push((pid, fd, None)),
                Ok(None) => tracing::debug!(pid, "not watching the exit: the pid now belongs to another process"),
                Err(e) => tracing::debug!(pid, "cannot watch the exit: {e}"),
            }
        }
        if self.counter.as_ref().map(|(c, _)| c) == set.cgroup.as_ref() {
            return sent;
        }
        // A pass that found no process names no cgroup; a process still dying in the old one
        // must have its counter read there at its exit, not be left to the host counter.
        if set.cgroup.is_none() && self.pidfds.iter().any(|(.., leaving)| leaving.is_some()) {
            return sent;
        }
        if let Some(wd) = self.watch.take() {
            let _ = inotify::remove_watch(&self.inotify, wd);
        }
        self.counter = None;
        self.last_counter = None;
        let Some(cgroup) = set.cgroup else { return sent };
        let path = cgroup.counter_file();
        match File::open(&path) {
            Ok(file) => {
                if cgroup.version == CgroupVersion::V2 {
                    match inotify::add_watch(&self.inotify, &path, inotify::WatchFlags::MODIFY) {
                        Ok(wd) => self.watch = Some(wd),
                        Err(e) => tracing::warn!(path = %path.display(), "cannot watch the OOM counter: {e}"),
                    }
                }
                self.last_counter = read_oom_kill(&file);
                self.counter = Some((cgroup, file));
            }
            Err(e) => tracing::warn!(path = %path.display(), "cannot open the OOM counter: {e}"),
        }
        sent
    }
}

/// A pidfd for `pid` if it is still the process that started at `start` ticks (checked after
/// opening, so the fd cannot refer to a later process that reused the pid).
fn open_pidfd(pid: i32, start: u64) -> std::io::Result<Option<OwnedFd>> {
    let Some(p) = rustix::process::Pid::from_raw(pid) else { return Ok(None) };
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())?;
    let stat = std::fs::read(crate::roots::Roots::default().pid(pid).join("stat"))?;
    let same = crate::parse::stat::brief(&stat).is_ok_and(|s| s.start_ticks == start);
    Ok(same.then_some(fd))
}

fn read_oom_kill(file: &File) -> Option<u64> {
    let mut buf = [0u8; 1024];
    let n = file.read_at(&mut buf, 0).ok()?;
    flat_keyed(&buf[..n]).ok()?.get("oom_kill")
}

/// `oom_kill` of `/proc/vmstat` (Linux ≥ 4.13).
pub(crate) fn read_vmstat_oom_kill(path: &Path) -> Option<u64> {
    let text = std::fs::read(path).ok()?;
    text.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(b"oom_kill ")?;
        std::str::from_utf8(rest).ok()?.trim().parse().ok()
    })
}

fn drain_inotify(fd: &impl AsFd) {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    while reader.next().is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("leakwatch-unit-watch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn next_event(w: &Watcher) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = w.drain().into_iter().next() {
                return e;
            }
            assert!(Instant::now() < deadline, "no event from the watcher");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until this process holds an open file at `path` (the watcher opened it), then a
    /// moment more (an inotify watch is added right after the open).
    fn wait_open(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let fds = crate::roots::Roots::default().proc_file("self/fd");
        while !std::fs::read_dir(&fds).unwrap().flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path))
        {
            assert!(Instant::now() < deadline, "the watcher did not open {}", path.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    fn start_ticks(pid: i32) -> u64 {
        let stat = std::fs::read(crate::roots::Roots::default().pid(pid).join("stat")).unwrap();
        crate::parse::stat::brief(&stat).unwrap().start_ticks
    }

    #[test]
    fn an_exit_is_seen_with_the_counter_read_from_the_file_opened_before() {
        let dir = temp_dir("exit");
        std::fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        let woken = Arc::new(AtomicU64::new(0));
        let count = woken.clone();
        let w = Watcher::start(Arc::new(move || {
            count.fetch_add(1, Ordering::Relaxed);
        }))
        .unwrap();
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id() as i32;
        let key = CgroupKey { dev: 1, ino: 2 };
        w.set(WatchSet {
            processes: vec![(pid, start_ticks(pid))],
            cgroup: Some(WatchedCgroup { key, version: CgroupVersion::V1, dir: dir.clone() }),
            vmstat: None,
            near_limit: false,
        });
        // Let the watcher open the pidfd and the counter, then move the file away: the open file
        // is what is read at the exit.
        wait_open(&dir.join("memory.oom_control"));
        std::fs::rename(dir.join("memory.oom_control"), dir.join("gone")).unwrap();
        std::fs::write(dir.join("gone"), "oom_kill 3\n").unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(next_event(&w), Event::Exited { pid, cgroup: Some(key), counter: Some(3), vmstat: None });
        assert!(woken.load(Ordering::Relaxed) >= 1, "the sampler was woken");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_process_left_out_of_a_set_without_a_cgroup_is_read_from_its_old_cgroup_at_its_exit() {
        let dir = temp_dir("leaving");
        std::fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").unwrap();
        let w = Watcher::start(Arc::new(|| {})).unwrap();
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id() as i32;
        let key = CgroupKey { dev: 1, ino: 3 };
        let cgroup = Some(WatchedCgroup { key, version: CgroupVersion::V1, dir: dir.clone() });
        w.set(WatchSet { processes: vec![(pid, start_ticks(pid))], cgroup, vmstat: None, near_limit: false });
        wait_open(&dir.join("memory.oom_control"));
        // The pass no longer finds the dying process (its command line reads empty) and so names
        // no cgroup; the kill is counted before the process becomes a zombie.
        w.set(WatchSet::default());
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n").unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(next_event(&w), Event::Exited { pid, cgroup: Some(key), counter: Some(1), vmstat: None });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pid_reused_by_another_process_is_not_watched() {
        let w = Watcher::start(Arc::new(|| {})).unwrap();
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id() as i32;
        w.set(WatchSet { processes: vec![(pid, start_ticks(pid) + 1)], cgroup: None, vmstat: None, near_limit: false });
        std::thread::sleep(Duration::from_millis(500));
        child.kill().unwrap();
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.drain().is_empty(), "a process with another start time is someone else");
    }

    #[test]
    fn a_v2_counter_change_is_notified() {
        let dir = temp_dir("v2");
        std::fs::write(dir.join("memory.events"), "max 0\noom 0\noom_kill 0\n").unwrap();
        let w = Watcher::start(Arc::new(|| {})).unwrap();
        let key = CgroupKey { dev: 1, ino: 3 };
        w.set(WatchSet {
            processes: Vec::new(),
            cgroup: Some(WatchedCgroup { key, version: CgroupVersion::V2, dir: dir.clone() }),
            vmstat: None,
            near_limit: false,
        });
        wait_open(&dir.join("memory.events"));
        std::fs::write(dir.join("memory.events"), "max 3\noom 1\noom_kill 1\n").unwrap();
        assert_eq!(next_event(&w), Event::Changed { cgroup: key, counter: 1, notified: true });
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn near_the_limit_the_counter_is_polled_and_a_change_reported_once() {
        let dir = temp_dir("poll");
        // v1: no notification; a regular file notifies nothing of what is read by the poll here.
        std::fs::write(dir.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        let w = Watcher::start(Arc::new(|| {})).unwrap();
        let key = CgroupKey { dev: 1, ino: 4 };
        w.set(WatchSet {
            processes: Vec::new(),
            cgroup: Some(WatchedCgroup { key, version: CgroupVersion::V1, dir: dir.clone() }),
            vmstat: None,
            near_limit: true,
        });
        wait_open(&dir.join("memory.oom_control"));
        std::fs::write(dir.join("memory.oom_control"), "oom_kill 1\n").unwrap();
        assert_eq!(next_event(&w), Event::Changed { cgroup: key, counter: 1, notified: false });
        std::thread::sleep(Duration::from_millis(200));
        assert!(w.drain().is_empty(), "an unchanged counter is not reported again");
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
