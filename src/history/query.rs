//! The parameters of `GET /api/history`, parsed and range-checked. Pure: no I/O, no HTTP types.
//! Unknown and repeated parameters are errors that name the parameter.

use crate::logs::query::{pairs, ParamError};

/// Points in a page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` (a page is built in memory: this bounds what one request costs).
pub(crate) const MAX_LIMIT: usize = 5000;

/// Which points a page holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HistoryQuery {
    /// Only points taken at or after this time, Unix seconds.
    pub(crate) since: Option<f64>,
    /// Only points after this snapshot sequence number (the cursor of the previous page).
    pub(crate) after_seq: Option<u64>,
    /// At most this many points, oldest first.
    pub(crate) limit: usize,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self { since: None, after_seq: None, limit: DEFAULT_LIMIT }
    }
}

fn err(param: &str, message: impl Into<String>) -> ParamError {
    ParamError { param: param.to_owned(), message: message.into() }
}

/// Parses the query string of `GET /api/history`: `since`, `after_seq` (or its alias `cursor`),
/// `limit`.
pub(crate) fn history_query(query: &str) -> Result<HistoryQuery, ParamError> {
    let mut q = HistoryQuery::default();
    for (name, value) in pairs(query)? {
        let text = String::from_utf8_lossy(&value);
        match name.as_str() {
            "since" => {
                let v = text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
                q.since = Some(v.ok_or_else(|| err("since", format!("must be Unix seconds (≥ 0), got {text:?}")))?);
            }
            "after_seq" | "cursor" => {
                if q.after_seq.is_some() {
                    return Err(err(&name, "cursor is another name for after_seq; give only one"));
                }
                let v = text.parse::<u64>().map_err(|_| err(&name, format!("must be an integer ≥ 0, got {text:?}")))?;
                q.after_seq = Some(v);
            }
            "limit" => {
                let v = text.parse::<usize>().ok().filter(|v| (1..=MAX_LIMIT).contains(v));
                q.limit = v.ok_or_else(|| err("limit", format!("must be an integer 1..={MAX_LIMIT}, got {text:?}")))?;
            }
            _ => return Err(err(&name, "unknown parameter; known: since, after_seq (or cursor), limit")),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_parsed_and_every_bad_one_is_named() {
        assert_eq!(history_query("").unwrap(), HistoryQuery::default());
        let q = history_query("since=1700000000.5&after_seq=42&limit=10").unwrap();
        assert_eq!(q, HistoryQuery { since: Some(1_700_000_000.5), after_seq: Some(42), limit: 10 });
        assert_eq!(history_query("cursor=3").unwrap().after_seq, Some(3));
        for (query, param) in [
            ("limit=0", "limit"),
            ("limit=5001", "limit"),
            ("limit=x", "limit"),
            ("since=-1", "since"),
            ("since=NaN", "since"),
            ("since=inf", "since"),
            ("after_seq=-3", "after_seq"),
            ("after_seq=1&cursor=2", "cursor"),
            ("limit=1&limit=2", "limit"),
            ("lines=3", "lines"),
        ] {
            assert_eq!(history_query(query).unwrap_err().param, param, "{query}");
        }
    }
}
