//! HTTP helpers for the log endpoints: a GET with headers, and a Server-Sent Events client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use leakwatch::http::sse::{Decoder, Event};

/// A response: status, headers (names lowercased), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET `path` with extra headers, over HTTP/1.0 (the server closes after the response).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, &format!("GET {path} HTTP/1.0\r\n"), headers)
}

/// POST `path` with extra headers and an empty body, over HTTP/1.0.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, &format!("POST {path} HTTP/1.0\r\nContent-Length: 0\r\n"), headers)
}

/// Sends `head` (the request line and any fixed headers), `headers` and the blank line, and
/// reads the whole reply.
fn request(addr: SocketAddr, head: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut request = format!("{head}Host: test\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).expect("send request");
    let mut reader = BufReader::new(s);
    let (status, headers) = read_head(&mut reader);
    let mut body = Vec::new();
    reader.read_to_end(&mut body).expect("read body");
    Reply { status, headers, body }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// A live SSE connection.
pub struct SseClient {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body ended with its final (empty) chunk: the server closed the stream cleanly.
    pub ended: bool,
    stream: BufReader<TcpStream>,
    decoder: Decoder,
    pending: std::collections::VecDeque<Event>,
}

impl SseClient {
    /// Opens `path` with extra headers; the response head is read before this returns.
    pub fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        s.write_all(request.as_bytes()).expect("send request");
        let mut stream = BufReader::with_capacity(64 << 10, s);
        let (status, headers) = read_head(&mut stream);
        SseClient { status, headers, ended: false, stream, decoder: Decoder::default(), pending: Default::default() }
    }

    /// The next event, waiting up to `timeout`; `None` on timeout or end of stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        while self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.get_ref().set_read_timeout(Some(left)).ok()?;
            // The body is chunked: decode the chunk framing, then the events.
            let chunk = match read_chunk(&mut self.stream)? {
                Some(chunk) => chunk,
                None => {
                    self.ended = true;
                    return None;
                }
            };
            let pending = &mut self.pending;
            self.decoder.feed(&chunk, |e| pending.push_back(e));
        }
        self.pending.pop_front()
    }
}

/// One chunk of a chunked body: `Some(None)` for the final chunk, `None` on a read error or
/// timeout.
fn read_chunk(reader: &mut impl BufRead) -> Option<Option<Vec<u8>>> {
    let mut size = String::new();
    reader.read_line(&mut size).ok()?;
    let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
    if n == 0 {
        return Some(None);
    }
    let mut chunk = vec![0; n + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(n);
    Some(Some(chunk))
}

/// The sequence number of an event's `id`.
pub fn seq(event: &Event) -> u64 {
    event.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("event without a numeric id: {event:?}"))
}
