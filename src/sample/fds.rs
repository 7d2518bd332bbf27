//! One process's open descriptors: every link in `/proc/PID/fd`, read once per pass, gives both
//! the counts by kind and the socket inodes that the socket tables are matched against.

use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::read::ReadError;
use crate::parse::fdlink::{classify, FdKind};

/// What one process's `fd` directory held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdScan {
    /// Descriptors by kind, indexed like [`FdKind::ALL`].
    pub by_kind: [u64; 5],
    /// Inodes of the socket descriptors (unsorted; a socket open twice appears twice).
    pub socket_inodes: Vec<u64>,
    /// Links that vanished between listing the directory and reading them: descriptors the
    /// process closed meanwhile (normal churn, not an error).
    pub vanished: u64,
}

impl FdScan {
    /// Descriptors counted.
    pub fn total(&self) -> u64 {
        self.by_kind.iter().sum()
    }
}

fn kind_index(kind: FdKind) -> usize {
    FdKind::ALL.iter().position(|k| *k == kind).unwrap_or(FdKind::ALL.len() - 1)
}

/// Lists `dir` (a `/proc/PID/fd`) and reads each link with `readlinkat` on the directory's own
/// descriptor (no path building per entry). A failure to open or list the directory is an error
/// (the process is gone, or belongs to another user). A link that vanishes mid-scan was closed and
/// is skipped; if the whole directory is gone by then, the process exited mid-scan and the
/// partial counts are dropped as `NotFound`.
pub fn scan(dir: &Path) -> Result<FdScan, ReadError> {
    let io_err = |e: rustix::io::Errno| ReadError::Io { path: dir.display().to_string(), source: e.into() };
    let fd =
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
    let entries = rustix::fs::Dir::read_from(&fd).map_err(io_err)?;
    let mut out = FdScan::default();
    let mut buf = [0u8; 256];
    for entry in entries {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        match rustix::fs::readlinkat_raw(&fd, name, &mut buf[..]) {
            // A target longer than the buffer is cut: only its first bytes decide the kind.
            Ok(n) => {
                let (kind, inode) = classify(&buf[..n.min(buf.len())]);
                out.by_kind[kind_index(kind)] += 1;
                if let Some(inode) = inode {
                    out.socket_inodes.push(inode);
                }
            }
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::SRCH) => out.vanished += 1,
            Err(e) => return Err(io_err(e)),
        }
    }
    if out.vanished > 0 {
        rustix::fs::stat(dir).map_err(io_err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ErrorReason;

    #[test]
    fn own_descriptors_are_classified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (_r, _w) = rustix::pipe::pipe().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let scan = scan(Path::new("/proc/self/fd")).unwrap();
        assert!(scan.by_kind[kind_index(FdKind::Socket)] >= 1);
        assert!(scan.by_kind[kind_index(FdKind::Pipe)] >= 2);
        assert!(scan.by_kind[kind_index(FdKind::File)] >= 1);
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        assert!(scan.socket_inodes.contains(&inode), "{inode} in {:?}", scan.socket_inodes);
        drop(file);
    }

    #[test]
    fn a_process_that_is_gone_is_not_found() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let err = scan(&Path::new("/proc").join(pid.to_string()).join("fd")).unwrap_err();
        assert_eq!(err.reason(), ErrorReason::NotFound);
    }
}
