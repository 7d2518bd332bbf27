//! Real memory cgroups for tests (these machines run the tests as root).
//!
//! [`MemoryCgroup`] creates a uniquely named cgroup with the memory controller, v1 (hybrid or
//! legacy hosts: `/sys/fs/cgroup/memory`) or v2 (pure unified hosts with `memory` in
//! `cgroup.controllers`), and removes it on drop after killing whatever is still inside.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const CGROUP_FS: &str = "/sys/fs/cgroup";

/// Which hierarchy the memory controller lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// The value of leakwatch's `version` label.
    pub fn label(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }

    /// Where this hierarchy is mounted in the initial mount namespace.
    fn mount(self) -> PathBuf {
        match self {
            Version::V1 => Path::new(CGROUP_FS).join("memory"),
            Version::V2 => PathBuf::from(CGROUP_FS),
        }
    }

    /// The hierarchy the host offers the memory controller in; panics if there is none.
    pub fn detect() -> Version {
        if Path::new(CGROUP_FS).join("memory/memory.limit_in_bytes").is_file() {
            return Version::V1;
        }
        let controllers = std::fs::read_to_string(Path::new(CGROUP_FS).join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Version::V2;
        }
        panic!("no memory cgroup controller under {CGROUP_FS}: these tests need one (and root)");
    }
}

/// A memory cgroup directly under the hierarchy's root, named
/// `leakwatch-test-TAG-PID-N`; every member is killed and the directory removed on drop.
pub struct MemoryCgroup {
    version: Version,
    name: String,
    dir: PathBuf,
}

impl MemoryCgroup {
    /// Creates the cgroup, with `limit` bytes as its memory limit when given.
    pub fn create(tag: &str, limit: Option<u64>) -> MemoryCgroup {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let version = Version::detect();
        let name = format!("leakwatch-test-{tag}-{}-{n}", std::process::id());
        let dir = version.mount().join(&name);
        if version == Version::V2 {
            // Best effort: the root must hand the memory controller down to its children.
            let _ = std::fs::write(Path::new(CGROUP_FS).join("cgroup.subtree_control"), "+memory");
        }
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e} (the tests need root)", dir.display()));
        // From here on the guard owns the directory: a failed limit write still removes it.
        let cg = MemoryCgroup { version, name, dir };
        if let Some(bytes) = limit {
            let file = match version {
                Version::V1 => "memory.limit_in_bytes",
                Version::V2 => "memory.max",
            };
            cg.write(file, &bytes.to_string());
            assert_eq!(cg.read(file).trim(), bytes.to_string(), "the kernel kept the limit as written");
        }
        cg
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The directory holding the `memory.*` files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory name (one path component under the hierarchy's root).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cgroup path as `/proc/PID/cgroup` names it from the initial cgroup namespace.
    pub fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// Reads a control file; panics if it cannot.
    pub fn read(&self, file: &str) -> String {
        let path = self.dir.join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Writes a control file; panics if it cannot.
    pub fn write(&self, file: &str, value: &str) {
        let path = self.dir.join(file);
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
    }

    /// The value of `key` in a flat keyed control file (`memory.stat`, `memory.events`,
    /// `memory.oom_control`).
    pub fn keyed(&self, file: &str, key: &str) -> Option<u64> {
        self.read(file).lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// The processes in the cgroup.
    pub fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Moves a running process into the cgroup.
    pub fn add(&self, pid: i32) {
        self.write("cgroup.procs", &pid.to_string());
    }

    /// A command that joins the cgroup and then execs `program` (same pid); add its arguments
    /// with `.arg`/`.args`. Everything it starts is in the cgroup from the first instruction on.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", r#"echo $$ > "$0" && exec "$@""#]).arg(self.dir.join("cgroup.procs")).arg(program);
        cmd
    }

    /// Like [`command`](Self::command), but `program` runs the way a container runtime starts
    /// a container: in a new cgroup namespace rooted at this cgroup and a private mount
    /// namespace whose `/sys/fs/cgroup` shows this cgroup as the hierarchy's root. From the
    /// initial namespaces `/proc/PID/root/sys/fs/cgroup` then leads to this cgroup's files.
    pub fn command_as_container(&self, program: &str) -> Command {
        let mounts = match self.version {
            Version::V1 => {
                "mount -t tmpfs leakwatch-test /sys/fs/cgroup && mkdir /sys/fs/cgroup/memory && \
                 mount -t cgroup -o memory leakwatch-test /sys/fs/cgroup/memory"
            }
            // Mounting the same superblock on its own mount point is refused (EBUSY): cover the
            // host's mount with a tmpfs first, as for v1.
            Version::V2 => {
                "mount -t tmpfs leakwatch-test /sys/fs/cgroup && mount -t cgroup2 leakwatch-test /sys/fs/cgroup"
            }
        };
        let mut cmd = self.command("unshare");
        cmd.args(["--cgroup", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(r#"{mounts} && exec "$@""#))
            .arg("sh")
            .arg(program);
        cmd
    }

    /// Like [`command`](Self::command), but `program` runs in a new cgroup namespace rooted at
    /// this cgroup (mounts untouched): a sidecar's view, where the cgroups of processes outside
    /// this one read as `/../NAME` in `/proc/PID/cgroup`.
    pub fn command_in_cgroup_namespace(&self, program: &str) -> Command {
        let mut cmd = self.command("unshare");
        cmd.args(["--cgroup", "--"]).arg(program);
        cmd
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for pid in self.members() {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() > deadline => {
                    eprintln!("warning: could not remove cgroup {}: {e}", self.dir.display());
                    return;
                }
                // EBUSY while the killed members are still exiting.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// A spawned process, SIGKILLed and reaped on drop; its stdout is piped for [`Self::line`].
pub struct Spawned {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Spawned {
    /// Spawns `cmd` with stdin from /dev/null and stdout piped.
    pub fn start(mut cmd: Command) -> Spawned {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().expect("spawn");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Spawned { child, stdout }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The next line of stdout, trimmed; panics at end of file. Blocks: only ask for lines the
    /// process prints without waiting for the test.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "pid {} closed stdout before printing a line", self.pid());
        line.trim().to_owned()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The memory cgroup line of `/proc/PID/cgroup` as seen from this process: `ID:memory:PATH`
/// on v1, `0::PATH` on v2.
pub fn membership(pid: i32, version: Version) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    text.lines()
        .find(|l| match version {
            Version::V1 => l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")),
            Version::V2 => l.starts_with("0::"),
        })
        .unwrap_or_else(|| panic!("no memory cgroup line in /proc/{pid}/cgroup:\n{text}"))
        .to_owned()
}
