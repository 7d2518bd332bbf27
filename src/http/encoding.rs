//! Content negotiation for `/metrics`: whether a client takes gzip (`Accept-Encoding`, RFC 9110
//! §12.5.3), the compression itself, and whether it asks for the detail families (`?detail=1`).

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;

/// Whether an `Accept-Encoding` value accepts gzip: `gzip` (or `x-gzip`), or `*` when gzip is not
/// named, with a q-value above 0. A missing or malformed header means identity.
pub(crate) fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// Whether a `/metrics` query asks for the detail families: `detail=1` or `detail=true` (`0`,
/// `false` or no `detail` parameter: the default families). Other parameters are ignored, as
/// Prometheus may add its own; a `detail` value that is neither is refused with a message.
pub(crate) fn detail(query: &str) -> Result<bool, String> {
    let mut detail = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "detail" {
            continue;
        }
        detail = match value {
            "1" | "true" => true,
            "0" | "false" => false,
            other => {
                let shown: String = other.chars().take(32).collect();
                return Err(format!("detail: expected 1, true, 0 or false, got {shown:?}\n"));
            }
        };
    }
    Ok(detail)
}

/// `bytes` as one gzip member.
pub(crate) fn gzip(bytes: &[u8]) -> Bytes {
    // Level 6: 12 % smaller than level 1 on a default scrape; the cached part is compressed once per sample.
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 4 + 64), Compression::default());
    // Writing to a Vec cannot fail.
    let out = enc.write_all(bytes).and_then(|()| enc.finish()).unwrap_or_default();
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn gzip_is_accepted_as_clients_ask_for_it() {
        for yes in ["gzip", "gzip, deflate", "deflate, GZIP;q=0.5", "x-gzip", "*", "br;q=1, *;q=0.1", "gzip;q=1.0"] {
            assert!(accepts_gzip(Some(yes)), "{yes}");
        }
        for no in ["", "identity", "deflate, br", "gzip;q=0", "*;q=0", "gzip;q=0, *", "gzip;q=0.0"] {
            assert!(!accepts_gzip(Some(no)), "{no}");
        }
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn detail_is_asked_with_one_or_true() {
        for (query, want) in [("", false), ("detail=1", true), ("x=y&detail=true", true), ("detail=0", false)] {
            assert_eq!(detail(query), Ok(want), "{query}");
        }
        assert_eq!(detail("detail=false&other"), Ok(false));
        let err = detail("detail=yes").expect_err("refused");
        assert!(err.starts_with("detail:") && err.contains("\"yes\""), "{err}");
    }

    #[test]
    fn a_compressed_body_decodes_to_itself() {
        let text = "leakwatch_build_info{version=\"x\"} 1\n".repeat(100);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gzip(text.as_bytes())[..]).read_to_string(&mut plain).expect("gzip");
        assert_eq!(plain, text);
    }
}
