//! The `pids` controller of the target's cgroup (v1: its own `pids` hierarchy; v2: the unified
//! one), found the same ways as the memory controller: directly, or through `/proc/PID/root`.

use std::path::{Path, PathBuf};

use super::cgroup::relative_inside;
use super::held::HeldFiles;
use super::read::{ok_or_record, read_parsed, ReadError};
use crate::parse::cgroup::{self, Membership};
use crate::parse::pids;
use crate::roots::Roots;
use crate::snapshot::{CgroupVersion, ErrorCounts, ErrorReason, ErrorSource, PidsSample};

/// Samples `pids.current` and `pids.max` of `pid`'s cgroup. `None` when the process has no
/// `pids` controller (or its directory holds no `pids.current`, as the v2 root cgroup does):
/// that is not an error.
pub fn sample(roots: &Roots, pid: i32, errors: &mut ErrorCounts) -> Option<PidsSample> {
    let members = match read_parsed(&roots.pid(pid).join("cgroup"), cgroup::memberships) {
        Ok(m) => m,
        // The memory sampler already counted an unreadable /proc/PID/cgroup.
        Err(_) => return None,
    };
    sample_members(roots, pid, &members, &mut HeldFiles::default(), errors)
}

/// Like [`sample`], from `/proc/PID/cgroup` already read for the memory controller.
pub fn sample_members(
    roots: &Roots,
    pid: i32,
    members: &[Membership],
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Option<PidsSample> {
    let (version, dir) = locate(roots, pid, members)?;
    Some(read_at(version, &dir, held, errors))
}

/// Reads the pids controller's files at a located directory.
pub(super) fn read_at(
    version: CgroupVersion,
    dir: &Path,
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> PidsSample {
    let current = ok_or_record(
        errors,
        ErrorSource::CgroupPids,
        held.read_parsed(&dir.join("pids.current"), cgroup::single_value),
    );
    let max = match held.read_parsed(&dir.join("pids.max"), pids::max) {
        Ok(max) => max,
        // A v1 hierarchy's root has no pids.max: no limit.
        Err(e) if e.reason() == ErrorReason::NotFound => None,
        Err(e) => {
            record(errors, &e);
            None
        }
    };
    PidsSample { version, current, max }
}

fn record(errors: &mut ErrorCounts, e: &ReadError) {
    super::read::record(errors, ErrorSource::CgroupPids, e);
}

/// The directory of the `pids` controller: the v1 `pids` hierarchy when the process has one,
/// else the unified hierarchy; tried under leakwatch's own mount, then the target's view.
pub(super) fn locate(roots: &Roots, pid: i32, members: &[Membership]) -> Option<(CgroupVersion, PathBuf)> {
    let (version, path) = members
        .iter()
        .find(|m| m.hierarchy != 0 && m.controllers.iter().any(|c| c == "pids"))
        .map(|m| (CgroupVersion::V1, m.path.as_str()))
        .or_else(|| members.iter().find(|m| m.hierarchy == 0).map(|m| (CgroupVersion::V2, m.path.as_str())))?;
    let mount = |fs: PathBuf| match version {
        CgroupVersion::V1 => fs.join("pids"),
        CgroupVersion::V2 => fs,
    };
    let mut candidates = Vec::with_capacity(3);
    if let Some(rel) = relative_inside(path) {
        candidates.push(mount(roots.cgroup_fs()).join(&rel));
        candidates.push(mount(roots.cgroup_fs_of(pid)).join(rel));
    }
    candidates.push(mount(roots.cgroup_fs_of(pid)));
    candidates.into_iter().find(|dir| dir.join("pids.current").is_file()).map(|dir| (version, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_pids_hierarchy_wins_over_the_unified_one_and_a_v2_limit_is_read() {
        let root = std::env::temp_dir().join(format!("leakwatch-pids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let proc_dir = root.join("proc/7");
        std::fs::create_dir_all(&proc_dir).unwrap();
        let v1 = root.join("sys/fs/cgroup/pids/app");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("pids.current"), "12\n").unwrap();
        std::fs::write(v1.join("pids.max"), "100\n").unwrap();
        let roots = Roots::new(root.join("proc"), root.join("sys"));

        std::fs::write(proc_dir.join("cgroup"), "8:pids:/app\n4:memory:/m\n0::/\n").unwrap();
        let mut errors = ErrorCounts::default();
        let s = sample(&roots, 7, &mut errors).unwrap();
        assert_eq!(s, PidsSample { version: CgroupVersion::V1, current: Some(12), max: Some(100) });

        // Pure v2: the unified directory, `max` means no limit; garbage is counted.
        let v2 = root.join("sys/fs/cgroup/svc");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("pids.current"), "3\n").unwrap();
        std::fs::write(v2.join("pids.max"), "max\n").unwrap();
        std::fs::write(proc_dir.join("cgroup"), "0::/svc\n").unwrap();
        let s = sample(&roots, 7, &mut errors).unwrap();
        assert_eq!(s, PidsSample { version: CgroupVersion::V2, current: Some(3), max: None });
        std::fs::write(v2.join("pids.max"), "lots\n").unwrap();
        assert_eq!(sample(&roots, 7, &mut errors).unwrap().max, None);
        assert_eq!(errors.get(ErrorSource::CgroupPids, ErrorReason::Malformed), 1);

        // No pids.current anywhere: no controller, no error.
        std::fs::write(proc_dir.join("cgroup"), "0::/elsewhere\n").unwrap();
        assert_eq!(sample(&roots, 7, &mut errors), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
