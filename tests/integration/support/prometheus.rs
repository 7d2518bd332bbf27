//! A real Prometheus server (Debian's, unpacked by `tests/run.sh` into `.cache/tools/bin/`) on a
//! loopback port, with a temporary config and TSDB; killed and removed on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::get;
use super::{wait_timeout, TempDir};

/// The prometheus binary: `LEAKWATCH_PROMETHEUS`, else `.cache/tools/bin/prometheus`. Missing
/// fails the test (it never skips).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LEAKWATCH_PROMETHEUS").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "LEAKWATCH_PROMETHEUS={} is not a file", path.display());
        return path;
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/tools/bin/prometheus");
    assert!(
        cached.is_file(),
        "prometheus not found (LEAKWATCH_PROMETHEUS, {}): run `bash tests/run.sh`, which unpacks Debian's \
         prometheus package",
        cached.display()
    );
    cached
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml) and extra files beside it (rule files),
    /// and waits until it is ready.
    pub fn start(config: &str, files: &[(&str, &str)]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a file beside prometheus.yml");
        }
        // A free loopback port (Prometheus takes no port 0).
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let child = Command::new(binary())
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(["--log.level=warn", "--storage.tsdb.retention.time=1h"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() || get(addr, "/-/ready", &[]).status != 200 {
            assert!(Instant::now() < deadline, "prometheus did not become ready on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// An API GET (`/api/v1/...`); returns `data`, failing on an error status.
    pub fn api(&self, path_and_query: &str) -> serde_json::Value {
        let r = get(self.addr, path_and_query, &[]);
        let v = r.json();
        assert_eq!(v["status"], "success", "{path_and_query}: {v}");
        v["data"].clone()
    }

    /// An instant query; returns the result vector.
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        let data = self.api(&format!("/api/v1/query?query={q}"));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `probe` until it returns `Some`, up to `timeout`.
    pub fn wait_for<T>(&self, timeout: Duration, what: &str, mut probe: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = probe(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

/// A scrape config for one leakwatch, scraped every second, with rules evaluated every second.
pub fn scrape_config(target: SocketAddr, rule_files: &[&str]) -> String {
    let rules: String = rule_files.iter().map(|f| format!("  - {f}\n")).collect();
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}scrape_configs:\n  - job_name: \
         leakwatch\n    static_configs:\n      - targets: ['{target}']\n",
        if rules.is_empty() { "  []\n".to_owned() } else { rules }
    )
}
