//! Splits a byte stream into lines, holding at most `max_line_bytes` of an unfinished line.
//!
//! A line is everything up to `\n` (a trailing `\r` is dropped too). Bytes beyond the cap of a
//! line are discarded as they arrive and the line is reported as cut, so a 1 GiB line without a
//! newline never holds more than the cap in memory. Complete lines that fit are handed out as
//! slices of the input (no copy); only the unfinished tail of a chunk is copied.

/// The line splitter of one stream.
#[derive(Debug)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// The start of a line whose newline has not arrived yet (at most `max_line_bytes`).
    partial: Vec<u8>,
    /// Whether bytes of the unfinished line were discarded.
    partial_cut: bool,
    /// Discard everything up to the next newline (the first line read from the middle of a file).
    skip_to_newline: bool,
}

impl LineSplitter {
    /// A splitter that keeps at most `max_line_bytes` bytes of one line.
    pub fn new(max_line_bytes: usize) -> Self {
        Self { max_line_bytes: max_line_bytes.max(1), partial: Vec::new(), partial_cut: false, skip_to_newline: false }
    }

    /// Changes the cap (the source's caps were reloaded); an unfinished line already longer
    /// than the new cap is cut to it.
    pub(crate) fn set_max_line_bytes(&mut self, max_line_bytes: usize) {
        self.max_line_bytes = max_line_bytes.max(1);
        if self.partial.len() > self.max_line_bytes {
            self.partial.truncate(self.max_line_bytes);
            self.partial_cut = true;
        }
    }

    /// Drops the bytes up to and including the next newline (reading starts mid-line).
    pub(crate) fn skip_first_line(&mut self) {
        self.skip_to_newline = true;
    }

    /// Whether part of a line is waiting for its newline.
    pub(crate) fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.partial_cut
    }

    /// Splits `chunk`, calling `emit(line, cut)` for every completed line.
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        if self.skip_to_newline {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    self.skip_to_newline = false;
                    chunk = &chunk[i + 1..];
                }
                None => return,
            }
        }
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let (line, rest) = (&chunk[..i], &chunk[i + 1..]);
            chunk = rest;
            if self.has_partial() {
                self.append(line);
                let cut = self.partial_cut;
                emit(trim_cr(&self.partial), cut);
                self.partial.clear();
                self.partial_cut = false;
            } else if line.len() > self.max_line_bytes {
                emit(&line[..self.max_line_bytes], true);
            } else {
                emit(trim_cr(line), false);
            }
        }
        self.append(chunk);
    }

    /// Emits the unfinished line, if any, as a line (end of stream, rotation or timeout).
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if self.has_partial() {
            emit(trim_cr(&self.partial), self.partial_cut);
        }
        self.partial.clear();
        self.partial.shrink_to(self.max_line_bytes.min(4096));
        self.partial_cut = false;
    }

    /// Emits the unfinished line, if any, as a cut line: the bytes that would have ended it are
    /// gone (the file was truncated under it), so it must not pass for a line written whole.
    pub fn cut_off(&mut self, emit: impl FnMut(&[u8], bool)) {
        if !self.partial.is_empty() {
            self.partial_cut = true;
        }
        self.flush(emit);
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes - self.partial.len();
        if bytes.len() > room {
            self.partial_cut = true;
        }
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &mut LineSplitter, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for chunk in chunks {
            s.feed(chunk, |l, cut| out.push((String::from_utf8_lossy(l).into_owned(), cut)));
        }
        out
    }

    #[test]
    fn lines_across_chunks_crlf_and_empty_lines() {
        let mut s = LineSplitter::new(100);
        let got = split(&mut s, &[b"ab", b"c\nde\r\n\n", b"f"]);
        assert_eq!(got, vec![("abc".into(), false), ("de".into(), false), ("".into(), false)]);
        assert!(s.has_partial());
        let mut flushed = Vec::new();
        s.flush(|l, cut| flushed.push((l.to_vec(), cut)));
        assert_eq!(flushed, vec![(b"f".to_vec(), false)]);
        assert!(!s.has_partial());
    }

    #[test]
    fn an_endless_line_holds_no_more_than_the_cap() {
        let mut s = LineSplitter::new(10);
        let big = vec![b'x'; 1000];
        for _ in 0..100 {
            s.feed(&big, |_, _| panic!("no newline yet"));
            assert!(s.partial.len() <= 10 && s.partial.capacity() <= 64);
        }
        let got = split(&mut s, &[b"yy\nnext\n"]);
        assert_eq!(got, vec![("x".repeat(10), true), ("next".into(), false)]);
        // A long complete line inside one chunk is cut too.
        let got = split(&mut s, &[b"0123456789abc\nok\n"]);
        assert_eq!(got, vec![("0123456789".into(), true), ("ok".into(), false)]);
    }

    #[test]
    fn skipping_the_first_partial_line() {
        let mut s = LineSplitter::new(100);
        s.skip_first_line();
        assert_eq!(split(&mut s, &[b"tail of a line", b" still\nwhole\n"]), vec![("whole".into(), false)]);
    }

    #[test]
    fn an_unfinished_line_cut_off_is_emitted_as_cut() {
        let mut s = LineSplitter::new(100);
        assert_eq!(split(&mut s, &[b"whole\nhalf of a"]), vec![("whole".into(), false)]);
        let mut out = Vec::new();
        s.cut_off(|l, cut| out.push((l.to_vec(), cut)));
        assert_eq!(out, vec![(b"half of a".to_vec(), true)]);
        assert!(!s.has_partial());
        s.cut_off(|_, _| panic!("nothing unfinished"));
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let mut s = LineSplitter::new(100);
        let mut raw = Vec::new();
        s.feed(b"\xff\xfe\x00ok\n", |l, _| raw.push(l.to_vec()));
        assert_eq!(raw, vec![b"\xff\xfe\x00ok".to_vec()]);
    }

    #[test]
    fn a_new_cap_applies_to_the_next_bytes_and_cuts_an_unfinished_line() {
        let mut s = LineSplitter::new(4);
        assert_eq!(split(&mut s, &[b"abcdefgh\n"]), vec![("abcd".to_owned(), true)]);
        s.set_max_line_bytes(8);
        assert_eq!(split(&mut s, &[b"abcdefgh\n", b"abcdef"]), vec![("abcdefgh".to_owned(), false)]);
        s.set_max_line_bytes(3);
        assert_eq!(split(&mut s, &[b"\n"]), vec![("abc".to_owned(), true)]);
    }
}
