//! Applies a validated configuration to the running parts, in place: the log sources and their
//! readers, the sampler's settings, the alert rules, the Alertmanager push and the admin token.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::plan::{self, SourceAction};
use crate::alert::rules::AlertRules;
use crate::alert::{self, AlertState};
use crate::cleanup::Cleanup;
use crate::config::{LogSourceSpec, Selector, ValidConfig};
use crate::logs::guard::{Policy, SharedPolicy};
use crate::logs::tail::TailThread;
use crate::logs::{LogSource, LogSources};
use crate::sample::target::TargetSpec;
use crate::sample::{SamplerConfig, SamplerSettings};
use crate::token::AdminToken;
use crate::web::SharedUsers;

/// What `leakwatch run` fixes for the whole run: the wrapped command's pid and program.
#[derive(Debug, Clone, Default)]
pub struct Wrapped {
    /// The child's pid, in `run` mode.
    pub pid: Option<i32>,
    /// The program's path, in `run` mode.
    pub program: Option<OsString>,
}

impl Wrapped {
    /// The sampler's settings for `config`.
    pub fn sampler_config(&self, config: &ValidConfig, logs: Arc<LogSources>) -> SamplerConfig {
        let spec = match (&config.selector, self.pid) {
            (_, Some(pid)) => TargetSpec::Child(pid),
            (Selector::Own | Selector::Wrapped, None) => TargetSpec::Own,
            (Selector::Pid(p), None) => TargetSpec::Pid(*p),
            (Selector::Pidfile(f), None) => TargetSpec::Pidfile(f.clone()),
            (Selector::ProcessName(n), None) => TargetSpec::ProcessName(n.clone()),
            (Selector::CmdlineRegex(r), None) => TargetSpec::CmdlineRegex(r.clone()),
        };
        let target_name =
            config.target_name.clone().unwrap_or_else(|| self.default_target_name(&config.selector, &config.roots));
        let settings = SamplerSettings {
            roots: config.roots.clone(),
            spec,
            target_name,
            max_processes: config.max_processes,
            pss_max_rss: config.pss_max_rss,
            pss_time_budget: config.pss_time_budget,
            tiers: config.tiers,
            logs,
            conns: config.conns.clone(),
            tasks: config.tasks,
        };
        SamplerConfig { settings, interval: config.interval }
    }

    /// The `target` label without `target.name`: the wrapped command's name, the process name,
    /// a `--pid`'s command name (`comm`, or `pid-N` when there is no such process), a pidfile's
    /// stem (`/run/nginx.pid`: `nginx`), `leakwatch` for itself, else `target`.
    fn default_target_name(&self, selector: &Selector, roots: &crate::roots::Roots) -> String {
        match (selector, &self.program) {
            (_, Some(program)) => Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()),
            (Selector::Own, None) => Some("leakwatch".to_owned()),
            (Selector::ProcessName(n), None) => Some(n.clone()),
            (Selector::Pid(pid), None) => Some(
                std::fs::read_to_string(roots.pid(*pid).join("comm"))
                    .ok()
                    .map(|comm| comm.trim().to_owned())
                    .filter(|comm| !comm.is_empty() && comm.chars().all(|c| !c.is_control()))
                    .unwrap_or_else(|| format!("pid-{pid}")),
            ),
            (Selector::Pidfile(f), None) => f.file_stem().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        }
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "target".to_owned())
    }
}

/// The log registry and the tail thread of every file source.
pub struct Followers {
    logs: Arc<LogSources>,
    tails: Vec<(String, TailThread)>,
    /// Which files the readers may open (shared by every source).
    pub paths: SharedPolicy,
}

