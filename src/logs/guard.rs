//! Which files a log source may read: checked on every open of a tailed path (the first one, and
//! each reopen after a rotation or a symlink switch), on the opened descriptor. `/logs` needs no
//! auth by default, so a path that is (or becomes) a link to a secret must not be served:
//!
//! - a regular file only (no directory, FIFO, socket or device);
//! - not on a special file system (`/proc`, `/sys`, cgroup, debugfs, ...): `/proc/self/environ`
//!   holds secrets, and `/proc/self/status` reads as a new file at every look;
//! - its real path (symlinks resolved) inside the allowed directories: `logs.allowed_dirs`, or by
//!   default the directory of the source's path (or of a glob's fixed part) and below;
//! - not one of leakwatch's own files (config file, web config, TLS certificates, keys and CAs,
//!   admin token), compared by device and inode, so a hard link to one is refused too.
//!
//! A refusal is counted per source (`leakwatch_log_refusals_total`) and its reason shown on
//! `/logs` and `/status`; the follower logs it once while it lasts.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::LogSource;

/// File system magic numbers (`statfs.f_type`) of the special file systems refused.
const SPECIAL_FS: &[(u64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x1cd1, "devpts"),
];

/// The rules in force: set at start and replaced by a reload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// `logs.allowed_dirs`; empty: each source's own directory.
    pub(crate) allowed_dirs: Vec<PathBuf>,
    /// leakwatch's own files, with what each is (for the refusal's reason).
    pub(crate) own_files: Vec<(&'static str, PathBuf)>,
}

/// The policy shared by every follower (cheap to clone; a reload swaps its content).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedPolicy(Arc<RwLock<Arc<Policy>>>);

impl SharedPolicy {
    /// A shared policy starting as `policy`.
    pub(crate) fn new(policy: Policy) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(policy))))
    }

    /// Replaces the policy (a reload).
    pub(crate) fn set(&self, policy: Policy) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
    }

    /// The policy now.
    pub(crate) fn get(&self) -> Arc<Policy> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Policy {
    /// Whether the file opened at `path` (from the source's `pattern`) may be read; the error
    /// is the reason, naming the path.
    pub(crate) fn check(&self, pattern: &str, path: &Path, file: &File, meta: &Metadata) -> Result<(), String> {
        let refuse = |why: String| Err(format!("{}: {why}; refused", path.display()));
        if !meta.is_file() {
            return refuse(format!("not a regular file (a {})", crate::fsread::kind_of(meta)));
        }
        if let Ok(fs) = rustix::fs::fstatfs(file) {
            #[allow(clippy::unnecessary_cast)] // f_type is i64 or u32 depending on the target
            let magic = fs.f_type as u64;
            if let Some((_, name)) = SPECIAL_FS.iter().find(|(m, _)| *m == magic) {
                return refuse(format!("on the special file system {name}"));
            }
        }
        let real = match opened_path(file).map_or_else(|| std::fs::canonicalize(path), Ok) {
            Ok(real) => real,
            Err(e) => return refuse(format!("cannot resolve its real path: {e}")),
        };
        let allowed = match self.allowed_dirs.is_empty() {
            true => own_dir(pattern).into_iter().collect(),
            false => self.allowed_dirs.clone(),
        };
        let inside = allowed.iter().any(|dir| std::fs::canonicalize(dir).is_ok_and(|dir| real.starts_with(dir)));
        if !inside {
            let dirs: Vec<String> = allowed.iter().map(|d| d.display().to_string()).collect();
            return refuse(format!(
                "resolves to {}, outside the allowed directories [{}] (logs.allowed_dirs)",
                real.display(),
                dirs.join(", ")
            ));
        }
        for (what, own) in &self.own_files {
            let same = std::fs::metadata(own).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
            if same {
                return refuse(format!("the same file as leakwatch's {what} ({})", own.display()));
            }
        }
        Ok(())
    }
}

