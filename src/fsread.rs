//! Opening the files leakwatch is pointed at (config, web config, admin token, TLS certificates,
//! keys and CAs, tailed logs) so that nothing at the path can block it: the open is
//! `O_NONBLOCK | O_CLOEXEC` (a FIFO with no writer would otherwise block `open()` for ever), then
//! `fstat` on the opened descriptor admits regular files only (no FIFO, socket, device or
//! directory), and a read stops one byte past its cap. Errors name the path and the problem.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    /// `open` or `read` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file.
    #[error("{path}: not a regular file (a {kind}); refused")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead: `FIFO`, `socket`, `directory`, ...
        kind: &'static str,
    },
    /// The file is larger than the cap.
    #[error("{path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, bytes.
        max: u64,
    },
}

/// What a non-regular file is, in words.
pub(crate) fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "regular file"
    }
}

/// Opens `path` for reading without blocking and admits it only when it is a regular file
/// (symbolic links are followed); gives the file and its metadata (from `fstat`).
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), FileError> {
    let io = |source| FileError::Io { path: path.to_path_buf(), source };
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let file = OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf(), kind: kind_of(&meta) });
    }
    Ok((file, meta))
}

/// The bytes of the regular file at `path`, at most `max` of them (a larger file is an error).
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), max });
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|source| FileError::Io { path: path.to_path_buf(), source })?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge { path: path.to_path_buf(), max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn fifos_directories_and_devices_are_refused_at_once_and_files_are_capped() {
        let dir = std::env::temp_dir().join(format!("leakwatch-fsread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let start = Instant::now();
        let e = read_capped(&fifo, 10).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "a FIFO without a writer does not block");
        assert_eq!(e.to_string(), format!("{}: not a regular file (a FIFO); refused", fifo.display()));
        assert!(read_capped(&dir, 10).unwrap_err().to_string().contains("(a directory)"));
        assert!(read_capped(Path::new("/dev/null"), 10).unwrap_err().to_string().contains("character device"));
        let file = dir.join("f");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_capped(&file, 10).unwrap(), b"0123456789");
        assert!(matches!(read_capped(&file, 9), Err(FileError::TooLarge { max: 9, .. })));
        assert!(matches!(read_capped(&dir.join("missing"), 9), Err(FileError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
