//! Which file is which: device + inode, plus a fingerprint of the first bytes.
//!
//! Device + inode tell a renamed or recreated file from the one being read. The inode of a file
//! that leakwatch still holds open cannot be reused, but a path can be truncated and rewritten in
//! place (copytruncate) keeping its inode: the fingerprint (the first [`FINGERPRINT_BYTES`], or
//! fewer for a smaller file) catches a rewrite that has already grown past the read offset.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How many leading bytes form a file's fingerprint.
pub(crate) const FINGERPRINT_BYTES: usize = 256;

/// Device and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    /// `st_dev`.
    pub(crate) dev: u64,
    /// `st_ino`.
    pub(crate) ino: u64,
}

impl FileId {
    /// The identity in `meta`.
    pub(crate) fn of(meta: &Metadata) -> Self {
        Self { dev: meta.dev(), ino: meta.ino() }
    }
}

/// The first bytes of a file, as far as they were seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<u8>);

impl Fingerprint {
    /// Reads up to [`FINGERPRINT_BYTES`] from the start of `file` (fewer if it is smaller).
    pub(crate) fn read(file: &File) -> io::Result<Self> {
        let mut buf = vec![0; FINGERPRINT_BYTES];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(Self(buf))
    }

    /// The bytes seen.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this fingerprint is complete (the file had at least [`FINGERPRINT_BYTES`]).
    pub(crate) fn is_complete(&self) -> bool {
        self.0.len() == FINGERPRINT_BYTES
    }

    /// Completes an incomplete fingerprint from `bytes`, read from the file at offset `at`.
    /// Returns false when they disagree with the bytes already seen (the file was rewritten).
    pub fn extend_from(&mut self, at: u64, bytes: &[u8]) -> bool {
        let Ok(at) = usize::try_from(at) else { return true };
        if at >= FINGERPRINT_BYTES {
            return true;
        }
        let seen = self.0.len();
        let overlap = seen.saturating_sub(at).min(bytes.len());
        if self.0[at.min(seen)..at.min(seen) + overlap] != bytes[..overlap] {
            return false;
        }
        if at <= seen {
            let more = &bytes[overlap..bytes.len().min(FINGERPRINT_BYTES - at)];
            self.0.extend_from_slice(more);
        }
        true
    }

    /// Whether `now` (read later from the same or another file) starts like this one: the bytes
    /// both have seen agree and `now` is not shorter. An empty fingerprint matches anything.
    pub(crate) fn continues_in(&self, now: &Fingerprint) -> bool {
        now.0.len() >= self.0.len() && now.0.starts_with(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fingerprints_grow_and_detect_rewrites() {
        let dir = std::env::temp_dir().join(format!("leakwatch-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"first line\n").unwrap();
        let r = File::open(&path).unwrap();
        let small = Fingerprint::read(&r).unwrap();
        assert_eq!(small.bytes(), b"first line\n");
        assert!(!small.is_complete());
        w.write_all(&[b'x'; 400]).unwrap();
        let full = Fingerprint::read(&r).unwrap();
        assert!(full.is_complete());
        assert!(small.continues_in(&full), "appending keeps the fingerprint");
        w.set_len(0).unwrap();
        let emptied = Fingerprint::read(&r).unwrap();
        assert!(!small.continues_in(&emptied), "a truncated file is shorter");
        std::fs::write(&path, b"other line\n").unwrap();
        assert!(!small.continues_in(&Fingerprint::read(&r).unwrap()), "rewritten in place");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(FileId::of(&meta), FileId::of(&r.metadata().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fingerprint_is_completed_from_bytes_read_and_catches_a_disagreement() {
        let mut fp = Fingerprint(b"abc".to_vec());
        assert!(fp.extend_from(0, b"abcdef"));
        assert_eq!(fp.bytes(), b"abcdef");
        assert!(fp.extend_from(6, b"gh"));
        assert!(fp.extend_from(2, b"cdefghij"));
        assert_eq!(fp.bytes(), b"abcdefghij");
        assert!(!fp.extend_from(1, b"bX"), "rewritten");
        assert_eq!(fp.bytes(), b"abcdefghij");
        assert!(fp.extend_from(20, b"zz"), "past what was seen: nothing to add");
        assert_eq!(fp.bytes(), b"abcdefghij");
        let mut fp = Fingerprint::default();
        assert!(fp.extend_from(0, &[b'x'; 300]));
        assert!(fp.is_complete());
    }
}
