//! The query parameters of the log endpoints, parsed and checked. Pure: no I/O, no HTTP types.
//!
//! Every problem is a [`ParamError`] that names the parameter and what it accepts; unknown and
//! repeated parameters are errors too, so a typo never silently changes what a reader gets.

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};

use super::ring::{Cursor, ReadLimits};

/// `lines` (or `limit`) when not given.
pub const DEFAULT_LINES: usize = 100;
/// The largest `lines` / `limit` / `backlog`.
pub const MAX_LINES: usize = 100_000;
/// `max_bytes` when not given: the most body bytes of one response.
pub const DEFAULT_MAX_BYTES: usize = 10 << 20;
/// The largest `max_bytes` (a response is built in memory: this bounds what one request costs).
pub const MAX_MAX_BYTES: usize = 64 << 20;
/// The smallest `max_bytes`.
pub const MIN_MAX_BYTES: usize = 1;
/// `backlog` when not given: recent lines sent to a new subscriber before live ones.
pub const DEFAULT_BACKLOG: usize = 100;
/// The longest `contains` or `regex` value.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Compiled-size cap of a `regex`, so a pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A bad parameter: its name and what is wrong, e.g. `lines: must be an integer 1..=100000, got "0"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct ParamError {
    /// The parameter (or header) name.
    pub param: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl ParamError {
    fn new(param: &str, message: impl Into<String>) -> Self {
        Self { param: param.to_owned(), message: message.into() }
    }
}

/// How a response is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/plain`: one line per line, figures in headers.
    Text,
}

/// Keeps the lines that contain a substring and/or match a regex (both, when both are given).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    contains: Option<memmem::Finder<'static>>,
    regex: Option<Regex>,
}

impl Filter {
    /// Whether the filter keeps every line.
    pub fn is_empty(&self) -> bool {
        self.contains.is_none() && self.regex.is_none()
    }

    /// Whether `text` passes.
    pub fn accepts(&self, text: &[u8]) -> bool {
        self.contains.as_ref().is_none_or(|f| f.find(text).is_some())
            && self.regex.as_ref().is_none_or(|r| r.is_match(text))
    }
}

/// `GET /logs/{source}`: which lines, how many, how encoded.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// Where the page starts: the newest lines by default, `before_seq` pages back, `after_seq` forward.
    pub cursor: Cursor,
    /// At most `lines` lines and `max_bytes` body bytes.
    pub limits: ReadLimits,
    /// `contains` / `regex`.
    pub filter: Filter,
    /// `format` (or the `Accept` header).
    pub format: Format,
}

/// Where a live stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// After this sequence number (`Last-Event-ID` or `after_seq`: resume with no gap or duplicate).
    After(u64),
    /// With the newest `n` lines held, then live ones.
    Backlog(usize),
}

/// `GET /logs/{source}/stream`.
#[derive(Debug, Clone)]
pub struct StreamQuery {
    /// Resume point or backlog.
    pub start: StreamStart,
    /// `contains` / `regex`.
    pub(crate) filter: Filter,
    /// `format`: `text` sends each line as the event data, `json` as an object with seq and time.
    pub(crate) format: Format,
}

/// The decoded `name=value` pairs of a query string, in order. `+` is a space; `%XX` escapes are
/// decoded to bytes (values need not be UTF-8; names must be).
pub fn pairs(query: &str) -> Result<Vec<(String, Vec<u8>)>, ParamError> {
    let decode = |s: &str| -> Vec<u8> {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).collect()
    };
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = String::from_utf8(decode(name))
            .map_err(|_| ParamError::new("query", format!("parameter name {name:?} is not UTF-8")))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ParamError::new(&name, "given more than once"));
        }
        out.push((name, decode(value)));
    }
    Ok(out)
}

/// Parses the parameters of `GET /logs/{source}`; `accept` is the request's `Accept` header.
pub fn page_query(query: &str, accept: Option<&str>) -> Result<PageQuery, ParamError> {
    let params =
        Params::new(query, &["lines", "limit", "max_bytes", "before_seq", "after_seq", "contains", "regex", "format"])?;
    let lines = match (params.get("lines"), params.get("limit")) {
        (Some(_), Some(_)) => return Err(ParamError::new("limit", "is another name for lines; give only one")),
        (Some(v), None) => int("lines", v, 1, MAX_LINES as u64)? as usize,
        (None, Some(v)) => int("limit", v, 1, MAX_LINES as u64)? as usize,
        (None, None) => DEFAULT_LINES,
    };
    let bytes = match params.get("max_bytes") {
        Some(v) => bytes("max_bytes", v)?,
        None => DEFAULT_MAX_BYTES,
    };
    let cursor = match (params.get("before_seq"), params.get("after_seq")) {
        (Some(_), Some(_)) => {
            return Err(ParamError::new("after_seq", "cannot be combined with before_seq: page one way at a time"))
        }
        (Some(v), None) => Cursor::Before(int("before_seq", v, 1, u64::MAX)?),
        (None, Some(v)) => Cursor::After(int("after_seq", v, 0, u64::MAX)?),
        (None, None) => Cursor::Before(u64::MAX),
    };
    Ok(PageQuery {
        cursor,
        limits: ReadLimits { lines, bytes },
        filter: filter(&params)?,
        format: format(&params, accept, Format::Json)?,
    })
}

