//! Several matching processes form one summed group, capped by `--max-processes`.

use std::process::Command;
use std::time::Duration;

use crate::support::{vmrss, Leakwatch, MemHog};
use leakwatch::metric_names as n;

#[test]
fn matching_processes_are_summed_and_capped() {
    let marker = format!("leakwatch-group-{}", std::process::id());
    let hogs: Vec<MemHog> = [30, 40, 50]
        .into_iter()
        .map(|mib| {
            // python3 -c SCRIPT MARKER: the marker ends the command line.
            MemHog::start_with_arg(Command::new("python3"), mib, &marker)
        })
        .collect();
    // The script spans several lines: `(?s)` lets `.` cross them.
    let regex = format!("(?s)python3 -c .* {marker}$");
    let lw = Leakwatch::start(&["--cmdline-regex", &regex, "--target-name", "group"]);
    let m = lw.wait_for(Duration::from_secs(10), "three processes", |m| {
        m.get(n::TARGET_PROCESSES, &[]) == Some(3.0)
            && m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[]).is_some()
    });
    let truth: u64 = hogs.iter().map(|h| vmrss(h.pid())).sum();
    let reported = m.get(r#"leakwatch_process_memory_bytes{kind="resident"}"#, &[]).unwrap();
    let error = (reported - truth as f64).abs() / truth as f64;
    assert!(error < 0.05, "group RSS {reported} vs summed VmRSS {truth}: {:.1}% off", error * 100.0);
    assert!(truth > 120 << 20, "the three hogs hold 120 MiB between them ({truth})");
    drop(lw);

    let lw = Leakwatch::start(&["--cmdline-regex", &regex, "--target-name", "group", "--max-processes", "2"]);
    let m =
        lw.wait_for(Duration::from_secs(10), "the capped group", |m| m.get(n::TARGET_PROCESSES_MATCHED, &[]).is_some());
    assert_eq!(m.get(n::TARGET_PROCESSES, &[]), Some(2.0));
    assert_eq!(m.get(n::TARGET_PROCESSES_MATCHED, &[]), Some(3.0));
}
