//! `leakwatch run` mode: the wrapped command's stdout and stderr go through a pipe that
//! leakwatch reads; every chunk is written through unchanged to leakwatch's own stdout or stderr
//! (so `kubectl logs` keeps working) and split into lines for the `stdout`/`stderr` source.
//!
//! One thread per stream, with blocking reads and blocking writes: a slow consumer of
//! leakwatch's stdout slows the child down (the pipe fills) instead of losing output, and the
//! order within a stream is kept. If leakwatch's own stream is closed, forwarding stops (logged
//! once) and lines still reach the ring. The unfinished last line is stored at end of stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::lines::LineSplitter;
use super::{LogSource, SourceCounters};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// A capture thread reading one of the child's streams.
pub(crate) struct Capture {
    join: JoinHandle<()>,
}

impl Capture {
    /// Creates a pipe whose write end becomes the child's stream (pass the returned [`Stdio`]
    /// to the command) and starts a thread that forwards what arrives to `forward` and stores
    /// it in `source`'s ring until the child side is closed.
    pub(crate) fn start(source: Arc<LogSource>, forward: Box<dyn Write + Send>) -> io::Result<(Stdio, Capture)> {
        let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let name = format!("capture-{}", source.name);
        let join = std::thread::Builder::new().name(name).spawn(move || pump(read_end, &source, forward))?;
        Ok((Stdio::from(write_end), Capture { join }))
    }

    /// Waits until the stream has ended and everything read is forwarded and stored.
    pub(crate) fn wait(self) {
        if self.join.join().is_err() {
            tracing::error!("an output capture thread panicked");
        }
    }
}

fn pump(read_end: OwnedFd, source: &LogSource, mut forward: Box<dyn Write + Send>) {
    let mut pipe = File::from(read_end);
    let mut splitter = LineSplitter::new(source.ring.limits().max_line_bytes);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut forwarding = true;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                SourceCounters::add(&source.counters.read_errors, 1);
                tracing::warn!(source = %source.name, "reading the wrapped command's output failed: {e}");
                break;
            }
        };
        let chunk = &buf[..n];
        if forwarding {
            if let Err(e) = forward.write_all(chunk).and_then(|()| forward.flush()) {
                tracing::warn!(source = %source.name, "cannot forward the wrapped command's output ({e}); still capturing it");
                forwarding = false;
            }
        }
        SourceCounters::add(&source.counters.bytes_read, n as u64);
        splitter.set_max_line_bytes(source.ring.limits().max_line_bytes);
        let mut writer = source.ring.writer();
        splitter.feed(chunk, |line, cut| {
            writer.push(line, cut);
        });
    }
    let mut writer = source.ring.writer();
    splitter.flush(|line, cut| {
        writer.push(line, cut);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::{Cursor, ReadLimits, RingLimits};
    use crate::logs::SourceKind;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_is_forwarded_unchanged_and_split_into_lines() {
        let limits = RingLimits { max_lines: 100, max_bytes: 1 << 16, max_line_bytes: 1024, max_subscribers: 1 };
        let source = Arc::new(LogSource::new("stdout", SourceKind::Stdout, limits));
        let out = Shared::default();
        let (stdio, capture) = Capture::start(source.clone(), Box::new(out.clone())).unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "printf 'one\\r\\ntwo\\n\\377bad\\nlast'"])
            .stdout(stdio)
            .status()
            .unwrap();
        assert!(status.success());
        capture.wait();
        assert_eq!(&*out.0.lock().unwrap(), b"one\r\ntwo\n\xffbad\nlast");
        let page = source.ring.read(Cursor::After(0), ReadLimits { lines: 10, bytes: 1 << 16 }, None);
        let lines: Vec<&[u8]> = page.iter().map(|l| l.text).collect();
        assert_eq!(lines, vec![&b"one"[..], b"two", b"\xffbad", b"last"]);
        assert_eq!(source.stats().bytes_read, 18);
    }
}