/// Parses the parameters of `GET /logs/{source}/stream`; `last_event_id` is the `Last-Event-ID`
/// header, which an `EventSource` sends when it reconnects.
pub fn stream_query(query: &str, last_event_id: Option<&[u8]>) -> Result<StreamQuery, ParamError> {
    let params = Params::new(query, &["backlog", "after_seq", "contains", "regex", "format"])?;
    let start = match (last_event_id, params.get("after_seq"), params.get("backlog")) {
        (Some(_), Some(_), _) => {
            return Err(ParamError::new("after_seq", "cannot be combined with the Last-Event-ID header"))
        }
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(ParamError::new("backlog", "cannot be combined with a resume point (after_seq, Last-Event-ID)"))
        }
        (Some(id), None, None) => StreamStart::After(int("Last-Event-ID", id, 0, u64::MAX)?),
        (None, Some(v), None) => StreamStart::After(int("after_seq", v, 0, u64::MAX)?),
        (None, None, Some(v)) => StreamStart::Backlog(int("backlog", v, 0, MAX_LINES as u64)? as usize),
        (None, None, None) => StreamStart::Backlog(DEFAULT_BACKLOG),
    };
    let format = match params.get("format") {
        Some(v) => format_value(v)?,
        None => Format::Text,
    };
    Ok(StreamQuery { start, filter: filter(&params)?, format })
}

/// Checks a page cursor against the ring: a sequence number beyond the newest line never existed
/// (a client that kept one across a leakwatch restart, whose numbering starts again at 1).
pub fn check_cursor(cursor: Cursor, next_seq: u64) -> Result<(), ParamError> {
    let beyond = |param: &str, n: u64, newest: u64| {
        ParamError::new(
            param,
            format!(
                "{n} is beyond the newest line ({newest}); sequence numbers start again at 1 when leakwatch restarts"
            ),
        )
    };
    // A ring starts at 1; `saturating_sub` keeps a caller's 0 from underflowing (a fuzz finding).
    let newest = next_seq.saturating_sub(1);
    match cursor {
        Cursor::After(n) if n >= next_seq => Err(beyond("after_seq", n, newest)),
        Cursor::Before(n) if n != u64::MAX && n > next_seq => Err(beyond("before_seq", n, newest)),
        _ => Ok(()),
    }
}

/// Whether an `Accept` header admits `text/event-stream` (absent, `*/*` and `text/*` do).
pub fn accepts_event_stream(accept: Option<&str>) -> bool {
    accept.is_none_or(|a| media_types(a).any(|m| matches!(m.as_str(), "text/event-stream" | "text/*" | "*/*")))
}

/// The parameters of one request, checked against the names an endpoint accepts.
struct Params {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Params {
    fn new(query: &str, known: &[&str]) -> Result<Self, ParamError> {
        let pairs = pairs(query)?;
        if let Some((name, _)) = pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            return Err(ParamError::new(name, format!("unknown parameter; accepted: {}", known.join(", "))));
        }
        Ok(Self { pairs })
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// A decimal integer in `min..=max` (digits only: no sign, exponent or unit).
fn int(param: &str, value: &[u8], min: u64, max: u64) -> Result<u64, ParamError> {
    let bad = || ParamError::new(param, format!("must be an integer {min}..={max}, got {:?}", lossy(value)));
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let n: u64 = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(bad())
    }
}

/// A byte count (`1048576`, `512KiB`, `4MiB`) in `MIN_MAX_BYTES..=MAX_MAX_BYTES`.
fn bytes(param: &str, value: &[u8]) -> Result<usize, ParamError> {
    let bad = |why: &str| {
        ParamError::new(
            param,
            format!(
                "must be a byte count {MIN_MAX_BYTES}..={MAX_MAX_BYTES} (e.g. 65536 or 4MiB){why}, got {:?}",
                lossy(value)
            ),
        )
    };
    let text = std::str::from_utf8(value).map_err(|_| bad(""))?;
    if text.trim() != text || text.is_empty() {
        return Err(bad(""));
    }
    let n = crate::units::parse_bytes(text).map_err(|_| bad(""))?;
    if (MIN_MAX_BYTES as u64..=MAX_MAX_BYTES as u64).contains(&n) {
        Ok(n as usize)
    } else {
        Err(bad(""))
    }
}

fn filter(params: &Params) -> Result<Filter, ParamError> {
    let mut f = Filter::default();
    if let Some(needle) = params.get("contains") {
        if needle.is_empty() || needle.len() > MAX_PATTERN_LEN {
            return Err(ParamError::new(
                "contains",
                format!("must be 1..={MAX_PATTERN_LEN} bytes after decoding, got {}", needle.len()),
            ));
        }
        f.contains = Some(memmem::Finder::new(needle).into_owned());
    }
    if let Some(pattern) = params.get("regex") {
        let pattern = std::str::from_utf8(pattern).map_err(|_| ParamError::new("regex", "is not UTF-8"))?;
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
            return Err(ParamError::new(
                "regex",
                format!("must be 1..={MAX_PATTERN_LEN} bytes after decoding, got {}", pattern.len()),
            ));
        }
        let re = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| ParamError::new("regex", format!("not a valid regex: {}", one_line(&e.to_string()))))?;
        f.regex = Some(re);
    }
    Ok(f)
}

