//! Process memory of real targets.

use std::time::Duration;

use crate::support::{vmrss, Leakwatch, MemHog};
use leakwatch::metric_names as n;

#[test]
fn a_200_mib_child_is_reported_within_5_percent_of_its_vmrss() {
    let hog = MemHog::start(200);
    let pid = hog.pid().to_string();
    let lw = Leakwatch::start(&["--pid", &pid, "--target-name", "hog"]);
    let m = lw.wait_for(Duration::from_secs(10), "RSS of the hog", |m| {
        m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[("target", "hog")]).is_some()
    });
    let reported = m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[("target", "hog")]).unwrap();
    let truth = vmrss(hog.pid()) as f64;
    assert!(truth > 200.0 * 1048576.0, "the hog really holds 200 MiB (VmRSS {truth})");
    let error = (reported - truth).abs() / truth;
    assert!(error < 0.05, "reported {reported} vs VmRSS {truth}: {:.1}% off", error * 100.0);
    assert_eq!(m.label_values(n::TARGET_PROCESS_INFO, "pid"), vec![pid]);
}
