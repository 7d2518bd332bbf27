//! A Kubernetes-like pod made of real containers, for `pod.rs`: Debian's `runc` (unpacked by
//! `tests/run.sh` into `.cache/tools/bin/`) runs OCI bundles written here; `umoci` unpacks the
//! image `.ci/image.sh` built; `busybox-static` is the pause container. Every container, cgroup,
//! bundle and the pod's network namespace are removed by drop guards, also when a test fails.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A tool the suite installs: `$VAR` when set, else `.cache/tools/bin/NAME`. Missing fails the
/// test (it never skips).
pub fn tool(name: &str, var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return path;
    }
    let cached = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/tools/bin").join(name);
    assert!(
        cached.is_file(),
        "{name} not found ({var}, {}): run `bash tests/run.sh`, which unpacks it from Debian",
        cached.display()
    );
    cached
}

/// The OCI image layout `.ci/image.sh` wrote: `$LEAKWATCH_IMAGE`, else `target/oci`. Missing
/// fails the test.
pub fn image_layout() -> PathBuf {
    let path = std::env::var_os("LEAKWATCH_IMAGE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oci"));
    assert!(
        path.join("index.json").is_file(),
        "no OCI image layout at {} (LEAKWATCH_IMAGE): run `bash .ci/image.sh` (tests/run.sh does)",
        path.display()
    );
    path
}

/// Unpacks the image (tag = the crate version) into a runc bundle with `umoci unpack`, which
/// checks every blob's digest; returns the bundle's `config.json` as umoci generated it.
pub fn unpack_image(bundle: &Path) -> Value {
    let image = format!("{}:{}", image_layout().display(), env!("CARGO_PKG_VERSION"));
    let out = Command::new(tool("umoci", "LEAKWATCH_UMOCI"))
        .args(["unpack", "--image", &image])
        .arg(bundle)
        .output()
        .expect("run umoci");
    assert!(out.status.success(), "umoci unpack {image}: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(bundle.join("config.json")).expect("umoci wrote config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

/// What a container runs and how it is isolated; turned into an OCI runtime `config.json`.
pub struct Spec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    /// The cgroup path (relative to each hierarchy's root).
    pub cgroup: String,
    pub memory_limit: Option<u64>,
    /// Namespaces as (type, path): `None` creates a new one, `Some(path)` joins it.
    pub namespaces: Vec<(&'static str, Option<PathBuf>)>,
    /// Read-only bind mounts (host path, container path).
    pub binds: Vec<(PathBuf, String)>,
    pub readonly_root: bool,
}

impl Spec {
    /// A container of the pod: new mount, UTS and cgroup namespaces, and the pod's PID, network
    /// and IPC namespaces joined through the pause process `pause_pid` (when given).
    pub fn in_pod(args: &[&str], uid: u32, cgroup: String, pause_pid: Option<i32>) -> Spec {
        let join = |kind: &str| pause_pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/{kind}")));
        Spec {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["PATH=/usr/bin:/bin".to_owned()],
            uid,
            gid: uid,
            cgroup,
            memory_limit: None,
            namespaces: vec![
                ("pid", join("pid")),
                ("network", join("net")),
                ("ipc", join("ipc")),
                ("mount", None),
                ("uts", None),
                ("cgroup", None),
            ],
            binds: Vec::new(),
            readonly_root: true,
        }
    }

    /// The runtime config: no capabilities at all, no new privileges, the usual pseudo
    /// filesystems, the cgroup filesystem read-only, the rootfs at `rootfs`.
    pub fn config(&self, rootfs: &Path) -> Value {
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        ];
        for (src, dst) in &self.binds {
            mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                               "options": ["rbind", "ro", "nosuid", "nodev"]}));
        }
        let namespaces: Vec<Value> = self
            .namespaces
            .iter()
            .map(|(kind, path)| match path {
                Some(p) => json!({"type": kind, "path": p}),
                None => json!({"type": kind}),
            })
            .collect();
        let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
        if let Some(limit) = self.memory_limit {
            // No swap on these machines; the limit alone decides the OOM kill.
            resources["memory"] = json!({"limit": limit});
        }
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": self.uid, "gid": self.gid},
                "args": self.args,
                "env": self.env,
                "cwd": "/",
                "capabilities": {"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": rootfs, "readonly": self.readonly_root},
            "hostname": "pod",
            "mounts": mounts,
            "linux": {
                "cgroupsPath": self.cgroup,
                "resources": resources,
                "namespaces": namespaces,
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }
}

/// runc with its own state directory.
#[derive(Clone)]
pub struct Runc {
    bin: PathBuf,
    root: PathBuf,
}

impl Runc {
    pub fn new(state: &Path) -> Runc {
        Runc { bin: tool("runc", "LEAKWATCH_RUNC"), root: state.to_owned() }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }

