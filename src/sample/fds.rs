//! One process's open descriptors: the count, cheap enough for every pass (the size procfs
//! reports for `/proc/PID/fd`), and the walk over every link, which gives the counts by kind and
//! the socket inodes that the socket tables are matched against (the expensive tier).

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

/// Whether `path` is on a procfs mount (where a `fd` directory's size is its descriptor count).
pub fn is_procfs(path: &Path) -> bool {
    // PROC_SUPER_MAGIC (`f_type`'s integer type differs between architectures).
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type == 0x9fa0)
}

/// How many descriptors `dir` (a `/proc/PID/fd`) holds. On procfs since Linux 6.2 the
/// directory's `st_size` is the count (one `stat`, no listing); when it reads 0 (an older
/// kernel, or no descriptors), or `dir` is not on procfs (`by_size` false: a fixture tree), the
/// entries are counted without reading a link.
pub fn count(dir: &Path, by_size: bool) -> Result<u64, ReadError> {
    let io_err = |e: rustix::io::Errno| ReadError::Io { path: dir.display().to_string(), source: e.into() };
    // The size is readable without the right to list the directory: ask for that right first,
    // so a process leakwatch may not inspect gives no count (as the walk would).
    rustix::fs::accessat(rustix::fs::CWD, dir, rustix::fs::Access::READ_OK, rustix::fs::AtFlags::EACCESS)
        .map_err(io_err)?;
    let st = rustix::fs::stat(dir).map_err(io_err)?;
    if by_size && st.st_size > 0 {
        return Ok(st.st_size as u64);
    }
    let fd =
        rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(io_err)?;
    let mut n = 0;
    for entry in rustix::fs::Dir::read_from(&fd).map_err(io_err)? {
        n += u64::from(entry.map_err(io_err)?.file_name().to_bytes().first() != Some(&b'.'));
    }
    Ok(n)
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
    fn the_count_by_size_matches_the_walk() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let proc_dir = Path::new("/proc").join(child.id().to_string());
        // Until the exec, the child is a copy of this process with its descriptors.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default().trim() != "sleep"
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let dir = proc_dir.join("fd");
        assert!(is_procfs(&dir));
        let (sized, listed, walked) = (count(&dir, true).unwrap(), count(&dir, false).unwrap(), scan(&dir).unwrap());
        let _ = child.kill();
        let _ = child.wait();
        assert!(sized >= 2, "stdin and stdout at least: {sized}");
        assert_eq!((sized, listed), (walked.total(), walked.total()), "the size, the listing and the walk agree");
        assert!(!is_procfs(&std::env::temp_dir()));
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
