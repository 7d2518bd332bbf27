//! A writer that appends seq-numbered lines to a log file and rotates it the four ways users
//! meet: rename-and-create, delete-and-recreate, a Kubernetes-style symlink switch, copytruncate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// `mv app.log app.log.1` then a new `app.log` (logrotate's default).
    RenameCreate,
    /// `app.log.N` → `app.log.N+1` (5 kept), `app.log` → `app.log.1`, a new `app.log`
    /// (logrotate `rotate 5`): rotated files stay readable for several rotations.
    RenameNumbered,
    /// `rm app.log` then a new `app.log`.
    DeleteRecreate,
    /// `app.log` is a symlink to `pods/N.log`; a new symlink is renamed over it (kubelet).
    Symlink,
    /// `cp app.log app.log.1` then truncate `app.log` to 0 (logrotate `copytruncate`).
    CopyTruncate,
    /// Truncate `app.log` to 0 in place, no copy (`> app.log`): lines not read yet are lost.
    Truncate,
}

pub const ALL: [Rotation; 4] =
    [Rotation::RenameCreate, Rotation::DeleteRecreate, Rotation::Symlink, Rotation::CopyTruncate];

impl Rotation {
    pub fn name(self) -> &'static str {
        match self {
            Rotation::RenameCreate => "rename",
            Rotation::RenameNumbered => "rename-numbered",
            Rotation::DeleteRecreate => "delete",
            Rotation::Symlink => "symlink",
            Rotation::CopyTruncate => "copytruncate",
            Rotation::Truncate => "truncate",
        }
    }
}

/// The text of line `seq` (varying lengths, so lines straddle read chunks at random places).
pub fn line(seq: u64) -> String {
    let pad = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(1 + (seq % 5) as usize);
    format!("seq={seq:09} {}\n", &pad[..(seq as usize * 7) % pad.len()])
}

/// The seq number of a stored line.
pub fn seq_of(text: &[u8]) -> u64 {
    let s = std::str::from_utf8(text).expect("utf-8 line");
    s.strip_prefix("seq=")
        .and_then(|r| r.get(..9))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {s:?}"))
}

/// What a writer run produced.
pub struct Written {
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// Writes `files` × `lines_per_file` lines to `path` (under `dir`), rotating between files.
/// Before rotation `r` (1-based) it calls `ready(r, bytes_before_this_file)` and waits until it
/// returns true: the follower must have noticed rotation `r - 1` and read from the current file
/// (so it holds the file open). A file deleted or truncated before any reader opened it is lost
/// to every reader, and two rotations between two wake-ups would skip a file: see the tailer's docs.
pub fn write_and_rotate(
    kind: Rotation,
    dir: &Path,
    path: &Path,
    rotations: u64,
    lines_per_file: u64,
    ready: impl Fn(u64, u64) -> bool,
) -> Written {
    let started = Instant::now();
    let mut file = create(kind, dir, path, 0);
    let (mut seq, mut bytes) = (0u64, 0u64);
    let mut wait_s = 0.0;
    for r in 0..=rotations {
        let file_start = bytes;
        for _ in 0..lines_per_file {
            let l = line(seq);
            file.write_all(l.as_bytes()).expect("append a line");
            seq += 1;
            bytes += l.len() as u64;
        }
        if r == rotations {
            break;
        }
        let waiting = Instant::now();
        let deadline = waiting + std::time::Duration::from_secs(30);
        while !ready(r + 1, file_start) {
            assert!(Instant::now() < deadline, "{kind:?}: follower did not catch up before rotation {}", r + 1);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        wait_s += waiting.elapsed().as_secs_f64();
        file = rotate(kind, dir, path, file, r + 1);
    }
    let seconds = started.elapsed().as_secs_f64() - wait_s;
    Written { lines: seq, bytes, seconds }
}

fn append(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).expect("open the log for appending")
}

fn create(kind: Rotation, dir: &Path, path: &Path, n: u64) -> File {
    if kind != Rotation::Symlink {
        return append(path);
    }
    let pods = dir.join("pods");
    std::fs::create_dir_all(&pods).expect("pods dir");
    let target = pods.join(format!("{n}.log"));
    let file = append(&target);
    let tmp = dir.join(".link.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp).expect("symlink");
    std::fs::rename(&tmp, path).expect("switch the symlink atomically");
    file
}

fn identity(path: &Path) -> (u64, u64) {
    let m = std::fs::metadata(path).expect("stat the log");
    (m.dev(), m.ino())
}

fn rotate(kind: Rotation, dir: &Path, path: &Path, file: File, n: u64) -> File {
    let before = identity(path);
    let file = match kind {
        Rotation::RenameCreate => {
            drop(file);
            std::fs::rename(path, rotated(path)).expect("rename the log");
            create(kind, dir, path, n)
        }
        Rotation::RenameNumbered => {
            drop(file);
            for k in (1..5).rev() {
                let from = numbered(path, k);
                if from.exists() {
                    std::fs::rename(&from, numbered(path, k + 1)).expect("shift a rotated log");
                }
            }
            std::fs::rename(path, numbered(path, 1)).expect("rename the log");
            create(kind, dir, path, n)
        }
        Rotation::DeleteRecreate => {
            drop(file);
            std::fs::remove_file(path).expect("delete the log");
            create(kind, dir, path, n)
        }
        Rotation::Symlink => {
            drop(file);
            create(kind, dir, path, n)
        }
        Rotation::CopyTruncate => {
            std::fs::copy(path, rotated(path)).expect("copy the log");
            file.set_len(0).expect("truncate the log");
            return file;
        }
        Rotation::Truncate => {
            file.set_len(0).expect("truncate the log");
            return file;
        }
    };
    // The scenario is real: the path names another file now (Vector once renamed onto itself).
    assert_ne!(identity(path), before, "{kind:?}: rotation {n} did not change the file");
    file
}

fn rotated(path: &Path) -> PathBuf {
    numbered(path, 1)
}

fn numbered(path: &Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}
