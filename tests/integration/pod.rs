//! The sidecar in a real pod, with real containers (Debian's runc) and the image `.ci/image.sh`
//! built, laid out as Kubernetes lays out a pod with `shareProcessNamespace: true`:
//!
//! - *pause* (busybox-static `sleep`) holds the pod's PID, network (loopback only) and IPC
//!   namespaces;
//! - *app* joins them, in its own cgroup with a 192 MiB memory limit and its own cgroup namespace,
//!   running `tests/fixtures/pod/grower.rs` as uid 1000;
//! - *leakwatch*, unpacked from the OCI image by umoci: read-only root filesystem, the app's uid,
//!   no capabilities, joining the PID and network namespaces by path, in its own cgroup, watching
//!   the app by process name, with the Downward API variables set.
//!
//! The test thread enters the pod's network namespace (setns, this thread only), so the real
//! Prometheus it starts, the fake Alertmanager and every request it makes live on the pod's
//! loopback. It plays kubelet: the app grows (threshold and filling-up alerts fire in
//! Prometheus), is OOM-killed, its container and cgroup are deleted at once (as containerd
//! does), and it is restarted as a new container in a new cgroup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::http::get;
use crate::support::pod::{
    grower_rootfs, pause_rootfs, unpack_image, Container, NetnsGuard, PodCgroup, Receiver, Runc, Spec,
};
use crate::support::prometheus::{scrape_config, Prometheus};
use crate::support::{Metrics, TempDir};
use leakwatch::metric_names as n;

const LIMIT: u64 = 192 << 20;
const APP_UID: u32 = 1000;
const INTERVAL: Duration = Duration::from_secs(1);
const NAMESPACE: &str = "shop-prod";
const POD: &str = "shop-7d4b9c-x2kq8";

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

/// leakwatch inside the pod, reached on the pod's loopback.
struct Sidecar {
    addr: std::net::SocketAddr,
}

impl Sidecar {
    fn json(&self, path: &str) -> Value {
        let r = get(self.addr, path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    fn scrape(&self) -> Metrics {
        let r = get(self.addr, "/metrics", &[]);
        assert_eq!(r.status, 200, "/metrics: {}", r.text());
        Metrics::parse(&r.text())
    }

    fn wait<T>(&self, timeout: Duration, what: &str, mut probe: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The alert views of `name` on `/alerts` that are firing.
    fn firing(&self, name: &str) -> Vec<Value> {
        let v = self.json("/alerts");
        let list = v["alerts"].as_array().cloned().unwrap_or_default();
        list.into_iter().filter(|a| a["alert"] == name && a["state"] == "firing").collect()
    }
}

/// Prints the containers' logs when the test fails.
struct LogsOnFailure(Vec<PathBuf>);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in &self.0 {
                eprintln!("--- {} ---\n{}", p.display(), std::fs::read_to_string(p).unwrap_or_default());
            }
        }
    }
}

fn prom_firing(prom: &Prometheus, selector: &str) -> Option<Value> {
    prom.query(&format!("ALERTS{{alertstate=\"firing\", {selector}}}")).first().cloned()
}

fn sum_oom_kills(m: &Metrics) -> f64 {
    m.all(n::TARGET_OOM_KILLS_TOTAL, &[("target", "app")]).iter().map(|(_, v)| v).sum()
}

fn start_app(runc: &Runc, pod: &PodCgroup, dir: &Path, n: u32, pause: &Container, ctl: &Path) -> Container {
    let bundle = dir.join(format!("app-{n}"));
    std::fs::create_dir_all(&bundle).expect("mkdir the app bundle");
    let mut spec = Spec::in_pod(&["/grower", "/ctl/target"], APP_UID, pod.child(&format!("app-{n}")), Some(pause.pid));
    spec.memory_limit = Some(LIMIT);
    spec.binds.push((ctl.to_owned(), "/ctl".to_owned()));
    runc.run(&format!("app-{n}"), &bundle, &spec.config(&dir.join("app-rootfs")), &dir.join(format!("app-{n}.log")))
}

