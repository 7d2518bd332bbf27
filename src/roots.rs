//! Filesystem roots: the only place where `/proc` and `/sys` are spelled.
//!
//! Every sampler reads through a [`Roots`] value, so tests and benchmarks can point leakwatch at
//! fixture trees (like node_exporter's `--path.procfs` and `--path.sysfs`).

use std::path::{Path, PathBuf};

/// Default procfs mount point.
pub(crate) const DEFAULT_PROCFS: &str = "/proc";
/// Default sysfs mount point.
pub(crate) const DEFAULT_SYSFS: &str = "/sys";

/// Where procfs and sysfs are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    procfs: PathBuf,
    sysfs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self::new(DEFAULT_PROCFS, DEFAULT_SYSFS)
    }
}

impl Roots {
    /// Roots at the given procfs and sysfs paths.
    pub fn new(procfs: impl Into<PathBuf>, sysfs: impl Into<PathBuf>) -> Self {
        Self { procfs: procfs.into(), sysfs: sysfs.into() }
    }

    /// The procfs root (`/proc`).
    pub fn procfs(&self) -> &Path {
        &self.procfs
    }

    /// A file directly under procfs, e.g. `meminfo`.
    pub fn proc_file(&self, name: &str) -> PathBuf {
        self.procfs.join(name)
    }

    /// The directory of one process, `/proc/PID`.
    pub fn pid(&self, pid: i32) -> PathBuf {
        self.procfs.join(pid.to_string())
    }

    /// The cgroup filesystem root as leakwatch itself sees it (`/sys/fs/cgroup`).
    pub(crate) fn cgroup_fs(&self) -> PathBuf {
        self.sysfs.join("fs/cgroup")
    }

    /// The cgroup filesystem as the process `pid` sees it, through its root directory
    /// (`/proc/PID/root/sys/fs/cgroup`): the way into another container's cgroup namespace.
    pub(crate) fn cgroup_fs_of(&self, pid: i32) -> PathBuf {
        self.pid(pid).join("root/sys/fs/cgroup")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_under_the_configured_roots() {
        let roots = Roots::new("/tmp/p", "/tmp/s");
        assert_eq!(roots.proc_file("meminfo"), PathBuf::from("/tmp/p/meminfo"));
        assert_eq!(roots.pid(42).join("status"), PathBuf::from("/tmp/p/42/status"));
        assert_eq!(roots.cgroup_fs(), PathBuf::from("/tmp/s/fs/cgroup"));
        assert_eq!(roots.cgroup_fs_of(7), PathBuf::from("/tmp/p/7/root/sys/fs/cgroup"));
    }
}
