//! The log endpoints: `GET /logs` (the sources and their figures), `GET /logs/{source}` (a page
//! of lines) and `GET /logs/{source}/stream` (Server-Sent Events: a backlog, then live lines).

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::body::{Body, FrameStream};
use super::sse;
use crate::logs::query::{self, Filter, Format, PageQuery, ParamError, StreamStart};
use crate::logs::ring::{Cursor, LineRef, Page, ReadLimits, Subscription};
use crate::logs::{LogSource, LogSourceStats, LogSources};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
/// Most lines and text bytes one stream frame carries (bounds what a stalled client holds).
const FRAME_LIMITS: ReadLimits = ReadLimits { lines: 512, bytes: 64 << 10 };
/// Most memory that pages being built or sent may hold in all (the lines copied out of rings and
/// the bodies not yet written to their clients); beyond it a page request gets 503.
pub const PAGE_MEMORY_BUDGET: usize = 128 << 20;
/// A comment is sent on a stream idle this long, so dead clients and idle-timeout proxies notice.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// `GET /logs`: every source with its caps and figures.
pub(crate) fn list(sources: &LogSources) -> Response<Body> {
    #[derive(Serialize)]
    struct List {
        sources: Vec<SourceJson>,
    }
    let list = List { sources: sources.stats().iter().map(SourceJson::from).collect() };
    json(StatusCode::OK, &list)
}

/// `GET /logs/{source}`: a page of lines (newest by default), read and encoded off the runtime
/// thread, within the memory `budget` (see [`PAGE_MEMORY_BUDGET`]). The page's whole reservation
/// (the lines copied out and the largest body they can encode to) is taken at once, in turn:
/// pages wait in a first-come first-served queue (tokio's semaphore is fair) for up to
/// [`PAGE_QUEUE_WAIT`], so concurrent clients asking for the largest page are served one after
/// the other instead of starving each other; beyond the wait, 503 with `Retry-After`.
pub(crate) async fn page(
    source: Arc<LogSource>,
    query: &str,
    accept: Option<&str>,
    budget: Arc<Semaphore>,
) -> Response<Body> {
    let query = match query::page_query(query, accept) {
        Ok(q) => q,
        Err(e) if e.param == "Accept" => return error(StatusCode::NOT_ACCEPTABLE, &e.to_string(), Some(&e.param)),
        Err(e) => return bad_request(&e),
    };
    if let Err(e) = query::check_cursor(query.cursor, source.ring.stats().next_seq) {
        return bad_request(&e);
    }
    let (text_bytes, body_bytes) = reservation(&source, &query);
    let Ok(kib) = u32::try_from((text_bytes + body_bytes).div_ceil(1024)) else { return busy() };
    let permit = match tokio::time::timeout(PAGE_QUEUE_WAIT, budget.acquire_many_owned(kib)).await {
        Ok(Ok(permit)) => permit,
        _ => return busy(),
    };
    match tokio::task::spawn_blocking(move || encode_page(&source, &query, permit, text_bytes)).await {
        Ok(response) => response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("reading the page failed: {e}"), None),
    }
}

/// `GET /logs/{source}/stream`: Server-Sent Events. One event per line (`id` = its sequence
/// number), `missed` events when this subscriber fell behind the buffer, `reset` when a resume
/// point lies beyond the newest line (leakwatch restarted). Ends when leakwatch shuts down.
pub(crate) fn stream(
    source: &LogSource,
    query: &str,
    last_event_id: Option<&[u8]>,
    accept: Option<&str>,
    head: bool,
    shutdown: CancellationToken,
) -> Response<Body> {
    if !query::accepts_event_stream(accept) {
        let e = ParamError { param: "Accept".into(), message: "the stream is text/event-stream".into() };
        return error(StatusCode::NOT_ACCEPTABLE, &e.to_string(), Some(&e.param));
    }
    let query = match query::stream_query(query, last_event_id) {
        Ok(q) => q,
        Err(e) => return bad_request(&e),
    };
    let stats = source.ring.stats();
    let held_from = stats.first_seq - 1;
    let newest = stats.next_seq - 1;
    let (after, reset) = match query.start {
        StreamStart::After(n) if n > newest => (held_from, true),
        StreamStart::After(n) => (n, false),
        StreamStart::Backlog(n) => (newest.saturating_sub(n as u64).max(held_from), false),
    };
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    if head {
        return response;
    }
    let subscription = match source.ring.subscribe(after) {
        Ok(s) => s,
        Err(e) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, &format!("{}: {e}", source.name), None);
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
    };
    let mut first = sse::RETRY.to_vec();
    if reset {
        let data = serde_json::json!({
            "reason": "the resume point is beyond the newest line: leakwatch restarted; replaying the buffer",
            "next_seq": stats.next_seq,
        });
        sse::event(&mut first, "reset", None, data.to_string().as_bytes());
    }
    let state = StreamState { subscription, filter: query.filter, format: query.format, shutdown };
    *response.body_mut() = Body::Stream(FrameStream::new(async move { Some((Bytes::from(first), frames(state))) }));
    response
}

