//! The target's memory cgroup, v1 or v2, found from a sidecar as well as from the same container.

use std::path::{Component, Path, PathBuf};

use super::held::HeldFiles;
use super::read::{ok_or_record, record, ReadError};
use crate::parse::cgroup::{self, FlatKeyed, Membership};
use crate::parse::pressure;
use crate::roots::Roots;
use crate::snapshot::{CgroupSample, CgroupVersion, CgroupVia, ErrorCounts, ErrorSource, Location, PidsSample};

/// Samples the memory cgroup of `pid`. `None` (with a counted error) when it cannot be located.
pub fn sample(roots: &Roots, pid: i32, held: &mut HeldFiles, errors: &mut ErrorCounts) -> Option<CgroupSample> {
    sample_located(roots, pid, held, errors).map(|(_, s)| s)
}

/// Like [`sample`], with the location (the OOM tracker keeps the directory's counter open).
pub fn sample_located(
    roots: &Roots,
    pid: i32,
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Option<(Location, CgroupSample)> {
    let members = memberships(roots, pid, held, errors)?;
    sample_members(roots, pid, &members, held, errors)
}

/// `/proc/PID/cgroup`, parsed; `None` (counted) when unreadable.
pub fn memberships(roots: &Roots, pid: i32, held: &mut HeldFiles, errors: &mut ErrorCounts) -> Option<Vec<Membership>> {
    ok_or_record(errors, ErrorSource::Cgroup, held.read_parsed(&roots.pid(pid).join("cgroup"), cgroup::memberships))
}

/// Like [`sample_located`], from memberships already read (one read of `/proc/PID/cgroup` per
/// pass serves the memory and the pids controller).
pub fn sample_members(
    roots: &Roots,
    pid: i32,
    members: &[Membership],
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Option<(Location, CgroupSample)> {
    let Some(location) = locate(roots, pid, members) else {
        not_located(roots, pid, errors);
        return None;
    };
    let sample = read_at(location.clone(), held, errors);
    Some((location, sample))
}

/// Counts a memory controller directory that could not be found.
fn not_located(roots: &Roots, pid: i32, errors: &mut ErrorCounts) {
    let err = ReadError::Io {
        path: format!("memory cgroup of pid {pid} (from {})", roots.pid(pid).join("cgroup").display()),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no readable memory controller directory"),
    };
    record(errors, ErrorSource::Cgroup, &err);
}

/// Reads the memory controller's files at a located directory.
fn read_at(location: Location, held: &mut HeldFiles, errors: &mut ErrorCounts) -> CgroupSample {
    match location.version {
        CgroupVersion::V2 => read_v2(location, held, errors),
        CgroupVersion::V1 => read_v1(location, held, errors),
    }
}

/// The memory and pids controller directories of a group leader, kept between passes: locating
/// them probes up to three directories each (a `stat` apiece), so they are located again only
/// when `/proc/PID/cgroup` reads differently (or the leader changed), on a full pass, when the
/// memory controller was not found, or after a read there failed.
#[derive(Debug, Default)]
pub struct Placement {
    /// The leader and the memberships the directories were located from.
    from: Option<(i32, Vec<Membership>)>,
    memory: Option<Location>,
    pids: Option<(CgroupVersion, PathBuf)>,
}

impl Placement {
    /// The leader's memory cgroup (where it was found and its figures) and its pids controller.
    pub fn sample(
        &mut self,
        roots: &Roots,
        pid: i32,
        members: &[Membership],
        full: bool,
        held: &mut HeldFiles,
        errors: &mut ErrorCounts,
    ) -> (Option<(Location, CgroupSample)>, Option<PidsSample>) {
        let same = self.from.as_ref().is_some_and(|(p, m)| *p == pid && m.as_slice() == members);
        if full || !same {
            self.memory = locate(roots, pid, members);
            self.pids = super::pids::locate(roots, pid, members);
            self.from = Some((pid, members.to_vec()));
        }
        let memory = match self.memory.clone() {
            Some(location) => {
                let sample = read_at(location.clone(), held, errors);
                if sample.usage.is_none() {
                    self.from = None;
                }
                Some((location, sample))
            }
            None => {
                not_located(roots, pid, errors);
                self.from = None;
                None
            }
        };
        let pids = self.pids.as_ref().map(|(version, dir)| super::pids::read_at(*version, dir, held, errors));
        if pids.as_ref().is_some_and(|p| p.current.is_none()) {
            self.from = None;
        }
        (memory, pids)
    }
}

/// Finds the memory controller directory of a process.
///
/// The v1 `memory` hierarchy wins when the process has one (hybrid hosts). The path from
/// `/proc/PID/cgroup` is tried under leakwatch's own cgroup mount first; when it escapes the
/// reader's cgroup namespace (`/..`) or is not there, the target's own view through
/// `/proc/PID/root/sys/fs/cgroup` is tried, at the same path and then at its namespace root
/// (a container's processes sit at the root of their cgroup namespace).
pub fn locate(roots: &Roots, pid: i32, members: &[Membership]) -> Option<Location> {
    let (version, path) = members
        .iter()
        .find(|m| m.hierarchy != 0 && m.controllers.iter().any(|c| c == "memory"))
        .map(|m| (CgroupVersion::V1, m.path.as_str()))
        .or_else(|| members.iter().find(|m| m.hierarchy == 0).map(|m| (CgroupVersion::V2, m.path.as_str())))?;
    let relative = relative_inside(path);
    let mut candidates = Vec::with_capacity(3);
    if let Some(rel) = &relative {
        candidates.push((CgroupVia::Direct, mount(&roots.cgroup_fs(), version).join(rel)));
        candidates.push((CgroupVia::ProcRoot, mount(&roots.cgroup_fs_of(pid), version).join(rel)));
    }
    candidates.push((CgroupVia::ProcRoot, mount(&roots.cgroup_fs_of(pid), version)));
    candidates.into_iter().find(|(_, dir)| dir.join(usage_file(version)).is_file()).map(|(via, dir)| Location {
        version,
        via,
        path: path.to_owned(),
        dir,
    })
}

/// The path without its leading `/`, or `None` if it climbs out of the namespace (`..`).
pub(super) fn relative_inside(path: &str) -> Option<PathBuf> {
    let p = Path::new(path.trim_start_matches('/'));
    p.components().all(|c| matches!(c, Component::Normal(_))).then(|| p.to_path_buf())
}

fn mount(cgroup_fs: &Path, version: CgroupVersion) -> PathBuf {
    match version {
        CgroupVersion::V1 => cgroup_fs.join("memory"),
        CgroupVersion::V2 => cgroup_fs.to_path_buf(),
    }
}

fn usage_file(version: CgroupVersion) -> &'static str {
    match version {
        CgroupVersion::V1 => "memory.usage_in_bytes",
        CgroupVersion::V2 => "memory.current",
    }
}

fn empty_sample(location: Location) -> CgroupSample {
    CgroupSample::empty(location.version, location.via, location.path)
}

/// The kubelet's working set: usage minus inactive page cache, floored at zero.
fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    Some(usage?.saturating_sub(inactive_file.unwrap_or(0)))
}

