//! Watches the config file's *directory* (notify) and asks for a reload once events have been
//! quiet for [`QUIET`].
//!
//! Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and renaming a
//! `..data_tmp` symlink over `..data` (`config.yaml -> ..data/config.yaml`): the file's own path
//! sees no event, so the directory is watched and events naming the file or `..data` count.
//! Editors that write a temporary file and rename it over the file produce an event naming the
//! file. notify can miss events (some filesystems) or overflow, so the file is also checked
//! every [`BACKSTOP`]; the reloader compares content hashes, so checks that find nothing new
//! cost one read.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Request, Trigger};

/// Quiet time after the last event before the reload (a ConfigMap swap is several events).
pub(crate) const QUIET: Duration = Duration::from_millis(250);
/// The periodic check that catches what notify missed.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(10);
/// The name Kubernetes gives the symlink it swaps.
const K8S_DATA: &str = "..data";

/// Coalesces bursts of events into one reload: due [`QUIET`] after the last event.
#[derive(Debug, Clone, Default)]
pub(crate) struct Debouncer {
    quiet: Duration,
    due: Option<Instant>,
}

impl Debouncer {
    /// A debouncer that fires `quiet` after the last event.
    pub(crate) fn new(quiet: Duration) -> Self {
        Self { quiet, due: None }
    }

    /// An event at `now` (re)starts the quiet time.
    pub(crate) fn event(&mut self, now: Instant) {
        self.due = Some(now + self.quiet);
    }

    /// When the pending reload is due, if one is.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Whether the pending reload is due at `now`; if so it is no longer pending.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                true
            }
            _ => false,
        }
    }
}

/// Whether an event on the directory may have changed `file_name`'s content: it names the file
/// or `..data`, or names nothing (notify's rescan after an overflow).
pub(crate) fn relevant(paths: &[PathBuf], file_name: &OsString) -> bool {
    paths.is_empty() || paths.iter().any(|p| p.file_name().is_some_and(|n| n == file_name.as_os_str() || n == K8S_DATA))
}

/// Watches `path`'s directory until cancelled, sending [`Trigger::File`] requests.
pub(crate) async fn run(path: PathBuf, requests: mpsc::Sender<Request>, token: CancellationToken) {
    let (events_tx, mut events) = mpsc::channel::<()>(1);
    let _watcher = watch_dir(&path, events_tx);
    let mut debouncer = Debouncer::new(QUIET);
    let mut backstop = tokio::time::interval_at(Instant::now() + BACKSTOP, BACKSTOP);
    backstop.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let due = debouncer.due();
        tokio::select! {
            _ = token.cancelled() => break,
            Some(()) = events.recv() => {
                debouncer.event(Instant::now());
                continue;
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if !debouncer.fire(Instant::now()) {
                    continue;
                }
            }
            _ = backstop.tick() => {}
        }
        // A full queue already holds a reload request that will read the file.
        let _ = requests.try_send(Request { trigger: Trigger::File, reply: None });
    }
}

/// A notify watcher on the directory of `path`, or `None` (logged; the backstop remains).
fn watch_dir(path: &Path, events: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(OsString::from).unwrap_or_default();
    let handler = move |event: notify::Result<notify::Event>| {
        let wanted = match &event {
            Ok(e) => relevant(&e.paths, &file_name),
            // An error (e.g. queue overflow) may hide a change.
            Err(_) => true,
        };
        if wanted {
            let _ = events.try_send(());
        }
    };
    let watched =
        notify::recommended_watcher(handler).and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot watch the config directory ({e}); checking every {BACKSTOP:?}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_events_fires_once_after_the_quiet_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = Debouncer::new(ms(250));
        assert!(!d.fire(t0) && d.due().is_none(), "nothing pending");
        d.event(t0);
        d.event(t0 + ms(100));
        d.event(t0 + ms(200));
        assert_eq!(d.due(), Some(t0 + ms(450)), "each event restarts the quiet time");
        assert!(!d.fire(t0 + ms(449)));
        assert!(d.fire(t0 + ms(450)));
        assert!(!d.fire(t0 + ms(900)), "fired once");
        d.event(t0 + ms(1000));
        assert!(d.fire(t0 + ms(1300)), "a later event fires again");
    }

    #[test]
    fn events_for_the_file_or_the_kubernetes_symlink_count() {
        let name = OsString::from("config.yaml");
        let dir = Path::new("/etc/leakwatch");
        assert!(relevant(&[dir.join("config.yaml")], &name));
        assert!(relevant(&[dir.join("..data_tmp"), dir.join("..data")], &name), "the ..data swap");
        assert!(relevant(&[], &name), "a rescan names no path");
        assert!(!relevant(&[dir.join("other.yaml")], &name));
        assert!(!relevant(&[dir.join("..2026_12_01_21_00_00.123")], &name), "the new data directory alone");
    }
}