/// What a live stream keeps between frames.
struct StreamState {
    subscription: Subscription,
    filter: Filter,
    format: Format,
    shutdown: CancellationToken,
}

fn frames(state: StreamState) -> FrameStream {
    FrameStream::new(async move {
        let (frame, state) = next_frame(state).await?;
        Some((frame, frames(state)))
    })
}

/// Waits for lines (or the keep-alive interval) and encodes them as one frame; `None` ends the
/// stream (shutdown, or the ring is gone).
async fn next_frame(mut state: StreamState) -> Option<(Bytes, StreamState)> {
    // One deadline for the whole wait: lines that the filter drops do not postpone it.
    let keepalive = tokio::time::sleep(KEEPALIVE_INTERVAL);
    tokio::pin!(keepalive);
    loop {
        let page = tokio::select! {
            _ = state.shutdown.cancelled() => return None,
            page = state.subscription.next_page(FRAME_LIMITS) => page?,
            _ = &mut keepalive => return Some((Bytes::from_static(sse::KEEPALIVE), state)),
        };
        let mut out = Vec::with_capacity(page.text_bytes() + page.len() * 16 + 64);
        if page.missed > 0 {
            let data = serde_json::json!({ "missed": page.missed, "resume_seq": page.first_seq });
            sse::event(&mut out, "missed", None, data.to_string().as_bytes());
        }
        for line in page.iter().filter(|l| state.filter.accepts(l.text)) {
            match state.format {
                Format::Text => sse::event(&mut out, "message", Some(line.seq), line.text),
                Format::Json => {
                    let data = serde_json::to_vec(&LineJson::from(line)).unwrap_or_default();
                    sse::event(&mut out, "message", Some(line.seq), &data);
                }
            }
        }
        if !out.is_empty() {
            return Some((Bytes::from(out), state));
        }
    }
}

/// What a page reserves, bytes: the copy of its lines (at most what the ring holds now: a ring
/// that grows meanwhile gives a page cut a little short, which says so) and the largest body
/// they encode to (JSON escapes a byte to at most 6, plus each line's fields), both within
/// [`PAGE_MEMORY_BUDGET`].
fn reservation(source: &LogSource, query: &PageQuery) -> (usize, usize) {
    let stats = source.ring.stats();
    let text_bytes = query.limits.bytes.min(stats.bytes.max(1));
    let lines = query.limits.lines.min(stats.lines);
    let encoded = match query.format {
        Format::Json => text_bytes.saturating_mul(6).saturating_add(lines.saturating_mul(JSON_LINE_BYTES)),
        Format::Text => text_bytes.saturating_add(lines),
    };
    let body_bytes = encoded.min(query.limits.bytes).saturating_add(ENVELOPE_BYTES);
    let body_bytes = body_bytes.min(PAGE_MEMORY_BUDGET.saturating_sub(text_bytes));
    (text_bytes, body_bytes)
}