fn format(params: &Params, accept: Option<&str>, default: Format) -> Result<Format, ParamError> {
    if let Some(v) = params.get("format") {
        return format_value(v);
    }
    let Some(accept) = accept else { return Ok(default) };
    let mut json = false;
    let mut text = false;
    let mut any = false;
    for m in media_types(accept) {
        match m.as_str() {
            "application/json" | "application/*" => json = true,
            "text/plain" | "text/*" => text = true,
            "*/*" => any = true,
            _ => {}
        }
    }
    match (json, text, any) {
        (true, _, _) => Ok(Format::Json),
        (false, true, _) => Ok(Format::Text),
        (false, false, true) => Ok(default),
        (false, false, false) => Err(ParamError::new(
            "Accept",
            format!("{accept:?} admits neither application/json nor text/plain (or use ?format=json|text)"),
        )),
    }
}

fn format_value(v: &[u8]) -> Result<Format, ParamError> {
    match v {
        b"json" => Ok(Format::Json),
        b"text" => Ok(Format::Text),
        _ => Err(ParamError::new("format", format!("must be json or text, got {:?}", lossy(v)))),
    }
}

/// The media types of an `Accept` header, lowercased, parameters (`;q=…`) dropped.
fn media_types(accept: &str) -> impl Iterator<Item = String> + '_ {
    accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn lossy(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: &str) -> Result<PageQuery, ParamError> {
        page_query(q, None)
    }

    fn err(q: &str) -> ParamError {
        page(q).unwrap_err()
    }

    #[test]
    fn defaults_are_the_newest_hundred_lines_as_json() {
        let q = page("").unwrap();
        assert_eq!(q.cursor, Cursor::Before(u64::MAX));
        assert_eq!(q.limits, ReadLimits { lines: DEFAULT_LINES, bytes: DEFAULT_MAX_BYTES });
        assert!(q.filter.is_empty());
        assert_eq!(q.format, Format::Json);
    }

    #[test]
    fn every_parameter_parses() {
        let q = page("lines=5&max_bytes=4KiB&before_seq=77&contains=ERR&regex=%5Ex%2B&format=text").unwrap();
        assert_eq!(q.limits, ReadLimits { lines: 5, bytes: 4096 });
        assert_eq!(q.cursor, Cursor::Before(77));
        assert_eq!(q.format, Format::Text);
        assert!(q.filter.accepts(b"xx ERR") && !q.filter.accepts(b"xx err") && !q.filter.accepts(b"y ERR"));
        let q = page("limit=3&after_seq=0").unwrap();
        assert_eq!((q.limits.lines, q.cursor), (3, Cursor::After(0)));
        assert!(page("contains=a+b").unwrap().filter.accepts(b"xa b"));
        assert!(page("contains=%FF").unwrap().filter.accepts(b"\x01\xff"), "raw bytes are matched");
    }

    #[test]
    fn integers_are_checked_and_the_message_names_the_range() {
        for bad in ["0", "-1", "10abc", "1e9", "", "100001", "99999999999999999999999"] {
            let e = err(&format!("lines={bad}"));
            assert_eq!(e.param, "lines", "{bad}");
            assert!(e.message.contains("1..=100000"), "{e}");
        }
        assert!(err("before_seq=0").to_string().starts_with("before_seq: must be an integer 1..="));
        assert_eq!(err("after_seq=18446744073709551616").param, "after_seq");
        assert_eq!(page("after_seq=18446744073709551615").unwrap().cursor, Cursor::After(u64::MAX));
    }

    #[test]
    fn max_bytes_is_a_bounded_byte_count() {
        for bad in ["0", "65MiB", "1e6", "-5", "lots", " 5", "67108865"] {
            let e = err(&format!("max_bytes={bad}"));
            assert_eq!(e.param, "max_bytes", "{bad}");
            assert!(e.message.contains("1..=67108864"), "{e}");
        }
        assert_eq!(page("max_bytes=64MiB").unwrap().limits.bytes, 64 << 20);
        assert_eq!(page("max_bytes=1").unwrap().limits.bytes, 1);
    }

    #[test]
    fn conflicting_unknown_and_repeated_parameters_are_refused() {
        assert_eq!(err("lines=1&limit=2").param, "limit");
        assert_eq!(err("before_seq=3&after_seq=1").param, "after_seq");
        let e = err("line=3");
        assert_eq!(e.param, "line");
        assert!(e.message.contains("accepted: lines, limit"), "{e}");
        assert_eq!(err("lines=1&lines=2").to_string(), "lines: given more than once");
        assert_eq!(err("format=xml").param, "format");
        assert_eq!(err("%FF=1").param, "query");
    }

    #[test]
    fn patterns_are_bounded_and_checked() {
        assert_eq!(err("regex=(unclosed").param, "regex");
        assert!(err("regex=(unclosed").message.contains("not a valid regex"));
        assert_eq!(err(&format!("regex={}", "a".repeat(1025))).param, "regex");
        assert_eq!(err(&format!("contains={}", "a".repeat(1025))).param, "contains");
        assert_eq!(err("contains=").param, "contains");
        assert_eq!(err("regex=%FF").message, "is not UTF-8");
        // Fits the length cap but compiles past the size limit.
        assert!(err("regex=%5Cw%7B1000%7D%5Cw%7B1000%7D").message.contains("not a valid regex"));
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        let f = |accept| page_query("", Some(accept)).map(|q| q.format);
        assert_eq!(f("text/plain"), Ok(Format::Text));
        assert_eq!(f("application/json, text/plain;q=0.5"), Ok(Format::Json));
        assert_eq!(f("*/*"), Ok(Format::Json));
        assert_eq!(f("image/png").unwrap_err().param, "Accept");
        assert_eq!(page_query("format=json", Some("text/plain")).unwrap().format, Format::Json);
        assert!(accepts_event_stream(None) && accepts_event_stream(Some("text/event-stream")));
        assert!(!accepts_event_stream(Some("application/json")));
    }

    #[test]
    fn cursors_beyond_the_newest_line_are_refused() {
        assert!(check_cursor(Cursor::After(9), 10).is_ok());
        let e = check_cursor(Cursor::After(10), 10).unwrap_err();
        assert!(e.to_string().starts_with("after_seq: 10 is beyond the newest line (9)"), "{e}");
        assert!(check_cursor(Cursor::Before(10), 10).is_ok());
        assert_eq!(check_cursor(Cursor::Before(11), 10).unwrap_err().param, "before_seq");
        assert!(check_cursor(Cursor::Before(u64::MAX), 1).is_ok());
        // Fuzz finding: next_seq 0 underflowed (a debug-build panic).
        assert_eq!(check_cursor(Cursor::After(0), 0).unwrap_err().param, "after_seq");
        assert_eq!(check_cursor(Cursor::Before(1), 0).unwrap_err().param, "before_seq");
    }

    #[test]
    fn stream_starts_from_a_backlog_or_a_resume_point() {
        assert_eq!(stream_query("", None).unwrap().start, StreamStart::Backlog(DEFAULT_BACKLOG));
        assert_eq!(stream_query("backlog=0", None).unwrap().start, StreamStart::Backlog(0));
        assert_eq!(stream_query("", Some(b"42")).unwrap().start, StreamStart::After(42));
        assert_eq!(stream_query("after_seq=7", None).unwrap().start, StreamStart::After(7));
        assert_eq!(stream_query("", None).unwrap().format, Format::Text);
        assert_eq!(stream_query("format=json", None).unwrap().format, Format::Json);
        for (q, id, param) in [
            ("after_seq=1", Some(&b"2"[..]), "after_seq"),
            ("backlog=1", Some(&b"2"[..]), "backlog"),
            ("backlog=100001", None, "backlog"),
            ("", Some(&b"-1"[..]), "Last-Event-ID"),
            ("", Some(&b"abc"[..]), "Last-Event-ID"),
            ("lines=3", None, "lines"),
        ] {
            assert_eq!(stream_query(q, id).unwrap_err().param, param, "{q} {id:?}");
        }
    }
}
