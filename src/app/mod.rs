//! The one place that builds leakwatch's running parts from a validated config
//! ([`App::build`]) and turns them into another config's ([`App::apply`], a reload). Each domain
//! converts its own part of the config and reconfigures itself; this module only hands the parts
//! over:
//!
//! ```text
//!  ValidConfig ─► App::build ─┬─► logs::follow::Followers::new(logs), start   (sources, tail threads)
//!                             ├─► child::start (run mode: stdout/stderr captured into their sources)
//!                             ├─► sample::SamplerConfig::new(sampler) ─► watch ─► sample::run
//!                             ├─► alert rules ─► watch ─► alert::run; alert::pusher::Pusher::start
//!                             ├─► admin token, cleanup settings, history, log users
//!                             └─► http::AppState (the server's view of all of it)
//!  ValidConfig ─► App::apply: the same parts' reconfigure (Followers, SamplerConfig::new, rules,
//!                 Pusher, admin token, cleanup, log users)
//! ```
//!
//! `lifecycle` binds, spawns the [`Built::tasks`], handles signals and the grace period;
//! `reload` watches, validates and calls [`App::apply`] (through [`crate::reload::Reconfigure`]).

pub(crate) mod child;

use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::alert::pusher::Pusher;
use crate::alert::rules::AlertRules;
use crate::alert::{self, AlertState, Engine};
use crate::cleanup::{self, Cleaner, Cleanup};
use crate::config::ValidConfig;
use crate::history::{self, SharedHistory};
use crate::http::AppState;
use crate::info::StaticInfo;
use crate::logs::follow::Followers;
use crate::logs::guard::{Policy, SharedPolicy};
use crate::measure;
use crate::reload::{plan, ReloadHandle};
use crate::sample::settings::RunMode;
use crate::sample::{self, Sampler, SamplerConfig};
use crate::snapshot::Snapshot;
use crate::token::AdminToken;
use crate::web::SharedUsers;

/// A long-lived task for `lifecycle` to spawn.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the build needs besides the config.
pub(crate) struct Start<'a> {
    /// The config file (its path is one of leakwatch's own files, never a log source).
    pub(crate) config_file: Option<&'a Path>,
    /// `leakwatch run`'s command.
    pub(crate) command: Option<&'a [OsString]>,
    /// The build and start facts.
    pub(crate) info: StaticInfo,
    /// The address the server listens on.
    pub(crate) local: SocketAddr,
    /// The reloader's handle (for `POST /-/reload` and the reload metrics).
    pub(crate) reloads: ReloadHandle,
    /// Where restarted tasks (the Alertmanager push) run.
    pub(crate) tracker: TaskTracker,
    /// Cancels every task at shutdown.
    pub(crate) token: CancellationToken,
}

/// The parts built, for `lifecycle` to start.
pub(crate) struct Built {
    /// The reconfigurable parts (handed to the reloader).
    pub(crate) app: App,
    /// The sampler, alert engine, history and cleanup tasks.
    pub(crate) tasks: Vec<Task>,
    /// The HTTP server's state.
    pub(crate) server: AppState,
    /// The snapshots (the wrapped command's end waits for its OOM report).
    pub(crate) snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The wrapped command, in `run` mode.
    pub(crate) child: Option<child::Child>,
}

/// Everything a reload changes, and the config running now.
pub(crate) struct App {
    config: ValidConfig,
    config_file: Option<PathBuf>,
    run_mode: RunMode,
    /// `None` only while a reload works on them off the runtime.
    followers: Option<Followers>,
    sampler: watch::Sender<Arc<SamplerConfig>>,
    rules: watch::Sender<Arc<AlertRules>>,
    pusher: Pusher,
    admin: AdminToken,
    cleanup: Cleanup,
    log_users: SharedUsers,
}