/// Reads the page and encodes it, keeping to `max_bytes` of encoded lines and to what `permit`
/// reserved (see [`reservation`]); the lines' copy is released once encoded, the body's share
/// is held until the body is sent.
fn encode_page(
    source: &LogSource,
    query: &PageQuery,
    mut permit: OwnedSemaphorePermit,
    text_bytes: usize,
) -> Response<Body> {
    let reserved = permit.num_permits() << 10;
    let accept = |text: &[u8]| query.filter.accepts(text);
    let filter: Option<&crate::logs::ring::LineFilter<'_>> = if query.filter.is_empty() { None } else { Some(&accept) };
    let limits = ReadLimits { bytes: text_bytes, ..query.limits };
    let page = source.ring.read(query.cursor, limits, filter);
    let newest_first = matches!(query.cursor, Cursor::Before(_));
    // Within the body's share of the reservation (only a page near the whole budget is cut by it).
    let body_cap = query.limits.bytes.min(reserved.saturating_sub(text_bytes + ENVELOPE_BYTES));
    let (kept, body_size) = match query.format {
        Format::Json => fitting(&page, body_cap, newest_first, 1, json_size),
        Format::Text => fitting(&page, body_cap, newest_first, 0, |l| l.text.len() + 1),
    };
    let body_size = body_size + ENVELOPE_BYTES;
    let cut_here = kept.len() < page.len();
    let meta = PageMeta::new(&page, &kept, cut_here);
    let lines = || page.iter().skip(kept.start).take(kept.len());
    let mut body = Vec::with_capacity(body_size);
    let content_type = match query.format {
        Format::Json => {
            body.extend_from_slice(b"{\"source\":");
            // Writing into a Vec cannot fail, and these shapes always serialize.
            let _ = serde_json::to_writer(&mut body, &source.name);
            body.extend_from_slice(b",\"lines\":[");
            for (i, line) in lines().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                let _ = serde_json::to_writer(&mut body, &LineJson::from(line));
            }
            body.extend_from_slice(b"],");
            let meta = serde_json::to_vec(&meta).unwrap_or_default();
            body.extend_from_slice(meta.strip_prefix(b"{").unwrap_or(&meta));
            JSON
        }
        Format::Text => {
            for line in lines() {
                body.extend_from_slice(line.text);
                body.push(b'\n');
            }
            TEXT
        }
    };
    drop(page);
    // Only the body's size stays reserved until it is sent.
    let keep = body_size.div_ceil(1024).min(permit.num_permits());
    drop(permit.split(permit.num_permits() - keep));
    let mut response = with_type(Response::new(Body::full_with(body, permit)), content_type);
    if query.format == Format::Text {
        meta.to_headers(response.headers_mut());
    }
    response
}

/// Room for the JSON around the lines (source name, figures).
const ENVELOPE_BYTES: usize = 512;
/// The most a line's JSON fields take besides its text (`{"seq":…,"ts":"…","text":"","cut":false},`).
const JSON_LINE_BYTES: usize = 96;
/// How long a page waits in the queue for its share of the budget before a 503.
pub(crate) const PAGE_QUEUE_WAIT: Duration = Duration::from_secs(10);

fn busy() -> Response<Body> {
    let message = format!(
        "busy: pages being built or sent held the whole {} MiB page budget for {}s; retry shortly",
        PAGE_MEMORY_BUDGET >> 20,
        PAGE_QUEUE_WAIT.as_secs()
    );
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, &message, None);
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The size of a line's JSON object.
fn json_size(line: LineRef<'_>) -> usize {
    let mut count = ByteCount(0);
    let _ = serde_json::to_writer(&mut count, &LineJson::from(line));
    count.0
}

/// An `io::Write` that only counts.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The page's lines that fit `budget` bytes once encoded (`size` each, `separator` bytes
/// between two): the newest when paging back, the oldest when paging forward. Returns their
/// index range and encoded size. Sizes are counted, not buffered.
fn fitting(
    page: &Page,
    budget: usize,
    newest_first: bool,
    separator: usize,
    size: impl Fn(LineRef<'_>) -> usize,
) -> (Range<usize>, usize) {
    let lines: Box<dyn Iterator<Item = LineRef<'_>>> =
        if newest_first { Box::new(page.iter().rev()) } else { Box::new(page.iter()) };
    let (mut total, mut kept) = (0usize, 0usize);
    for line in lines {
        let add = size(line) + if kept > 0 { separator } else { 0 };
        if total + add > budget {
            break;
        }
        total += add;
        kept += 1;
    }
    let n = page.len();
    (if newest_first { n - kept..n } else { 0..kept }, total)
}

/// The figures of a page, after its lines in JSON or as headers in text.
#[derive(Serialize)]
struct PageMeta {
    /// Lines returned.
    count: usize,
    /// The sequence number of the oldest line returned: pass it as `before_seq` for older lines.
    oldest_seq: Option<u64>,
    /// The sequence number of the newest line returned: pass it as `after_seq` for newer lines.
    newest_seq: Option<u64>,
    /// The byte cap (`max_bytes`) ended the page before the line limit did.
    truncated: bool,
    /// More matching lines lie beyond the page in the direction read.
    more: bool,
    /// With `after_seq`: lines after it that were evicted before this read.
    missed: u64,
    /// The oldest line the buffer holds.
    first_seq: u64,
    /// The sequence number the next line will get.
    next_seq: u64,
}

impl PageMeta {
    fn new(page: &Page, kept: &Range<usize>, cut_here: bool) -> Self {
        let seq = |i: usize| page.iter().nth(i).map(|l| l.seq);
        Self {
            count: kept.len(),
            oldest_seq: if kept.is_empty() { None } else { seq(kept.start) },
            newest_seq: if kept.is_empty() { None } else { seq(kept.end - 1) },
            truncated: page.truncated || cut_here,
            more: page.more || cut_here,
            missed: page.missed,
            first_seq: page.first_seq,
            next_seq: page.next_seq,
        }
    }

    fn to_headers(&self, headers: &mut hyper::HeaderMap) {
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        let seq = |s: Option<u64>| s.map(|n| n.to_string()).unwrap_or_default();
        set("x-leakwatch-count", self.count.to_string());
        set("x-leakwatch-oldest-seq", seq(self.oldest_seq));
        set("x-leakwatch-newest-seq", seq(self.newest_seq));
        set("x-leakwatch-truncated", self.truncated.to_string());
        set("x-leakwatch-more", self.more.to_string());
        set("x-leakwatch-missed", self.missed.to_string());
        set("x-leakwatch-first-seq", self.first_seq.to_string());
        set("x-leakwatch-next-seq", self.next_seq.to_string());
    }
}

/// One line in JSON: sequence number, RFC 3339 time (µs), text (lossy UTF-8), cut flag.
#[derive(Serialize)]
struct LineJson<'a> {
    seq: u64,
    ts: Rfc3339Micros,
    text: std::borrow::Cow<'a, str>,
    cut: bool,
}