/// The log path policy of `config` ([`crate::logs::guard`]): its allowed directories and
/// leakwatch's own files (the admin token, the web config and its TLS files, and `config_file`).
pub fn path_policy(config: &ValidConfig, config_file: Option<&Path>) -> Policy {
    let mut own_files: Vec<(&'static str, PathBuf)> = Vec::new();
    own_files.extend(config_file.map(|f| ("config file", f.to_path_buf())));
    own_files.extend(config.admin_token_file.clone().map(|f| ("admin token", f)));
    own_files.extend(config.web.iter().flat_map(|w| w.files.iter().cloned()));
    Policy { allowed_dirs: config.logs_allowed_dirs.clone(), own_files }
}

impl Followers {
    /// Starts a tail thread for every file source in `logs` (a source that cannot be followed
    /// is logged and stays, empty); sources added later follow `paths` too.
    pub fn start(logs: Arc<LogSources>, paths: SharedPolicy) -> Self {
        let mut followers = Self { logs, tails: Vec::new(), paths };
        for source in followers.logs.list().iter() {
            followers.follow(source.clone());
        }
        followers
    }

    fn follow(&mut self, source: Arc<LogSource>) {
        if !plan::is_file(&source.kind) {
            return;
        }
        match TailThread::start(source.clone()) {
            Ok(t) => self.tails.push((source.name.clone(), t)),
            Err(e) => tracing::error!(source = %source.name, "cannot start following the source: {e}"),
        }
    }

    fn stop(&mut self, name: &str) {
        if let Some(i) = self.tails.iter().position(|(n, _)| n == name) {
            self.tails.swap_remove(i).1.stop();
        }
    }

    /// Turns the sources into `new` (blocking: stopping a tail thread joins it).
    pub fn apply(&mut self, old: &[LogSourceSpec], new: &[LogSourceSpec]) {
        let current = self.logs.list();
        let find = |name: &str| current.iter().find(|s| s.name == name).cloned();
        let mut next: Vec<Arc<LogSource>> = Vec::with_capacity(new.len());
        let mut removed = Vec::new();
        for action in plan::source_actions(old, new) {
            match action {
                SourceAction::Remove(name) => removed.push(name),
                SourceAction::Keep(spec) => match find(&spec.name) {
                    Some(s) => {
                        s.ring.set_limits(spec.limits);
                        next.push(s);
                    }
                    None => next.push(self.add(&spec)),
                },
                SourceAction::Move(spec) => match find(&spec.name) {
                    Some(s) => {
                        // The old path's last lines are read before the new one is followed.
                        self.stop(&spec.name);
                        s.ring.set_limits(spec.limits);
                        let moved = Arc::new(s.moved_to(spec.kind.clone()));
                        self.follow(moved.clone());
                        tracing::info!(source = %spec.name, "log source now follows a new path; its buffer is kept");
                        next.push(moved);
                    }
                    None => next.push(self.add(&spec)),
                },
                SourceAction::Add(spec) => {
                    tracing::info!(source = %spec.name, "log source added");
                    next.push(self.add(&spec));
                }
            }
        }
        self.logs.replace(next);
        // Once out of the registry: stop the reader, then end the live streams.
        for name in removed {
            self.stop(&name);
            if let Some(s) = find(&name) {
                s.ring.close();
            }
            tracing::info!(source = %name, "log source removed");
        }
    }

    fn add(&mut self, spec: &LogSourceSpec) -> Arc<LogSource> {
        let source =
            Arc::new(LogSource::new(spec.name.clone(), spec.kind.clone(), spec.limits).with_paths(self.paths.clone()));
        self.follow(source.clone());
        source
    }

    /// Stops every tail thread after a last read (shutdown; blocking).
    pub fn stop_all(self) {
        self.tails.into_iter().for_each(|(_, t)| t.stop());
    }
}

/// The Alertmanager push task, restarted when its target changes.
pub struct Push {
    alerts: watch::Receiver<Arc<AlertState>>,
    identity: alert::push::Identity,
    tracker: TaskTracker,
    token: CancellationToken,
    current: Option<(alert::push::Target, CancellationToken)>,
}

impl Push {
    /// No push yet; [`Push::set`] starts one as a task of `tracker` under `token`, sending as
    /// `identity`.
    pub fn new(
        alerts: watch::Receiver<Arc<AlertState>>,
        identity: alert::push::Identity,
        tracker: TaskTracker,
        token: CancellationToken,
    ) -> Self {
        Self { alerts, identity, tracker, token, current: None }
    }

    /// Pushes to `target` (nothing with `None`), restarting the task when it changed.
    pub fn set(&mut self, target: Option<alert::push::Target>) {
        if self.current.as_ref().map(|(t, _)| t) == target.as_ref() {
            return;
        }
        if let Some((_, stop)) = self.current.take() {
            stop.cancel();
        }
        if let Some(target) = target {
            tracing::info!(alertmanager = %target.url.given, "pushing alerts to Alertmanager");
            let stop = self.token.child_token();
            self.tracker.spawn(alert::push::run(
                target.clone(),
                self.identity.clone(),
                self.alerts.clone(),
                stop.clone(),
            ));
            self.current = Some((target, stop));
        }
    }
}

/// Everything a reload changes, and the config running now.
pub struct Running {
    /// The config in effect.
    pub config: ValidConfig,
    /// The `run`-mode facts.
    pub wrapped: Wrapped,
    /// The log registry and readers; `None` only while a reload works on them off the runtime.
    pub followers: Option<Followers>,
    /// The sampling loop's settings.
    pub sampler: watch::Sender<Arc<SamplerConfig>>,
    /// The alert engine's rules.
    pub rules: watch::Sender<Arc<AlertRules>>,
    /// The Alertmanager push.
    pub push: Push,
    /// The admin endpoints' token.
    pub admin: AdminToken,
    /// The cleanup task's handle (its settings).
    pub cleanup: Cleanup,
    /// The log endpoints' own users (`logs.basic_auth_users`).
    pub log_users: SharedUsers,
}

impl Running {
    /// Applies `new` (already validated). Returns the keys that need a restart to take effect.
    pub async fn apply(&mut self, new: ValidConfig) -> Vec<&'static str> {
        let restart = plan::restart_only(&self.config, &new);
        for key in &restart {
            tracing::warn!(key, "this setting takes effect after a restart; the rest is reloaded");
        }
        // Rules first: the pass the new sampler settings start is evaluated with them.
        if new.alerts != self.config.alerts {
            self.rules.send_replace(Arc::new(new.alerts.clone()));
        }
        if let Some(mut followers) = self.followers.take() {
            // The config file stays the one leakwatch started with.
            let config_file =
                followers.paths.get().own_files.iter().find(|(w, _)| *w == "config file").map(|f| f.1.clone());
            followers.paths.set(path_policy(&new, config_file.as_deref()));
            let (old, next) = (self.config.logs.clone(), new.logs.clone());
            let done = tokio::task::spawn_blocking(move || {
                followers.apply(&old, &next);
                followers
            })
            .await;
            match done {
                Ok(f) => self.followers = Some(f),
                Err(e) => tracing::error!("applying the log sources failed: {e}"),
            }
        }
        self.admin.set_file(new.admin_token_file.clone());
        self.cleanup.set_settings(new.cleanup);
        self.log_users.replace(new.logs_basic_auth_users.clone());
        self.push.set(new.alertmanager.clone());
        let logs = self.followers.as_ref().map(|f| f.logs.clone()).unwrap_or_default();
        self.sampler.send_replace(Arc::new(self.wrapped.sampler_config(&new, logs)));
        self.config = new;
        restart
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::ring::{Cursor, ReadLimits, RingLimits};
    use crate::logs::SourceKind;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn spec(name: &str, path: &Path, max_lines: usize) -> LogSourceSpec {
        LogSourceSpec {
            name: name.into(),
            kind: SourceKind::File { pattern: path.to_string_lossy().into_owned() },
            limits: RingLimits { max_lines, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 4 },
        }
    }

    fn append(path: &Path, lines: std::ops::Range<u32>) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        for i in lines {
            writeln!(f, "line {i}").unwrap();
        }
    }

    fn texts(source: &LogSource) -> Vec<String> {
        let page = source.ring.read(Cursor::After(0), ReadLimits { lines: usize::MAX, bytes: usize::MAX }, None);
        page.iter().map(|l| String::from_utf8_lossy(l.text).into_owned()).collect()
    }

    fn wait_for(what: &str, ok: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn expected(lines: std::ops::Range<u32>) -> Vec<String> {
        lines.map(|i| format!("line {i}")).collect()
    }

    #[test]
    fn sources_keep_their_lines_across_caps_and_path_changes_and_removed_ones_end() {
        let dir = std::env::temp_dir().join(format!("leakwatch-apply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, b2, d) = (dir.join("a.log"), dir.join("b.log"), dir.join("b2.log"), dir.join("d.log"));
        for p in [&a, &b, &b2, &d] {
            std::fs::write(p, "").unwrap();
        }
        let old = vec![spec("a", &a, 100), spec("b", &b, 100), spec("gone", &d, 100)];
        let sources = old.iter().map(|s| Arc::new(LogSource::new(s.name.clone(), s.kind.clone(), s.limits))).collect();
        let logs = Arc::new(LogSources::new(sources));
        let mut followers = Followers::start(logs.clone(), SharedPolicy::default());
        append(&a, 0..10);
        append(&b, 0..10);
        let (ring_a, ring_b) = (logs.get("a").unwrap().ring.clone(), logs.get("b").unwrap().ring.clone());
        wait_for("the first lines", || ring_a.stats().lines == 10 && ring_b.stats().lines == 10);
        let gone = logs.get("gone").unwrap();
        let mut gone_sub = gone.ring.subscribe(0).unwrap();

        // a: caps change (more lines allowed); b: moves to b2.log; gone: removed; new: added.
        let new = vec![spec("b", &b2, 100), spec("a", &a, 200), spec("new", &d, 100)];
        followers.apply(&old, &new);
        let names: Vec<String> = logs.list().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names, ["b", "a", "new"], "the new order");
        let (now_a, now_b) = (logs.get("a").unwrap(), logs.get("b").unwrap());
        assert!(Arc::ptr_eq(&now_a.ring, &ring_a) && Arc::ptr_eq(&now_b.ring, &ring_b), "the same rings");
        assert_eq!(now_a.ring.limits().max_lines, 200);
        assert_eq!(now_b.kind, new[0].kind);
        assert_eq!(texts(&now_a), expected(0..10), "every buffered line of a is still there");
        assert_eq!(texts(&now_b), expected(0..10), "every buffered line of b is still there");
        append(&a, 10..20);
        append(&b2, 10..20);
        append(&b, 100..101);
        wait_for("lines after the reload", || ring_a.stats().lines == 20 && ring_b.stats().lines == 20);
        assert_eq!(texts(&now_a), expected(0..20));
        assert_eq!(texts(&now_b), expected(0..20), "b follows b2.log and no longer b.log");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(rt.block_on(gone_sub.next_page(ReadLimits { lines: 10, bytes: 1 << 20 })).is_none(), "stream ended");

        // Shrinking below what is held evicts the oldest only.
        let shrunk = vec![spec("b", &b2, 5), spec("a", &a, 200), spec("new", &d, 100)];
        followers.apply(&new, &shrunk);
        assert_eq!(texts(&logs.get("b").unwrap()), expected(15..20));
        followers.stop_all();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_names() {
        let dir = std::env::temp_dir().join(format!("leakwatch-names-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("4")).unwrap();
        std::fs::write(dir.join("4/comm"), "nginx: worker\n").unwrap();
        let roots = crate::roots::Roots::new(&dir, "/nonexistent-sys");
        let own = Wrapped::default();
        assert_eq!(own.default_target_name(&Selector::Own, &roots), "leakwatch");
        assert_eq!(own.default_target_name(&Selector::ProcessName("nginx".into()), &roots), "nginx");
        assert_eq!(own.default_target_name(&Selector::Pid(4), &roots), "nginx: worker", "the pid's comm");
        assert_eq!(own.default_target_name(&Selector::Pid(5), &roots), "pid-5", "no such process");
        assert_eq!(own.default_target_name(&Selector::Pidfile("/run/app.pid".into()), &roots), "app");
        let run = Wrapped { pid: Some(7), program: Some("/usr/bin/python3".into()) };
        assert_eq!(run.default_target_name(&Selector::Wrapped, &roots), "python3");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
