//! End to end with a real Prometheus: it scrapes a real leakwatch watching a real process.

use std::time::Duration;

use crate::support::prometheus::{scrape_config, Prometheus};
use crate::support::{Leakwatch, MemHog};

#[test]
fn e2e_prometheus_scrapes_leakwatch_watching_a_real_process() {
    let hog = MemHog::start(64);
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "hog"]);
    let prom = Prometheus::start(&scrape_config(lw.addr, &[]), &[]);
    prom.wait_for(Duration::from_secs(30), "the leakwatch target up", |p| {
        p.query(r#"up{job="leakwatch"}"#).first().filter(|s| s["value"][1] == "1").cloned()
    });
    let rss = prom.wait_for(Duration::from_secs(30), "the target's RSS in Prometheus", |p| {
        p.query(r#"leakwatch_process_resident_memory_bytes{target="hog"}"#).first().cloned()
    });
    let bytes: f64 = rss["value"][1].as_str().and_then(|v| v.parse().ok()).expect("a numeric sample");
    assert!(bytes > 64.0 * 1048576.0, "the 64 MiB hog shows {bytes} bytes RSS in Prometheus");
    let targets = prom.api("/api/v1/targets");
    let active = &targets["activeTargets"][0];
    assert_eq!(active["health"], "up", "{active}");
    assert_eq!(active["lastError"], "", "scrapes parse without error: {active}");
}
