//! The log endpoints' query parameters (`logs::query`): arbitrary query strings, headers and
//! percent-encodings never panic, errors name a parameter, accepted values are within their
//! documented ranges, and well-formed queries give back exactly what they say.

use leakwatch::logs::query::{
    self, Format, StreamStart, DEFAULT_BACKLOG, DEFAULT_LINES, DEFAULT_MAX_BYTES, MAX_LINES, MAX_MAX_BYTES,
    MAX_PATTERN_LEN, MIN_MAX_BYTES,
};
use leakwatch::logs::ring::Cursor;
use percent_encoding::{percent_encode, NON_ALPHANUMERIC};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{check, ensure};

const PAGE_PARAMS: [&str; 8] =
    ["lines", "limit", "max_bytes", "before_seq", "after_seq", "contains", "regex", "format"];
const STREAM_PARAMS: [&str; 5] = ["backlog", "after_seq", "contains", "regex", "format"];
/// Names an error may carry besides the parameters: the query as a whole and the two headers.
const OTHER_NAMES: [&str; 3] = ["query", "Accept", "Last-Event-ID"];

/// A value that is valid for some parameter, out of range, or junk; sometimes percent-encoded.
fn value() -> impl Strategy<Value = String> {
    let raw = prop_oneof![
        (0u64..200_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        "[0-9]{1,6}(KiB|MiB|GiB|B|kB)?",
        Just("json".to_owned()),
        Just("text".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,8}",
        "(\\\\w|\\.|\\*|\\(|\\)|\\[|a|\\{9\\}|\\+|\\?|\\|){0,12}",
    ];
    (raw, 0u8..3).prop_map(|(v, how)| match how {
        0 => v,
        1 => percent_encode(v.as_bytes(), NON_ALPHANUMERIC).to_string(),
        _ => v.replace(' ', "+"),
    })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(PAGE_PARAMS.to_vec()).prop_map(str::to_owned),
        2 => proptest::sample::select(STREAM_PARAMS.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_%0-9A-F]{0,8}",
    ]
}

/// A query string of `name=value` pairs, or arbitrary text.
fn query_string() -> impl Strategy<Value = String> {
    let pairs = vec((name(), value(), any::<bool>()), 0..6).prop_map(|ps| {
        ps.into_iter()
            .map(|(n, v, eq)| if eq || !v.is_empty() { format!("{n}={v}") } else { n })
            .collect::<Vec<_>>()
            .join("&")
    });
    prop_oneof![4 => pairs, 1 => "\\PC{0,64}", 1 => "[%&=+a-z0-9]{0,40}"]
}

fn accept() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("text/plain;q=0.5, */*".to_owned()),
        Just("text/event-stream".to_owned()),
        "[a-z*/;=, .0-9]{0,30}",
        "\\PC{0,20}",
    ])
}

/// The error names a parameter: one the endpoint knows, one the query holds, or a header.
fn names_a_parameter(e: &query::ParamError, q: &str, known: &[&str]) -> Result<(), TestCaseError> {
    let decoded = |n: &str| percent_encoding::percent_decode_str(&n.replace('+', " ")).decode_utf8_lossy().into_owned();
    let in_query = q.split('&').any(|part| decoded(part.split_once('=').map_or(part, |(n, _)| n)) == e.param);
    ensure!(
        known.contains(&e.param.as_str()) || OTHER_NAMES.contains(&e.param.as_str()) || in_query,
        "error {e} names {:?}, which is neither a parameter nor in {q:?}",
        e.param
    );
    ensure!(!e.message.is_empty(), "error without a message for {:?}", e.param);
    Ok(())
}

