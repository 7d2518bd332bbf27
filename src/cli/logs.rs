//! `leakwatch logs SOURCE`: prints a source's lines from a running leakwatch, like `tail`; with
//! `--follow`, keeps printing live lines (from `/logs/{source}/stream`), reconnecting after a
//! drop and resuming with `Last-Event-ID`, so no line is skipped or printed twice.
//!
//! Control characters in log text are printed escaped (`\x1b`), so a log line cannot drive the
//! terminal; `--raw` prints the bytes as stored.
//!
//! A protected server (`https://`, basic auth) is reached through `crate::cli::client::Access`.

use std::io::Write;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::StatusCode;

use crate::cli::client::{Access, ClientError, Server};
use crate::http::sse::{Decoder, Event};

/// A stream silent this long (the server sends a keep-alive every 15 s) is taken as dropped.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// The first and the longest pause before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// What to print.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    /// The source name.
    pub(crate) source: String,
    /// Keep printing live lines.
    pub(crate) follow: bool,
    /// How many recent lines to print first.
    pub(crate) lines: usize,
    /// The server and how to reach it.
    pub(crate) access: Access,
    /// Only lines that contain this text.
    pub(crate) contains: Option<String>,
    /// Only lines that match this regex.
    pub(crate) regex: Option<String>,
    /// Print control characters unescaped.
    pub(crate) raw: bool,
}

/// Why the command stopped.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// The server could not be reached or refused the request (unknown source, bad parameter),
    /// or `--server` is malformed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Standard output failed (other than a closed pipe, which ends the command quietly).
    #[error("writing to standard output: {0}")]
    Output(#[source] std::io::Error),
    /// The source has no lines because its file cannot be read.
    #[error("{name}: no lines: {problem}")]
    NoFile {
        /// The source name.
        name: String,
        /// Why its file is not read (e.g. it does not exist).
        problem: String,
    },
}

