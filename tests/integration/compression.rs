//! `/metrics` with `Accept-Encoding: gzip`: a gzip body (the cached render and the fresh HTTP
//! families as two members) that decodes to what a plain scrape serves, and is much smaller.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::http::get;
use crate::support::Leakwatch;

fn ready(lw: &Leakwatch) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lw.get("/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "not ready within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body without the `leakwatch_http_*` families, which are rendered fresh on every request.
fn without_http_families(text: &str) -> String {
    text.lines().filter(|l| !l.contains("leakwatch_http_")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_gzip_scrape_decodes_to_the_plain_body_and_is_far_smaller() {
    let lw = Leakwatch::start(&[]);
    ready(&lw);
    for _ in 0..50 {
        let before = get(lw.addr, "/metrics", &[]);
        let zipped = get(lw.addr, "/metrics", &[("Accept-Encoding", "gzip, deflate")]);
        let after = get(lw.addr, "/metrics", &[]);
        assert_eq!((before.status, zipped.status), (200, 200));
        assert_eq!(before.header("content-encoding"), None, "identity unless asked");
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
        let mut decoded = String::new();
        flate2::read::MultiGzDecoder::new(&zipped.body[..]).read_to_string(&mut decoded).expect("a gzip stream");
        assert!(decoded.contains("leakwatch_http_requests_total"), "the fresh HTTP families are in the second member");
        let (plain, plain_after) = (without_http_families(&before.text()), without_http_families(&after.text()));
        if plain != plain_after {
            continue; // a new sample landed between the scrapes: try again
        }
        assert_eq!(without_http_families(&decoded), plain, "the same exposition, compressed");
        eprintln!("plain {} bytes, gzip {} bytes", before.body.len(), zipped.body.len());
        assert!(zipped.body.len() * 4 < before.body.len(), "{} of {} bytes", zipped.body.len(), before.body.len());
        return;
    }
    panic!("no two plain scrapes of the same sample in 50 tries");
}

#[test]
fn gzip_refused_by_q_zero_is_not_used() {
    let lw = Leakwatch::start(&[]);
    ready(&lw);
    let reply = get(lw.addr, "/metrics", &[("Accept-Encoding", "gzip;q=0, identity")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert!(reply.text().contains("leakwatch_build_info"), "{}", reply.text());
}