#[test]
fn pod_sidecar_sees_the_oom_kill_once_and_follows_the_restarted_app() {
    let dir = TempDir::new("pod");
    let d = dir.path();
    let _logs =
        LogsOnFailure(["pause", "app-1", "app-2", "leakwatch"].iter().map(|n| d.join(format!("{n}.log"))).collect());
    let pod = PodCgroup::new("pod");
    let runc = Runc::new(&d.join("runc"));

    // The pause container: new PID, network and IPC namespaces for the pod.
    pause_rootfs(&d.join("pause/rootfs"));
    let pause_spec = Spec::in_pod(&["/bin/busybox", "sleep", "3600"], 65535, pod.child("pause"), None);
    let pause = runc.run("pause", &d.join("pause"), &pause_spec.config(&d.join("pause/rootfs")), &d.join("pause.log"));
    let _in_pod = NetnsGuard::enter(Path::new(&format!("/proc/{}/ns/net", pause.pid)));
    let links = std::fs::read_to_string("/proc/thread-self/net/dev").expect("read net/dev");
    let links: Vec<&str> = links.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(links, ["lo"], "the pod's network namespace has loopback only");
    let receiver = Receiver::start();

    // The app: grows to 110 MiB quickly, then steered by the control file.
    let ctl = d.join("ctl");
    std::fs::create_dir_all(&ctl).expect("mkdir ctl");
    std::fs::write(ctl.join("target"), "110 20").expect("write the control file");
    grower_rootfs(&d.join("app-rootfs"));
    let app = start_app(&runc, &pod, d, 1, &pause, &ctl);

    // leakwatch from the image, as a restricted sidecar.
    let bundle = d.join("leakwatch");
    let image_config = unpack_image(&bundle);
    let entrypoint: Vec<String> = serde_json::from_value(image_config["process"]["args"].clone()).expect("args");
    assert_eq!(entrypoint, ["/usr/bin/leakwatch"], "the image's entrypoint");
    assert_eq!(image_config["process"]["user"]["uid"], 65532, "the image runs as nonroot by default");
    let etc = d.join("leakwatch-config");
    std::fs::create_dir_all(&etc).expect("mkdir the config dir");
    std::fs::write(
        etc.join("leakwatch.yaml"),
        format!(
            "interval: 1s\ntarget:\n  name: app\n  process_name: grower\nalerts:\n  rules:\n    - ratio: memory_utilization\n      \
             for: 1s\n  prediction:\n    retention: 1m\n    min_fill: 0.1\n  target_down:\n    for: 1s\n  alertmanager:\n    url: http://{}\n    resend_interval: 1s\n",
            receiver.addr
        ),
    )
    .expect("write the leakwatch config");
    let mut args: Vec<&str> = entrypoint.iter().map(String::as_str).collect();
    args.extend(["--config", "/etc/leakwatch/leakwatch.yaml"]);
    let mut spec = Spec::in_pod(&args, APP_UID, pod.child("leakwatch"), Some(pause.pid));
    spec.memory_limit = Some(128 << 20);
    spec.binds.push((etc.clone(), "/etc/leakwatch".to_owned()));
    spec.env.extend(
        [("POD_NAMESPACE", NAMESPACE), ("POD_NAME", POD), ("CONTAINER_NAME", "app"), ("NODE_NAME", "node-a")]
            .map(|(k, v)| format!("{k}={v}")),
    );
    let sidecar_container =
        runc.run("leakwatch", &bundle, &spec.config(&bundle.join("rootfs")), &d.join("leakwatch.log"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", sidecar_container.pid)).expect("status");
    let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(str::trim).unwrap_or("").to_owned();
    assert!(field("Uid:").starts_with("1000"), "leakwatch runs as the app's uid: {}", field("Uid:"));
    assert_eq!(field("CapEff:"), "0000000000000000", "no capabilities");
    assert_eq!(field("CapPrm:"), "0000000000000000", "no capabilities");

    let lw = Sidecar { addr: "127.0.0.1:10171".parse().expect("address") };
    lw.wait(Duration::from_secs(30), "leakwatch ready on the pod's loopback", |lw| {
        std::net::TcpStream::connect(lw.addr)
            .ok()
            .and_then(|_| (get(lw.addr, "/readyz", &[]).status == 200).then_some(()))
    });
    let app_pid = app.pid_in_pod().to_string();
    let m = lw.wait(Duration::from_secs(30), "leakwatch following the app", |lw| {
        let m = lw.scrape();
        (m.get(n::TARGET_PROCESS_INFO, &[("target", "app"), ("pid", &app_pid)]) == Some(1.0)
            && m.get(n::CGROUP_MEMORY_LIMIT_BYTES, &[("target", "app")]).is_some())
        .then_some(m)
    });
    assert_eq!(m.get(n::CGROUP_MEMORY_LIMIT_BYTES, &[("target", "app")]), Some(LIMIT as f64), "{}", m.text);
    assert_eq!(m.label_values(n::CGROUP_INFO, "via"), ["proc_root"], "through /proc/PID/root: {}", m.text);
    assert_eq!(m.get(n::TARGET_UP, &[("target", "app")]), Some(1.0));

    // A real Prometheus on the pod's loopback, with the generated rules (`for` shortened to 2 s).
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/leakwatch-rules.yaml"))
        .expect("alerts/leakwatch-rules.yaml");
    let rules = regex::Regex::new(r"(?m)^(\s+for:) \S+$").expect("regex").replace_all(&rules, "$1 2s").into_owned();
    let prom = Prometheus::start(&scrape_config(lw.addr, &["rules.yaml"]), &[("rules.yaml", &rules)]);

    // The app grows gradually past 80 % of its limit: the threshold and filling-up alerts fire.
    lw.wait(Duration::from_secs(60), "the app at 105 MiB", |lw| {
        (lw.scrape().get(r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &[("target", "app")])?
            > (105u64 << 20) as f64)
            .then_some(())
    });
    // A steady 1.25 MiB/s for about 55 s: long enough for the leak detector (a 1 min window here)
    // to judge the growth significant, then a plateau at 176 MiB.
    std::fs::write(ctl.join("target"), "176 800").expect("steer the app");
    let high = prom.wait_for(Duration::from_secs(90), "LeakwatchMemoryUtilizationHigh firing in Prometheus", |p| {
        prom_firing(p, r#"alertname="LeakwatchMemoryUtilizationHigh", severity="warning""#)
    });
    assert_eq!(high["metric"]["target"], "app", "{high}");
    prom.wait_for(Duration::from_secs(90), "LeakwatchMemoryFillingUp firing in Prometheus", |p| {
        prom_firing(p, r#"alertname="LeakwatchMemoryFillingUp""#)
    });
    assert!(!lw.firing("LeakwatchMemoryUtilizationHigh").is_empty(), "leakwatch's own engine agrees");
    let pushed = receiver.wait(Duration::from_secs(30), "LeakwatchMemoryUtilizationHigh pushed", |a| {
        a["labels"]["alertname"] == "LeakwatchMemoryUtilizationHigh"
    });
    assert_eq!(pushed["labels"]["namespace"], NAMESPACE, "{pushed}");
    assert_eq!(pushed["labels"]["pod"], POD, "{pushed}");

    // The app holds 176 MiB (92 %) before the last push to the limit, so the pre-mortem's last
    // sample is at least there whatever the sampling phase.
    lw.wait(Duration::from_secs(60), "the app at 172 MiB", |lw| {
        (lw.scrape().get(r#"leakwatch_cgroup_memory_bytes{kind="usage"}"#, &[("target", "app")])?
            > (172u64 << 20) as f64)
            .then_some(())
    });

    // The OOM kill. The test watches the process die, then deletes the container and its cgroup
    // at once, as containerd does.
    let app_host_pid = app.pid;
    // The kernel's counter: memory.oom_control on v1 (this host), memory.events on v2.
    let counter = pod
        .dirs("app-1")
        .into_iter()
        .flat_map(|d| [d.join("memory.oom_control"), d.join("memory.events")])
        .find(|f| f.is_file())
        .expect("the app's memory cgroup");
    std::fs::write(ctl.join("target"), "1000 20").expect("steer the app");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Path::new(&format!("/proc/{app_host_pid}/stat")).exists()
        && !std::fs::read_to_string(format!("/proc/{app_host_pid}/stat")).unwrap_or_default().contains(") Z")
    {
        assert!(Instant::now() < deadline, "the app was not OOM-killed; its log:\n{}", app.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    let (killed, killed_unix) = (Instant::now(), unix_now());
    let oom_control = std::fs::read_to_string(&counter).unwrap_or_default();
    app.delete();
    let deleted = killed.elapsed();
    assert!(oom_control.contains("oom_kill 1"), "the kernel counted one OOM kill in the app's cgroup:\n{oom_control}");
    assert!(pod.dirs("app-1").is_empty(), "the app's cgroup is gone");

    // leakwatch: target down, the kill counted once with its pre-mortem, LeakwatchOomKill.
    let down = lw.wait(Duration::from_secs(30), "leakwatch_target_up 0", |lw| {
        (lw.scrape().get(n::TARGET_UP, &[("target", "app")]) == Some(0.0)).then(|| killed.elapsed())
    });
    let oom = lw.wait(Duration::from_secs(30), "the OOM report", |lw| {
        let oom = lw.json("/oom");
        (oom["kills_total"] == 1).then_some(oom)
    });
    let report = &oom["reports"][0];
    let seen_after = report["at"].as_f64().expect("report time") - killed_unix;
    let last = report["samples"].as_array().and_then(|s| s.last()).expect("a pre-mortem sample");
    let usage = last["cgroup_usage_bytes"].as_f64().expect("usage in the last sample");
    assert!(usage > 0.85 * LIMIT as f64, "the last sample before the kill is near the limit: {last}");
    assert_eq!(last["cgroup_limit_bytes"].as_f64(), Some(LIMIT as f64), "{last}");
    lw.wait(Duration::from_secs(30), "LeakwatchOomKill and LeakwatchTargetDown firing on /alerts", |lw| {
        (!lw.firing("LeakwatchOomKill").is_empty() && !lw.firing("LeakwatchTargetDown").is_empty()).then_some(())
    });
    prom.wait_for(Duration::from_secs(60), "LeakwatchOomKill firing in Prometheus", |p| {
        prom_firing(p, r#"alertname="LeakwatchOomKill""#)
    });
    prom.wait_for(Duration::from_secs(60), "LeakwatchTargetDown firing in Prometheus", |p| {
        prom_firing(p, r#"alertname="LeakwatchTargetDown""#)
    });
    // The memory alerts ended. Usually with the reason `target_gone`; when the kill is seen before
    // the exit (near-limit poll), the pass it triggers can still find the victim with its memory
    // already freed by the kernel's OOM reaper, and they resolve on the low value instead.
    let history = lw.json("/alerts/history");
    let ended: Vec<&Value> = history["transitions"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["alert"] == "LeakwatchMemoryUtilizationHigh" && t["to"] == "resolved").collect())
        .unwrap_or_default();
    assert!(!ended.is_empty(), "the memory alerts ended with the app: {history}");
    let memory_end_reason = ended[0]["reason"].as_str().unwrap_or("low value").to_owned();
    let pushed = receiver
        .wait(Duration::from_secs(30), "LeakwatchOomKill pushed", |a| a["labels"]["alertname"] == "LeakwatchOomKill");
    for (label, value) in [("namespace", NAMESPACE), ("pod", POD), ("container", "app"), ("node", "node-a")] {
        assert_eq!(pushed["labels"][label], value, "{label}: {pushed}");
    }
    assert!(pushed["generatorURL"].as_str().is_some_and(|u| u.ends_with("/alerts")), "{pushed}");
    let runbook = pushed["annotations"]["runbook_url"].as_str().unwrap_or("");
    assert!(runbook.starts_with("https://") && runbook.ends_with("#leakwatchoomkill"), "{pushed}");
    let log = sidecar_container.log();
    assert!(log.lines().any(|l| l.contains("OOM kill") && l.contains("kills_total=1")), "one structured line:\n{log}");

    // The restart: a new container in a new cgroup; leakwatch follows the new process.
    std::fs::write(ctl.join("target"), "40 20").expect("steer the app");
    let restart_at = Instant::now();
    let app = start_app(&runc, &pod, d, 2, &pause, &ctl);
    let started = restart_at.elapsed();
    let new_pid = app.pid_in_pod().to_string();
    let (followed, m) = lw.wait(Duration::from_secs(30), "leakwatch following the restarted app", |lw| {
        let m = lw.scrape();
        (m.get(n::TARGET_PROCESS_INFO, &[("target", "app"), ("pid", &new_pid)]) == Some(1.0))
            .then(|| (restart_at.elapsed() - started, m))
    });
    assert_eq!(m.get(n::TARGET_UP, &[("target", "app")]), Some(1.0));
    assert!(followed <= 2 * INTERVAL, "the new process was followed {followed:?} after it started");
    let m = lw.wait(Duration::from_secs(30), "the new cgroup", |lw| {
        let m = lw.scrape();
        m.label_values(n::CGROUP_INFO, "path").iter().any(|p| p.ends_with("app-2")).then_some(m)
    });
    assert_eq!(m.get(n::CGROUP_MEMORY_OOM_KILLS_TOTAL, &[("target", "app")]), Some(0.0), "a new cgroup");
    // Some passes later the kill is still counted exactly once.
    std::thread::sleep(3 * INTERVAL);
    let m = lw.scrape();
    assert_eq!(sum_oom_kills(&m), 1.0, "one OOM kill across the restart: {}", m.text);
    assert_eq!(lw.json("/oom")["kills_total"], 1);

    eprintln!(
        "pod timeline: OOM kill seen by the test at 0 ms (kernel oom_kill 1 in the app's cgroup); container and \
         cgroup deleted +{} ms; leakwatch's OOM report at {:+.0} ms (seen by {}); target_up 0 on /metrics +{} ms; \
         restarted app running {} ms after `runc run`, followed by leakwatch {} ms later (interval {} ms); last \
         pre-mortem sample at {:.1} % of the limit; memory alerts ended ({memory_end_reason})",
        deleted.as_millis(),
        seen_after * 1000.0,
        report["seen_by"],
        down.as_millis(),
        started.as_millis(),
        followed.as_millis(),
        INTERVAL.as_millis(),
        usage * 100.0 / LIMIT as f64,
    );
    drop(prom);
    drop(app);
    drop(sidecar_container);
}