/// Runs the command until done (or, with `--follow`, until interrupted or refused).
pub async fn run(args: LogsArgs) -> Result<(), LogsError> {
    let server = Server::connect(&args.access)?;
    let mut out = Output { raw: args.raw, stdout: std::io::stdout() };
    let result =
        if args.follow { follow(&server, &args, &mut out).await } else { print_page(&server, &args, &mut out).await };
    match result {
        Err(LogsError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

async fn print_page(server: &Server, args: &LogsArgs, out: &mut Output) -> Result<(), LogsError> {
    if args.lines == 0 {
        return Ok(());
    }
    let path = format!("/logs/{}?format=text&lines={}{}", encode(&args.source), args.lines, filters(args));
    let body = server.fetch(&path, &[("accept", "text/plain")]).await?;
    let mut printed = 0usize;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        out.line(line)?;
        printed += 1;
    }
    out.flush()?;
    if printed == 0 {
        explain_empty(server, args).await?;
    }
    Ok(())
}

/// An empty page: says why on stderr; a source whose file cannot be read is an error.
async fn explain_empty(server: &Server, args: &LogsArgs) -> Result<(), LogsError> {
    #[derive(serde::Deserialize)]
    struct List {
        sources: Vec<Source>,
    }
    #[derive(serde::Deserialize)]
    struct Source {
        name: String,
        path: Option<String>,
        problem: Option<String>,
    }
    let body = server.fetch("/logs", &[("accept", "application/json")]).await?;
    let list: Option<List> = serde_json::from_slice(&body).ok();
    let source = list.and_then(|l| l.sources.into_iter().find(|s| s.name == args.source));
    match source {
        Some(Source { problem: Some(problem), .. }) => Err(LogsError::NoFile { name: args.source.clone(), problem }),
        _ if args.contains.is_some() || args.regex.is_some() => {
            eprintln!("leakwatch logs: {}: no line matches", args.source);
            Ok(())
        }
        Some(Source { path: Some(path), .. }) => {
            eprintln!("leakwatch logs: {}: no lines yet (following {path})", args.source);
            Ok(())
        }
        _ => {
            eprintln!("leakwatch logs: {}: no lines yet", args.source);
            Ok(())
        }
    }
}

async fn follow(server: &Server, args: &LogsArgs, out: &mut Output) -> Result<(), LogsError> {
    let mut last_id: Option<String> = None;
    let mut pause = BACKOFF.0;
    let mut warned = false;
    loop {
        let start = match &last_id {
            Some(_) => String::new(),
            None => format!("&backlog={}", args.lines),
        };
        let path = format!("/logs/{}/stream?format=text{start}{}", encode(&args.source), filters(args));
        let mut headers = vec![("accept", "text/event-stream")];
        if let Some(id) = &last_id {
            headers.push(("last-event-id", id.as_str()));
        }
        match server.get(&path, &headers).await {
            Ok(response) if response.status() == StatusCode::OK => {
                if warned {
                    eprintln!("leakwatch logs: reconnected to {}", server.url);
                    warned = false;
                }
                pause = BACKOFF.0;
                let ended = read_stream(response.into_body(), &mut last_id, out).await?;
                if !warned {
                    eprintln!("leakwatch logs: {}: {ended}; reconnecting", server.url);
                    warned = true;
                }
            }
            Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                // Subscriber cap reached: a slot may free up.
                if !warned {
                    eprintln!("leakwatch logs: {}: busy (503); retrying", server.url);
                    warned = true;
                }
            }
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                return Err(ClientError::refused(status, &body).into());
            }
            Err(e) => {
                if !warned {
                    eprintln!("leakwatch logs: {e}; retrying");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF.1);
    }
}

/// Prints a stream's events until it ends; returns why it ended.
async fn read_stream(mut body: Incoming, last_id: &mut Option<String>, out: &mut Output) -> Result<String, LogsError> {
    let mut decoder = Decoder::default();
    loop {
        let frame = match tokio::time::timeout(STREAM_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Ok(format!("silent for {STREAM_IDLE_TIMEOUT:?}")),
            Ok(None) => return Ok("the stream ended".to_owned()),
            Ok(Some(Err(e))) => return Ok(format!("the stream broke: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let mut result = Ok(());
        decoder.feed(&data, |event| {
            if result.is_ok() {
                result = print_event(event, last_id, out);
            }
        });
        result?;
        out.flush()?;
    }
}

fn print_event(event: Event, last_id: &mut Option<String>, out: &mut Output) -> Result<(), LogsError> {
    match event.name.as_str() {
        "message" => {
            out.line(&event.data)?;
            if event.id.is_some() {
                *last_id = event.id;
            }
        }
        "missed" => {
            let missed = serde_json::from_slice::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|v| v["missed"].as_u64())
                .unwrap_or(0);
            out.flush()?;
            eprintln!("leakwatch logs: missed {missed} lines (evicted from the buffer before this client read them)");
        }
        "reset" => {
            out.flush()?;
            eprintln!("leakwatch logs: leakwatch restarted (sequence numbers start again); replaying its buffer");
        }
        _ => {}
    }
    Ok(())
}

/// Standard output, with control characters escaped unless `raw`.
struct Output {
    raw: bool,
    stdout: std::io::Stdout,
}

impl Output {
    fn line(&mut self, text: &[u8]) -> Result<(), LogsError> {
        let mut lock = self.stdout.lock();
        let written = if self.raw {
            lock.write_all(text).and_then(|()| lock.write_all(b"\n"))
        } else {
            lock.write_all(escape_controls(text).as_bytes()).and_then(|()| lock.write_all(b"\n"))
        };
        written.map_err(LogsError::Output)
    }

    fn flush(&mut self) -> Result<(), LogsError> {
        self.stdout.lock().flush().map_err(LogsError::Output)
    }
}

/// Lossy UTF-8 with control characters (but tab) written as `\xNN` or `\u{NN}`.
pub(crate) fn escape_controls(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn filters(args: &LogsArgs) -> String {
    let mut q = String::new();
    if let Some(c) = &args.contains {
        q.push_str("&contains=");
        q.push_str(&encode(c));
    }
    if let Some(r) = &args.regex {
        q.push_str("&regex=");
        q.push_str(&encode(r));
    }
    q
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls(b"\x1b[31mred\x1b[0m\ttab\x00"), "\\x1b[31mred\\x1b[0m\ttab\\x00");
        assert_eq!(escape_controls("c1 \u{9b}".as_bytes()), "c1 \\u{9b}");
        assert_eq!(escape_controls(b"bad \xff"), "bad \u{fffd}");
    }
}
