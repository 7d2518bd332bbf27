//! Kernel files kept open between passes and read again with `pread` from offset 0.
//!
//! procfs, cgroupfs and sysfs produce a file's content afresh on every read from its start, so a
//! descriptor held from one pass to the next reads what a new open would, without the path walk,
//! the open and the close (for a cgroup file six path components and a mount crossing): most of
//! what a cheap pass spends in the kernel besides producing the content.
//!
//! - Only files on those filesystems are held: a regular file (a fixture tree, a pidfile) may be
//!   replaced by a rename that an open descriptor would never see.
//! - A held descriptor whose read fails or comes back empty is closed and the path opened afresh:
//!   a process that exited answers `ESRCH` (so a restarted target, or another process that got
//!   the pid, is read through its own new descriptor), a removed cgroup `ENODEV`.
//! - A descriptor not read during a pass is closed at the pass's end ([`HeldFiles::end_pass`]),
//!   so what is held follows the target; at most [`MAX_HELD`] are held at once (further files are
//!   opened and closed on every read, as without holding).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::read::{ReadError, MAX_FILE_BYTES};
use crate::measure::Structure;
use crate::parse::ParseError;

/// The most descriptors held at once.
pub const MAX_HELD: usize = 64;

/// Filesystems whose files are produced on every read (`statfs` magic numbers).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// The held descriptors, by path.
#[derive(Debug, Default)]
pub struct HeldFiles {
    files: HashMap<PathBuf, Held>,
    /// The number of the current pass (passes end with [`HeldFiles::end_pass`]).
    pass: u64,
}

#[derive(Debug)]
struct Held {
    file: File,
    /// The last pass that read it.
    read_in: u64,
}

impl HeldFiles {
    /// Reads the whole file at `path` (at most [`MAX_FILE_BYTES`]), through a held descriptor when
    /// there is one, opening (and, on a kernel filesystem, holding) it otherwise.
    pub fn read(&mut self, path: &Path) -> Result<Vec<u8>, ReadError> {
        if let Some(held) = self.files.get_mut(path) {
            held.read_in = self.pass;
            match read_from_start(&held.file) {
                Ok(bytes) if !bytes.is_empty() => return capped(path, bytes),
                // Gone, removed or emptied: a fresh open says what the path holds now.
                _ => {
                    self.files.remove(path);
                }
            }
        }
        let io_err = |source| ReadError::Io { path: path.display().to_string(), source };
        let file = File::open(path).map_err(io_err)?;
        let bytes = read_from_start(&file).map_err(io_err)?;
        if self.files.len() < MAX_HELD && produced_on_read(&file) {
            self.files.insert(path.to_path_buf(), Held { file, read_in: self.pass });
        }
        capped(path, bytes)
    }

    /// Reads and parses a file in one step (see [`HeldFiles::read`]).
    pub fn read_parsed<T>(
        &mut self,
        path: &Path,
        parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, ReadError> {
        let bytes = self.read(path)?;
        parse(&bytes).map_err(|e| ReadError::parse(path, e))
    }

    /// Ends a pass: closes every descriptor the pass did not read.
    pub fn end_pass(&mut self) {
        let pass = self.pass;
        self.files.retain(|_, held| held.read_in == pass);
        self.pass += 1;
    }

    /// Closes every descriptor (another target or other roots are watched).
    pub fn clear(&mut self) {
        self.files.clear();
    }

    /// The held descriptors, for `leakwatch_structure_*`.
    pub fn structure(&self) -> Structure {
        Structure::map("held_files", &self.files, Some(MAX_HELD))
    }
}

/// The file's content from offset 0 to its end, stopping one byte past [`MAX_FILE_BYTES`].
fn read_from_start(file: &File) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match file.read_at(&mut chunk, out.len() as u64) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if out.len() as u64 > MAX_FILE_BYTES {
            return Ok(out);
        }
    }
}

fn capped(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { path: path.display().to_string() });
    }
    Ok(bytes)
}

/// Whether the file lives on a filesystem that produces its content on every read.
#[allow(clippy::unnecessary_cast)] // `f_type` is `i64` here, `u32` or `i32` on other architectures
fn produced_on_read(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|s| {
        matches!(s.f_type as i64, PROC_SUPER_MAGIC | CGROUP_SUPER_MAGIC | CGROUP2_SUPER_MAGIC | SYSFS_MAGIC)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_procfs_file_reads_fresh_content_every_time() {
        let mut held = HeldFiles::default();
        let path = Path::new("/proc/thread-self/comm");
        std::fs::write(path, "lwheld-one").unwrap();
        assert_eq!(held.read(path).unwrap(), b"lwheld-one\n");
        assert_eq!(held.files.len(), 1, "a procfs file is held");
        std::fs::write(path, "lwheld-two").unwrap();
        assert_eq!(held.read(path).unwrap(), b"lwheld-two\n", "the held descriptor reads the new content");
        assert_eq!(held.files.len(), 1, "through the same descriptor");
    }

    #[test]
    fn a_process_that_exits_is_read_through_a_fresh_open_and_unread_files_are_closed() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let path = PathBuf::from(format!("/proc/{}/comm", child.id()));
        // Until the child has exec'd, its `comm` is the test thread's name.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(&path).unwrap() != b"sleep\n" {
            assert!(std::time::Instant::now() < deadline, "sleep never exec'd");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut held = HeldFiles::default();
        assert_eq!(held.read(&path).unwrap(), b"sleep\n");
        held.end_pass();
        assert_eq!(held.files.len(), 1, "read in the pass that ended: kept");
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = held.read(&path).unwrap_err();
        assert!(gone.process_gone(), "the path is gone once the held descriptor fails: {gone}");
        assert!(held.files.is_empty(), "the failed descriptor is closed");

        assert!(held.read(Path::new("/proc/self/status")).is_ok());
        held.end_pass();
        held.end_pass();
        assert!(held.files.is_empty(), "not read during a pass: closed at its end");
    }

    #[test]
    fn regular_files_are_not_held_and_big_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("leakwatch-held-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stat");
        std::fs::write(&file, "1\n").unwrap();
        let mut held = HeldFiles::default();
        assert_eq!(held.read(&file).unwrap(), b"1\n");
        // Replaced by a rename: a held descriptor would still read the old file.
        std::fs::write(dir.join("new"), "2\n").unwrap();
        std::fs::rename(dir.join("new"), &file).unwrap();
        assert_eq!(held.read(&file).unwrap(), b"2\n");
        assert!(held.files.is_empty());
        std::fs::write(&file, vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(held.read(&file), Err(ReadError::TooLarge { .. })));
        assert!(matches!(held.read(&dir.join("missing")), Err(ReadError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