    /// `runc run --detach` the bundle as `id`, the container's stdout and stderr going to `log`;
    /// returns the guard once runc has started the process.
    pub fn run(&self, id: &str, bundle: &Path, config: &Value, log: &Path) -> Container {
        std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(config).expect("serialize"))
            .expect("write config.json");
        let out = File::create(log).expect("create the container log");
        let err = out.try_clone().expect("clone the log file");
        // The guard exists before runc runs: a half-created container is deleted too.
        let mut c = Container { runc: self.clone(), id: id.to_owned(), pid: 0, log: log.to_owned() };
        let status = self
            .cmd()
            .args(["run", "--detach", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run runc");
        assert!(status.success(), "runc run {id}: {status}; log:\n{}", read_log(log));
        c.pid = self.state(id).and_then(|s| s["pid"].as_i64()).expect("a running container has a pid") as i32;
        c
    }

    /// `runc state ID` as JSON; `None` once the container is gone.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.cmd().args(["state", id]).stderr(Stdio::null()).output().expect("run runc state");
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("runc state prints JSON"))
    }

    /// `runc delete --force ID`: kills what is left and removes the container's cgroup.
    pub fn delete(&self, id: &str) {
        let _ = self.cmd().args(["delete", "--force", id]).stderr(Stdio::null()).status();
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A container started by [`Runc::run`]; deleted (with its cgroup) on drop.
pub struct Container {
    runc: Runc,
    pub id: String,
    /// The container's process, in the host's PID namespace.
    pub pid: i32,
    log: PathBuf,
}

impl Container {
    /// The container's stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The process's PID in the pod's PID namespace (the last field of `NSpid`).
    pub fn pid_in_pod(&self) -> i32 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("the process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|p| p.parse().ok())
            .expect("an NSpid line")
    }

    /// Deletes the container now, as a runtime does once its process has died.
    pub fn delete(self) {}
}

impl Drop for Container {
    fn drop(&mut self) {
        self.runc.delete(&self.id);
    }
}

/// The pod's parent cgroup, `/leakwatch-test-pod-PID-N` in every v1 hierarchy (or in the
/// unified one on v2 hosts): runc creates it with the first container; on drop whatever is left
/// inside is killed and the directories are removed.
pub struct PodCgroup {
    pub name: String,
}

impl PodCgroup {
    pub fn new(tag: &str) -> PodCgroup {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PodCgroup { name: format!("leakwatch-test-{tag}-{}-{n}", std::process::id()) }
    }

    /// The cgroup path of a container of the pod.
    pub fn child(&self, name: &str) -> String {
        format!("/{}/{name}", self.name)
    }

    /// The directories of `sub` (a path under the pod) in every hierarchy that has it.
    pub fn dirs(&self, sub: &str) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        roots.push(PathBuf::from("/sys/fs/cgroup"));
        roots.into_iter().map(|r| r.join(&self.name).join(sub)).filter(|d| d.is_dir()).collect()
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        for dir in self.dirs("") {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
                .unwrap_or_default();
            children.push(dir.clone());
            for d in children {
                for _ in 0..50 {
                    let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.split_whitespace() {
                        super::signal(pid.parse().unwrap_or(0), "KILL");
                    }
                    if std::fs::remove_dir(&d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// The calling thread inside another network namespace (setns), until drop: sockets it creates
/// and processes it spawns belong to that namespace; other threads are untouched.
pub struct NetnsGuard {
    original: File,
}

impl NetnsGuard {
    pub fn enter(path: &Path) -> NetnsGuard {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        let original = File::open("/proc/thread-self/ns/net").expect("open this thread's netns");
        let target = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network))
            .unwrap_or_else(|e| panic!("setns into {}: {e}", path.display()));
        NetnsGuard { original }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        move_into_link_name_space(self.original.as_fd(), Some(LinkNameSpaceType::Network))
            .expect("return to the original netns");
    }
}

/// A fake Alertmanager on a loopback port of the calling thread's network namespace: it
/// answers 200 and keeps every alert pushed to `/api/v2/alerts` (with the time it came).
pub struct Receiver {
    pub addr: SocketAddr,
    pub alerts: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().expect("local addr");
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let kept = alerts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(clone) = stream.try_clone() else { continue };
                let mut reader = BufReader::new(clone);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                if request_line.split_whitespace().nth(1) == Some("/api/v2/alerts") {
                    if let Ok(Value::Array(batch)) = serde_json::from_slice::<Value>(&body) {
                        let now = Instant::now();
                        kept.lock().expect("receiver lock").extend(batch.into_iter().map(|a| (now, a)));
                    }
                }
            }
        });
        Receiver { addr, alerts }
    }

    /// The first pushed alert satisfying `pred`, waiting up to `timeout`.
    pub fn wait(&self, timeout: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, a)) = self.alerts.lock().expect("receiver lock").iter().find(|(_, a)| pred(a)) {
                return a.clone();
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for a pushed alert: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Copies busybox-static into `rootfs/bin/` (the pause container's whole filesystem).
pub fn pause_rootfs(rootfs: &Path) {
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir rootfs/bin");
    std::fs::copy(tool("busybox", "LEAKWATCH_BUSYBOX"), rootfs.join("bin/busybox")).expect("copy busybox");
}

/// Compiles `tests/fixtures/pod/grower.rs` into a static binary at `rootfs/grower`.
pub fn grower_rootfs(rootfs: &Path) {
    std::fs::create_dir_all(rootfs).expect("mkdir rootfs");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pod/grower.rs");
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--edition", "2021", "-O", "-C", "target-feature=+crt-static", "-o"])
        .arg(rootfs.join("grower"))
        .arg(&source)
        .output()
        .expect("run rustc");
    assert!(out.status.success(), "rustc {}: {}", source.display(), String::from_utf8_lossy(&out.stderr));
}