/// Where the opened file lives, symlinks resolved, as the kernel names the descriptor: still
/// known after the path is gone (a short-lived rotated file deleted right after it was opened).
fn opened_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let text = link.to_str()?;
    let real = Path::new(text.strip_suffix(" (deleted)").unwrap_or(text));
    real.is_absolute().then(|| real.to_path_buf())
}

/// The follower's check on a file it opened for `source`: counted and recorded when refused.
pub(crate) fn admit(source: &LogSource, pattern: &str, path: &Path, file: &File) -> Result<(), String> {
    let checked = file.metadata().map_err(|e| format!("{}: fstat failed: {e}", path.display()));
    match checked.and_then(|meta| source.paths.get().check(pattern, path, file, &meta)) {
        Ok(()) => {
            source.counters.admitted();
            Ok(())
        }
        Err(why) => {
            source.counters.refuse(&why);
            Err(why)
        }
    }
}

/// The directory a source's files may live in by default: the path's directory, or for a glob
/// the directory of its fixed part.
fn own_dir(pattern: &str) -> Option<PathBuf> {
    let fixed = match pattern.find(['*', '?', '[']) {
        Some(i) => &pattern[..i],
        None => pattern,
    };
    Path::new(fixed).parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn check(policy: &Policy, pattern: &str, path: &Path) -> Result<(), String> {
        let (file, meta) = crate::fsread::open_regular(path).map_err(|e| e.to_string())?;
        policy.check(pattern, path, &file, &meta)
    }

    #[test]
    fn links_to_secrets_special_files_and_outside_paths_are_refused() {
        let base = std::env::temp_dir().join(format!("leakwatch-guard-{}", std::process::id()));
        let (logs, secrets) = (base.join("logs"), base.join("secrets"));
        std::fs::create_dir_all(logs.join("pods")).unwrap();
        std::fs::create_dir_all(&secrets).unwrap();
        let token = secrets.join("token");
        std::fs::write(&token, "s3cret-token-0123456789").unwrap();
        let app = logs.join("app.log");
        std::fs::write(logs.join("pods/1.log"), "a line\n").unwrap();
        let policy = Policy { allowed_dirs: vec![], own_files: vec![("admin token", token.clone())] };
        let pattern = app.to_str().unwrap();

        symlink(logs.join("pods/1.log"), &app).unwrap();
        assert_eq!(check(&policy, pattern, &app), Ok(()), "a link within the source's directory");
        std::fs::remove_file(&app).unwrap();
        symlink(&token, &app).unwrap();
        let e = check(&policy, pattern, &app).unwrap_err();
        assert!(e.contains("outside the allowed directories"), "{e}");
        std::fs::remove_file(&app).unwrap();
        std::fs::hard_link(&token, &app).unwrap();
        let e = check(&policy, pattern, &app).unwrap_err();
        assert!(e.contains("the same file as leakwatch's admin token"), "{e}");
        std::fs::remove_file(&app).unwrap();
        symlink("/proc/self/environ", &app).unwrap();
        assert!(check(&policy, pattern, &app).unwrap_err().contains("special file system proc"));
        std::fs::remove_file(&app).unwrap();
        symlink("/proc/self/status", &app).unwrap();
        assert!(check(&policy, pattern, &app).unwrap_err().contains("special file system proc"));
        std::fs::remove_file(&app).unwrap();
        std::fs::create_dir(&app).unwrap();
        assert!(check(&policy, pattern, &app).unwrap_err().contains("a directory"));
        std::fs::remove_dir(&app).unwrap();
        // Allowed directories widen the default: the token's directory, yet the token is still own.
        symlink(&token, &app).unwrap();
        let wide = Policy { allowed_dirs: vec![base.clone()], ..policy.clone() };
        assert!(check(&wide, pattern, &app).unwrap_err().contains("admin token"));
        assert_eq!(own_dir("/var/log/containers/app-*.log"), Some(PathBuf::from("/var/log/containers")));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
