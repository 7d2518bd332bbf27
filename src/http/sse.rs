//! Server-Sent Events framing (the WHATWG `text/event-stream` format): the encoder the stream
//! endpoint uses, and a small bounded decoder for clients (the `leakwatch logs --follow` CLI).
//!
//! Data never breaks framing: a line's text is written as one `data:` field per `\r`-separated
//! piece (lines never hold `\n`: they were split on it), and JSON data is escaped by serde.

use std::io::Write;

/// Sent first: the client's reconnection delay, in milliseconds.
pub const RETRY: &[u8] = b"retry: 1000\n\n";
/// A comment frame that keeps idle connections (and proxies) alive.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";
/// The longest event a [`Decoder`] accepts; longer ones are dropped and counted.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// Appends an event: `event:` (unless `name` is the default `message`), `id:`, then `data`
/// split at `\r` and `\n` into `data:` fields.
pub fn event(out: &mut Vec<u8>, name: &str, id: Option<u64>, data: &[u8]) {
    if name != "message" {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = id {
        // Writing into a Vec cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    // Most lines hold no break: one field, found with the standard library's `memchr` (a
    // byte-wise split costs ~20× more in a debug build, where 50 streams starved the runtime).
    if !data.contains(&b'\r') && !data.contains(&b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\n\n");
        return;
    }
    for piece in data.split(|&b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(piece);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// One decoded event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when absent.
    pub name: String,
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
    /// The `data:` fields joined with `\n`, as bytes (the text need not be UTF-8).
    pub data: Vec<u8>,
}

/// Turns a byte stream into events; holds at most [`MAX_EVENT_BYTES`] of an unfinished one.
#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    event: Event,
    has_data: bool,
    event_bytes: usize,
    oversized: bool,
    /// Events dropped for being longer than [`MAX_EVENT_BYTES`].
    pub dropped: u64,
}

impl Decoder {
    /// Feeds bytes; calls `emit` for every complete event.
    pub fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Event)) {
        while !bytes.is_empty() {
            let (piece, complete) = match memchr::memchr(b'\n', bytes) {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            let room = MAX_EVENT_BYTES.saturating_sub(self.line.len());
            if piece.len() > room {
                self.oversized = true;
            }
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            let Some(next) = complete else { return };
            bytes = &bytes[next..];
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            self.field(&line, &mut emit);
            self.line = line;
            self.line.clear();
        }
    }

    fn field(&mut self, line: &[u8], emit: &mut impl FnMut(Event)) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let (had_data, oversized) = (self.has_data, self.oversized);
            (self.has_data, self.oversized, self.event_bytes) = (false, false, 0);
            if oversized {
                self.dropped += 1;
            } else if had_data {
                emit(Event { name: if event.name.is_empty() { "message".to_owned() } else { event.name }, ..event });
            }
            return;
        }
        if line[0] == b':' {
            return; // a comment
        }
        self.event_bytes += line.len();
        if self.event_bytes > MAX_EVENT_BYTES {
            self.oversized = true;
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(i) => (&line[..i], line[i + 1..].strip_prefix(b" ").unwrap_or(&line[i + 1..])),
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.event.data.push(b'\n');
                }
                self.event.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event.name = String::from_utf8_lossy(value).into_owned(),
            b"id" => self.event.id = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // `retry` and unknown fields
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, |e| out.push(e));
        }
        out
    }

    #[test]
    fn encoded_events_decode_back_whatever_the_text_holds() {
        let mut buf = RETRY.to_vec();
        event(&mut buf, "message", Some(7), b"plain line");
        event(&mut buf, "message", Some(8), b"a\rb: data: x\n\n");
        event(&mut buf, "missed", None, br#"{"missed":3}"#);
        buf.extend_from_slice(KEEPALIVE);
        event(&mut buf, "message", Some(9), b"");
        // Fed a byte at a time, as a slow network would deliver it.
        let bytes: Vec<&[u8]> = buf.chunks(1).collect();
        let events = decode(&bytes);
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[0], Event { name: "message".into(), id: Some("7".into()), data: b"plain line".to_vec() });
        assert_eq!(events[1].data, b"a\nb: data: x\n\n", "CR becomes a field break, never a frame break");
        assert_eq!(events[1].id.as_deref(), Some("8"));
        assert_eq!((events[2].name.as_str(), &events[2].data[..]), ("missed", &br#"{"missed":3}"#[..]));
        assert_eq!(events[3].data, b"");
    }

    #[test]
    fn crlf_and_invalid_utf8_are_handled() {
        let events = decode(&[b"id: 1\r\ndata: \xff\xfe\r\n\r\n"]);
        assert_eq!(events[0].data, b"\xff\xfe");
    }

    #[test]
    fn an_oversized_event_is_dropped_and_counted_and_the_next_one_arrives() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 10];
        d.feed(b"data: ", |e| out.push(e));
        d.feed(&big, |e| out.push(e));
        d.feed(b"\n\ndata: ok\n\n", |e| out.push(e));
        assert_eq!(d.dropped, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, b"ok");
        assert!(d.line.capacity() <= 2 * MAX_EVENT_BYTES);
    }
}