fn read_v2(location: Location, held: &mut HeldFiles, errors: &mut ErrorCounts) -> CgroupSample {
    let dir = location.dir.clone();
    let mut s = empty_sample(location);
    s.usage = ok_or_record(
        errors,
        ErrorSource::CgroupMemory,
        held.read_parsed(&dir.join("memory.current"), cgroup::single_value),
    );
    s.limit = ok_or_record(errors, ErrorSource::CgroupMemory, held.read_parsed(&dir.join("memory.max"), cgroup::limit))
        .and_then(cgroup::Limit::bytes);
    if let Some(stat) = stat_file(&dir, held, errors) {
        s.rss = stat.get("anon");
        s.cache = stat.get("file");
        s.shmem = stat.get("shmem");
        s.inactive_file = stat.get("inactive_file");
    }
    s.working_set = working_set(s.usage, s.inactive_file);
    s.swap = optional(&dir.join("memory.swap.current"), cgroup::single_value, ErrorSource::CgroupMemory, held, errors);
    if let Some(events) = ok_or_record(
        errors,
        ErrorSource::CgroupMemoryEvents,
        held.read_parsed(&dir.join("memory.events"), cgroup::flat_keyed),
    ) {
        s.oom_kills = events.get("oom_kill");
        s.limit_hits = events.get("max");
    }
    s.pressure = optional(&dir.join("memory.pressure"), pressure::pressure, ErrorSource::CgroupPressure, held, errors);
    s
}

fn read_v1(location: Location, held: &mut HeldFiles, errors: &mut ErrorCounts) -> CgroupSample {
    let dir = location.dir.clone();
    let mut s = empty_sample(location);
    s.usage = ok_or_record(
        errors,
        ErrorSource::CgroupMemory,
        held.read_parsed(&dir.join("memory.usage_in_bytes"), cgroup::single_value),
    );
    s.limit = ok_or_record(
        errors,
        ErrorSource::CgroupMemory,
        held.read_parsed(&dir.join("memory.limit_in_bytes"), cgroup::limit),
    )
    .and_then(cgroup::Limit::bytes);
    if let Some(stat) = stat_file(&dir, held, errors) {
        s.rss = stat.get("total_rss");
        s.cache = stat.get("total_cache");
        s.shmem = stat.get("total_shmem");
        s.inactive_file = stat.get("total_inactive_file");
        s.swap = stat.get("total_swap");
    }
    s.working_set = working_set(s.usage, s.inactive_file);
    s.oom_kills = ok_or_record(
        errors,
        ErrorSource::CgroupMemoryEvents,
        held.read_parsed(&dir.join("memory.oom_control"), cgroup::flat_keyed),
    )
    .and_then(|c| c.get("oom_kill"));
    s.limit_hits = ok_or_record(
        errors,
        ErrorSource::CgroupMemoryEvents,
        held.read_parsed(&dir.join("memory.failcnt"), cgroup::single_value),
    );
    s
}

fn stat_file(dir: &Path, held: &mut HeldFiles, errors: &mut ErrorCounts) -> Option<FlatKeyed> {
    ok_or_record(errors, ErrorSource::CgroupMemoryStat, held.read_parsed(&dir.join("memory.stat"), cgroup::flat_keyed))
}

/// A file the kernel may legitimately lack (no swap accounting, no PSI): absence is not an error.
fn optional<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, crate::parse::ParseError>,
    source: ErrorSource,
    held: &mut HeldFiles,
    errors: &mut ErrorCounts,
) -> Option<T> {
    match held.read_parsed(path, parse) {
        Ok(v) => Some(v),
        Err(e) if e.reason() == crate::snapshot::ErrorReason::NotFound => None,
        Err(e) => {
            record(errors, source, &e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escaping_the_namespace_are_not_joined() {
        assert_eq!(relative_inside("/a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_inside("/"), Some(PathBuf::new()));
        assert_eq!(relative_inside("/../../x"), None);
        assert_eq!(relative_inside("/a/../b"), None);
    }

    #[test]
    fn working_set_is_floored_at_zero() {
        assert_eq!(working_set(Some(100), Some(30)), Some(70));
        assert_eq!(working_set(Some(10), Some(30)), Some(0));
        assert_eq!(working_set(None, Some(30)), None);
    }
}