impl<'a> From<LineRef<'a>> for LineJson<'a> {
    fn from(line: LineRef<'a>) -> Self {
        Self { seq: line.seq, ts: Rfc3339Micros(line.ts_us), text: String::from_utf8_lossy(line.text), cut: line.cut }
    }
}

/// Microseconds since the epoch, written as an RFC 3339 UTC timestamp.
struct Rfc3339Micros(u64);

impl Serialize for Rfc3339Micros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(self.0)))
    }
}

/// A source in `GET /logs`.
#[derive(Serialize)]
struct SourceJson {
    name: String,
    kind: &'static str,
    path: Option<String>,
    lines: usize,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    max_line_bytes: usize,
    max_subscribers: usize,
    subscribers: usize,
    first_seq: u64,
    next_seq: u64,
    lines_total: u64,
    bytes_read: u64,
    lines_evicted: u64,
    lines_cut: u64,
    lines_missed_by_subscribers: u64,
    lines_lost_in_truncation: u64,
    bytes_lost: u64,
    /// Losses of unknown size by reason (`rotation`, `truncation`, `overflow`): while any is
    /// above 0, the two counts above are lower bounds.
    unknown_losses: crate::logs::UnknownLosses,
    rotations: u64,
    truncations: u64,
    read_errors: u64,
    refusals: u64,
    /// Why the source's file is refused now (see `logs::guard`).
    refused: Option<String>,
    /// Why no file is read now (missing, unreadable, refused); `null` while one is followed.
    problem: Option<String>,
}

impl From<&LogSourceStats> for SourceJson {
    fn from(s: &LogSourceStats) -> Self {
        Self {
            name: s.name.clone(),
            kind: s.kind,
            path: s.pattern.clone(),
            lines: s.ring.lines,
            bytes: s.ring.bytes,
            max_lines: s.limits.max_lines,
            max_bytes: s.limits.max_bytes,
            max_line_bytes: s.limits.max_line_bytes,
            max_subscribers: s.limits.max_subscribers,
            subscribers: s.ring.subscribers,
            first_seq: s.ring.first_seq,
            next_seq: s.ring.next_seq,
            lines_total: s.ring.lines_total,
            bytes_read: s.bytes_read,
            lines_evicted: s.ring.evicted_total,
            lines_cut: s.ring.cut_total,
            lines_missed_by_subscribers: s.ring.lagged_total,
            lines_lost_in_truncation: s.lost_lines,
            bytes_lost: s.lost_bytes,
            unknown_losses: s.unknown_losses,
            rotations: s.rotations,
            truncations: s.truncations,
            read_errors: s.read_errors,
            refusals: s.refusals,
            refused: s.refused.clone(),
            problem: s.problem.clone(),
        }
    }
}

