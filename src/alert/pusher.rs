//! The Alertmanager push as a running part: one [`push::run`] task while `alerts.alertmanager`
//! names a target, restarted when the target changes and stopped when it goes.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::push::{self, Identity, Target};
use super::AlertState;

/// The Alertmanager push task, restarted when its target changes.
pub(crate) struct Pusher {
    alerts: watch::Receiver<Arc<AlertState>>,
    identity: Identity,
    tracker: TaskTracker,
    token: CancellationToken,
    current: Option<(Target, CancellationToken)>,
}

impl Pusher {
    /// Pushes the alert states of `alerts` to `target` (nothing with `None`) as a task of
    /// `tracker` under `token`, sending as `identity`.
    pub(crate) fn start(
        alerts: watch::Receiver<Arc<AlertState>>,
        identity: Identity,
        tracker: TaskTracker,
        token: CancellationToken,
        target: Option<Target>,
    ) -> Self {
        let mut pusher = Self { alerts, identity, tracker, token, current: None };
        pusher.reconfigure(target);
        pusher
    }

    /// Pushes to `target` (nothing with `None`), restarting the task when it changed.
    pub(crate) fn reconfigure(&mut self, target: Option<Target>) {
        if self.current.as_ref().map(|(t, _)| t) == target.as_ref() {
            return;
        }
        if let Some((_, stop)) = self.current.take() {
            stop.cancel();
        }
        if let Some(target) = target {
            tracing::info!(alertmanager = %target.url.given, "pushing alerts to Alertmanager");
            let stop = self.token.child_token();
            self.tracker.spawn(push::run(target.clone(), self.identity.clone(), self.alerts.clone(), stop.clone()));
            self.current = Some((target, stop));
        }
    }
}