impl App {
    /// Builds every part for `config`, starting the log readers, the wrapped command (with
    /// `start.command`) and the Alertmanager push; the other tasks are returned to spawn.
    pub(crate) fn build(config: &ValidConfig, start: Start<'_>) -> Result<Built, child::SpawnError> {
        let Start { config_file, command, info, local, reloads, tracker, token } = start;
        let mut followers = Followers::new(&config.logs, SharedPolicy::new(path_policy(config, config_file)));
        let logs = followers.logs().clone();
        let child = command.map(|c| child::start(c, &logs.list())).transpose()?;
        let run_mode =
            RunMode { pid: child.as_ref().map(|c| c.pid), program: command.and_then(|c| c.first().cloned()) };
        let sampling = SamplerConfig::new(&config.sampler, &run_mode, logs.clone());
        let target_name = sampling.settings.target_name.clone();
        tracing::info!(%local, target = %target_name, watching = %sampling.settings.spec.describe(), interval = ?sampling.interval, "leakwatch listening");
        // Followed once the listening line is out (a source's problem is logged after it).
        followers.start();

        let (alert_tx, alert_rx) = watch::channel(Arc::new(AlertState::default()));
        let sampler = Sampler::new(sampling.settings.clone()).with_trends(alert_rx.clone());
        let wake_sampler = sampler.wake();
        let (sampler_tx, sampler_rx) = watch::channel(Arc::new(sampling));
        let (rules_tx, rules_rx) = watch::channel(Arc::new(config.alerts.clone()));
        let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(&target_name)));
        let (sampler_trims, sampler_inbox) = measure::trim_channel();
        let (engine_trims, engine_inbox) = measure::trim_channel();
        let mut tasks: Vec<Task> = vec![
            Box::pin(sample::run(sampler, sampler_rx, tx, sampler_inbox, token.child_token())),
            Box::pin(alert::run(
                Engine::new(config.alerts.clone()),
                rx.clone(),
                rules_rx,
                alert_tx,
                engine_inbox,
                token.child_token(),
            )),
        ];
        let identity = alert::push::Identity::new(
            &info,
            config.external_url.as_deref(),
            local,
            std::env::var("POD_IP").ok().as_deref(),
            hostname().as_deref(),
        );
        let pusher =
            Pusher::start(alert_rx.clone(), identity, tracker, token.child_token(), config.alertmanager.clone());
        let admin = AdminToken::new(config.admin_token_file.clone());
        let (cleaner, cleanup) = Cleaner::new(config.cleanup);
        // A config reload replaces the log endpoints' users through this handle.
        let log_users = SharedUsers::new(config.logs_basic_auth_users.clone());
        log_web_config(config);
        let history = SharedHistory::new(config.console.history);
        tasks.push(Box::pin(history::run(history.clone(), rx.clone(), alert_rx.clone(), token.child_token())));

        let server = AppState::new(rx.clone(), info, logs.clone(), token.child_token())
            .with_alerts(alert_rx)
            .with_admin(admin.clone())
            .with_web(config.web.clone(), log_users.clone())
            .with_reload(reloads)
            .with_cleanup(cleanup.clone())
            .with_console(history.clone(), config.console, config.sampler.interval);
        let cleaner = cleaner
            .trim_directly(logs)
            .trim_directly(Arc::new(history))
            .trim_directly(server.metrics_cache())
            .ask("sampler", sampler_trims)
            .ask("alert_engine", engine_trims)
            .wake_sampler(wake_sampler);
        tasks.push(Box::pin(cleanup::run(cleaner, rx.clone(), token.child_token())));
        let app = App {
            config: config.clone(),
            config_file: config_file.map(Path::to_path_buf),
            run_mode,
            followers: Some(followers),
            sampler: sampler_tx,
            rules: rules_tx,
            pusher,
            admin,
            cleanup,
            log_users,
        };
        Ok(Built { app, tasks, server, snapshots: rx, child })
    }

    /// The config in effect.
    pub(crate) fn config(&self) -> &ValidConfig {
        &self.config
    }

    /// Applies `new` (already validated). Returns the keys that need a restart to take effect.
    pub(crate) async fn apply(&mut self, new: ValidConfig) -> Vec<&'static str> {
        let restart = plan::restart_only(&self.config, &new);
        for key in &restart {
            tracing::warn!(key, "this setting takes effect after a restart; the rest is reloaded");
        }
        // Rules first: the pass the new sampler settings start is evaluated with them.
        if new.alerts != self.config.alerts {
            self.rules.send_replace(Arc::new(new.alerts.clone()));
        }
        if let Some(mut followers) = self.followers.take() {
            followers.paths.set(path_policy(&new, self.config_file.as_deref()));
            let (old, next) = (self.config.logs.clone(), new.logs.clone());
            let done = tokio::task::spawn_blocking(move || {
                followers.reconfigure(&old, &next);
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
        self.pusher.reconfigure(new.alertmanager.clone());
        let logs = self.followers.as_ref().map(|f| f.logs().clone()).unwrap_or_default();
        self.sampler.send_replace(Arc::new(SamplerConfig::new(&new.sampler, &self.run_mode, logs)));
        self.config = new;
        restart
    }

    /// Stops the log readers after a last read (shutdown).
    pub(crate) async fn stop(mut self) {
        if let Some(followers) = self.followers.take() {
            // Joining threads blocks: do it off the runtime thread.
            let _ = tokio::task::spawn_blocking(move || followers.stop_all()).await;
        }
    }
}

impl crate::reload::Reconfigure for App {
    fn config(&self) -> &ValidConfig {
        App::config(self)
    }

    fn apply(&mut self, new: ValidConfig) -> impl Future<Output = Vec<&'static str>> + Send {
        App::apply(self, new)
    }

    fn stop(self) -> impl Future<Output = ()> + Send {
        App::stop(self)
    }
}

/// The log path policy of `config` ([`crate::logs::guard`]): its allowed directories and
/// leakwatch's own files (the admin token, the web config and its TLS files, and `config_file`).
fn path_policy(config: &ValidConfig, config_file: Option<&Path>) -> Policy {
    let mut own_files: Vec<(&'static str, PathBuf)> = Vec::new();
    own_files.extend(config_file.map(|f| ("config file", f.to_path_buf())));
    own_files.extend(config.admin_token_file.clone().map(|f| ("admin token", f)));
    own_files.extend(config.web.iter().flat_map(|w| w.files.iter().cloned()));
    Policy { allowed_dirs: config.logs_allowed_dirs.clone(), own_files }
}

/// The kernel's host name (the pod name in Kubernetes), for the `instance` label's fallback.
fn hostname() -> Option<String> {
    let path = crate::roots::Roots::default().proc_file("sys/kernel/hostname");
    std::fs::read_to_string(path).ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
}

/// Says what the web config turned on, and what of it leakwatch serves differently.
fn log_web_config(config: &ValidConfig) {
    if let Some(web) = &config.web {
        let users = web.users.as_ref().map_or(0, |u| u.names().count());
        tracing::info!(file = %web.path.display(), tls = web.tls.is_some(), basic_auth_users = users, "web config loaded");
        for warning in &web.warnings {
            tracing::warn!(file = %web.path.display(), "{warning}");
        }
    }
    if let Some(users) = &config.logs_basic_auth_users {
        tracing::info!(users = users.names().count(), "log endpoints protected by logs.basic_auth_users");
        if config.web.as_ref().is_none_or(|w| w.tls.is_none()) {
            tracing::warn!("logs.basic_auth_users without TLS: passwords cross the network in clear");
        }
    }
}
