//! `/metrics` with `Accept-Encoding: gzip`: one gzip member, compressed once per render, that
//! decodes to exactly what a plain scrape of the same sample serves, and is much smaller.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::support::http::get;
use crate::support::Leakwatch;
use leakwatch::metric_names as n;

fn ready(lw: &Leakwatch) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lw.get("/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "not ready within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_gzip_scrape_decodes_to_the_plain_body_and_is_far_smaller() {
    let lw = Leakwatch::start(&[]);
    ready(&lw);
    // The default scrape, and the detail one (which carries the HTTP figures of the render).
    for (path, marker) in [("/metrics", n::TARGET_UP), ("/metrics?detail=1", n::HTTP_REQUESTS_TOTAL)] {
        assert_same_body_compressed(&lw, path, marker);
    }
}

fn assert_same_body_compressed(lw: &Leakwatch, path: &str, marker: &str) {
    for _ in 0..50 {
        let before = get(lw.addr, path, &[]);
        let zipped = get(lw.addr, path, &[("Accept-Encoding", "gzip, deflate")]);
        let after = get(lw.addr, path, &[]);
        assert_eq!((before.status, zipped.status), (200, 200));
        assert_eq!(before.header("content-encoding"), None, "identity unless asked");
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
        let mut decoded = String::new();
        // One member: a single-member decoder reads all of it.
        flate2::read::GzDecoder::new(&zipped.body[..]).read_to_string(&mut decoded).expect("a gzip stream");
        assert!(decoded.contains(marker), "{path}: {marker} is in the render");
        if before.text() != after.text() {
            continue; // a new sample landed between the scrapes: try again
        }
        assert_eq!(decoded, before.text(), "{path}: the same exposition, compressed");
        eprintln!("{path}: plain {} bytes, gzip {} bytes", before.body.len(), zipped.body.len());
        assert!(zipped.body.len() * 4 < before.body.len(), "{} of {} bytes", zipped.body.len(), before.body.len());
        return;
    }
    panic!("{path}: no two plain scrapes of the same sample in 50 tries");
}

#[test]
fn gzip_refused_by_q_zero_is_not_used() {
    let lw = Leakwatch::start(&[]);
    ready(&lw);
    let reply = get(lw.addr, "/metrics", &[("Accept-Encoding", "gzip;q=0, identity")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert!(reply.text().contains(n::BUILD_INFO), "{}", reply.text());
}