#[test]
fn page_queries_never_panic_and_stay_in_range() {
    check("query::page_arbitrary", (query_string(), accept()), |(q, accept)| {
        match query::page_query(&q, accept.as_deref()) {
            Ok(p) => {
                ensure!((1..=MAX_LINES).contains(&p.limits.lines), "lines {} from {q:?}", p.limits.lines);
                ensure!(
                    (MIN_MAX_BYTES..=MAX_MAX_BYTES).contains(&p.limits.bytes),
                    "bytes {} from {q:?}",
                    p.limits.bytes
                );
                ensure!(p.cursor != Cursor::Before(0), "before_seq=0 accepted from {q:?}");
                for next_seq in [1, 2, u64::MAX] {
                    let _ = query::check_cursor(p.cursor, next_seq);
                }
                let _ = p.filter.accepts(q.as_bytes());
            }
            Err(e) => names_a_parameter(&e, &q, &PAGE_PARAMS)?,
        }
        Ok(())
    });
}

#[test]
fn stream_queries_and_resume_headers_never_panic_and_stay_in_range() {
    let last_event_id = proptest::option::of(prop_oneof![
        any::<u64>().prop_map(|n| n.to_string().into_bytes()),
        vec(any::<u8>(), 0..24),
    ]);
    check("query::stream_arbitrary", (query_string(), last_event_id, accept()), |(q, id, accept)| {
        match query::stream_query(&q, id.as_deref()) {
            Ok(s) => {
                if let StreamStart::Backlog(n) = s.start {
                    ensure!(n <= MAX_LINES, "backlog {n} from {q:?}");
                }
                if let (Some(id), StreamStart::After(n)) = (&id, s.start) {
                    // Decimal digits only (leading zeros allowed), as the header was sent.
                    let sent = std::str::from_utf8(id).ok().filter(|t| t.bytes().all(|b| b.is_ascii_digit()));
                    ensure!(sent.and_then(|t| t.parse::<u64>().ok()) == Some(n), "Last-Event-ID {id:?} became {n}");
                }
            }
            Err(e) => names_a_parameter(&e, &q, &STREAM_PARAMS)?,
        }
        let _ = query::accepts_event_stream(accept.as_deref());
        Ok(())
    });
}

#[test]
fn check_cursor_takes_any_cursor_and_ring_position() {
    // Edge values as often as arbitrary ones (a uniform u64 is never 0 or MAX).
    let seq = || prop_oneof![0u64..4, (u64::MAX - 3)..=u64::MAX, any::<u64>()];
    let cursor = prop_oneof![seq().prop_map(Cursor::After), seq().prop_map(Cursor::Before)];
    check("query::check_cursor", (cursor, seq()), |(cursor, next_seq)| {
        if let Err(e) = query::check_cursor(cursor, next_seq) {
            ensure!(e.param == "after_seq" || e.param == "before_seq", "{e}");
        }
        Ok(())
    });
}

#[test]
fn percent_encoded_values_decode_to_their_bytes() {
    let raw = vec(any::<u8>(), 0..64);
    check("query::percent_decoding", (raw, vec(any::<bool>(), 0..64)), |(raw, plain)| {
        // Any mix of encoded and plain bytes (plain only where that is unambiguous).
        let mut q = String::from("contains=");
        for (i, &b) in raw.iter().enumerate() {
            let keep = plain.get(i).copied().unwrap_or(false) && b.is_ascii_alphanumeric();
            if keep {
                q.push(b as char);
            } else {
                q.push_str(&format!("%{b:02X}"));
            }
        }
        let pairs = query::pairs(&q).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ensure!(pairs == vec![("contains".to_owned(), raw.clone())], "{q:?} decoded to {pairs:?}");
        match query::page_query(&q, None) {
            Ok(p) => ensure!(p.filter.accepts(&raw), "a needle does not match itself: {raw:?}"),
            Err(e) => ensure!(e.param == "contains" && (raw.is_empty() || raw.len() > MAX_PATTERN_LEN), "{e}"),
        }
        Ok(())
    });
}

/// A well-formed page query and what it must parse to.
#[derive(Debug, Clone)]
struct Page {
    lines: Option<(bool, usize)>,
    max_bytes: Option<(usize, u8)>,
    cursor: Option<Cursor>,
    format: Option<Format>,
    order: Vec<usize>,
}