/// An error as JSON: `{"error": "...", "param": "..."}`.
pub(crate) fn error(status: StatusCode, message: &str, param: Option<&str>) -> Response<Body> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        param: Option<&'a str>,
    }
    json(status, &Error { error: message, param })
}

fn bad_request(e: &ParamError) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, &e.to_string(), Some(&e.param))
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut r = with_type(Response::new(Body::full(body)), JSON);
    *r.status_mut() = status;
    r
}

fn with_type(mut r: Response<Body>, content_type: &'static str) -> Response<Body> {
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::RingLimits;
    use crate::logs::SourceKind;
    use http_body_util::BodyExt;

    fn source(lines: &[&str]) -> Arc<LogSource> {
        let limits = RingLimits { max_lines: 100, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 4 };
        let s = Arc::new(LogSource::new("app", SourceKind::Stdout, limits));
        for l in lines {
            s.ring.push(l.as_bytes(), false);
        }
        s
    }

    fn budget() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(PAGE_MEMORY_BUDGET >> 10))
    }

    async fn body(r: Response<Body>) -> (StatusCode, serde_json::Value) {
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_byte_cap_counts_encoded_lines_and_keeps_the_newest() {
        let s = source(&["aaaa", "bbbb", "cccc"]);
        let (_, v) = body(page(s.clone(), "", None, budget()).await).await;
        let one = serde_json::to_string(&v["lines"][0]).unwrap().len();
        // Room for two encoded lines and their comma, not three.
        let (_, v) = body(page(s.clone(), &format!("max_bytes={}", 2 * one + 1), None, budget()).await).await;
        let texts: Vec<&str> = v["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
        assert_eq!(texts, ["bbbb", "cccc"]);
        assert_eq!(
            (v["truncated"].as_bool(), v["more"].as_bool(), v["oldest_seq"].as_u64()),
            (Some(true), Some(true), Some(2))
        );
        let (_, v) = body(page(s, &format!("after_seq=0&max_bytes={}", 2 * one + 1), None, budget()).await).await;
        assert_eq!(v["newest_seq"].as_u64(), Some(2), "paging forward keeps the oldest");
    }

    #[tokio::test]
    async fn json_escapes_control_bytes_and_shows_invalid_utf8_lossily() {
        let s = source(&[]);
        s.ring.push(b"\x1b[31mred\x00\xff\"}", false);
        let (_, v) = body(page(s, "", None, budget()).await).await;
        assert_eq!(v["lines"][0]["text"].as_str(), Some("\u{1b}[31mred\u{0}\u{fffd}\"}"));
        assert!(v["lines"][0]["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn pages_take_their_memory_from_the_budget_and_a_spent_budget_is_a_503() {
        let s = source(&["aaaa", "bbbb"]);
        let budget = Arc::new(Semaphore::new(4));
        let held = page(s.clone(), "", None, budget.clone()).await;
        assert_eq!(held.status(), StatusCode::OK);
        assert!(budget.available_permits() < 4, "the unsent body keeps its reservation");
        // A spent budget: the page waits its turn, then gets 503 (the wait under paused time).
        tokio::time::pause();
        let (status, v) = body(page(s.clone(), "", None, Arc::new(Semaphore::new(0))).await).await;
        tokio::time::resume();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(v["error"].as_str().unwrap().starts_with("busy"), "{v}");
        drop(held);
        assert_eq!(budget.available_permits(), 4, "released with the body");
    }

    #[tokio::test]
    async fn pages_queue_for_the_budget_in_turn_and_keep_only_their_body() {
        let s = source(&["aaaa", "bbbb"]);
        let budget = Arc::new(Semaphore::new(4));
        let all = budget.clone().acquire_many_owned(4).await.unwrap();
        let waiting = tokio::spawn(page(s.clone(), "", None, budget.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the page waits for its turn");
        drop(all);
        let held = waiting.await.unwrap();
        assert_eq!(held.status(), StatusCode::OK, "served once the budget is back");
        assert_eq!(budget.available_permits(), 3, "only the body's KiB stays reserved until it is sent");
        drop(held);
        assert_eq!(budget.available_permits(), 4);
    }

    #[tokio::test]
    async fn a_bad_parameter_is_a_400_naming_it() {
        let (status, v) = body(page(source(&["a"]), "lines=0", None, budget()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["param"], "lines");
        let (status, v) = body(page(source(&["a"]), "after_seq=5", None, budget()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(v["error"].as_str().unwrap().contains("beyond the newest line (1)"), "{v}");
    }
}