fn page() -> impl Strategy<Value = Page> {
    let lines = proptest::option::of((any::<bool>(), 1..=MAX_LINES));
    let max_bytes = proptest::option::of((MIN_MAX_BYTES..=MAX_MAX_BYTES, 0u8..3));
    let cursor = proptest::option::of(prop_oneof![
        (1..=u64::MAX).prop_map(Cursor::Before),
        any::<u64>().prop_map(Cursor::After)
    ]);
    let format = proptest::option::of(prop_oneof![Just(Format::Json), Just(Format::Text)]);
    let order = Just((0..4).collect::<Vec<usize>>()).prop_shuffle();
    (lines, max_bytes, cursor, format, order).prop_map(|(lines, max_bytes, cursor, format, order)| Page {
        lines,
        max_bytes,
        cursor,
        format,
        order,
    })
}

#[test]
fn well_formed_page_queries_give_back_their_values() {
    check("query::page_roundtrip", page(), |p| {
        let mut parts: Vec<Option<String>> = vec![
            p.lines.map(|(limit, n)| format!("{}={n}", if limit { "limit" } else { "lines" })),
            p.max_bytes.map(|(n, unit)| match unit {
                // A whole KiB or MiB is written with its unit when it is one.
                1 if n % 1024 == 0 => format!("max_bytes={}KiB", n / 1024),
                2 if n % (1 << 20) == 0 => format!("max_bytes={}MiB", n >> 20),
                _ => format!("max_bytes={n}"),
            }),
            p.cursor.map(|c| match c {
                Cursor::Before(n) => format!("before_seq={n}"),
                Cursor::After(n) => format!("after_seq={n}"),
            }),
            p.format.map(|f| format!("format={}", if f == Format::Json { "json" } else { "text" })),
        ];
        let q: Vec<String> = p.order.iter().filter_map(|&i| parts[i].take()).collect();
        let q = q.join("&");
        let parsed = query::page_query(&q, None).map_err(|e| TestCaseError::fail(format!("{q:?}: {e}")))?;
        ensure!(parsed.limits.lines == p.lines.map_or(DEFAULT_LINES, |(_, n)| n), "lines of {q:?}");
        ensure!(parsed.limits.bytes == p.max_bytes.map_or(DEFAULT_MAX_BYTES, |(n, _)| n), "max_bytes of {q:?}");
        ensure!(parsed.cursor == p.cursor.unwrap_or(Cursor::Before(u64::MAX)), "cursor of {q:?}");
        ensure!(parsed.format == p.format.unwrap_or(Format::Json), "format of {q:?}");
        ensure!(parsed.filter.is_empty(), "no filter in {q:?}");
        Ok(())
    });
    check("query::stream_roundtrip", proptest::option::of(0..=MAX_LINES), |backlog| {
        let q = backlog.map(|n| format!("backlog={n}")).unwrap_or_default();
        let s = query::stream_query(&q, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ensure!(s.start == StreamStart::Backlog(backlog.unwrap_or(DEFAULT_BACKLOG)), "{q:?}: {:?}", s.start);
        Ok(())
    });
}

#[test]
fn out_of_range_integers_are_refused_naming_their_parameter() {
    let case = (proptest::sample::select(vec!["lines", "limit", "backlog", "max_bytes", "before_seq"]), any::<u64>());
    check("query::out_of_range", case, |(param, n)| {
        let q = format!("{param}={n}");
        let result = if param == "backlog" {
            query::stream_query(&q, None).map(|_| ())
        } else {
            query::page_query(&q, None).map(|_| ())
        };
        let (lo, hi) = match param {
            "max_bytes" => (MIN_MAX_BYTES as u64, MAX_MAX_BYTES as u64),
            "before_seq" => (1, u64::MAX),
            "backlog" => (0, MAX_LINES as u64),
            _ => (1, MAX_LINES as u64),
        };
        match result {
            Ok(()) => ensure!((lo..=hi).contains(&n), "{q} accepted outside {lo}..={hi}"),
            Err(e) => {
                ensure!(!(lo..=hi).contains(&n), "{q} refused: {e}");
                ensure!(e.param == param && e.message.contains(&format!("{lo}..={hi}")), "{e}");
            }
        }
        Ok(())
    });
}
