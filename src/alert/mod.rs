//! In-process alerting (singular `alert`, not to be confused with the generated files in the
//! top-level `alerts/` directory).
//!
//! ```text
//!  watch<Arc<Snapshot>> ──► run(): Engine::evaluate(&snapshot) ──► watch<Arc<AlertState>>
//!                               │ rules.rs   threshold / prediction / OOM kill rules (data + defaults)
//!                               │ leak.rs    significant growth, the peaks' time to the limit
//!                               │ history.rs bounded sample and transition rings
//!                               ▼
//!                           engine.rs  inactive → pending → firing → resolved, `for`, hysteresis
//!  watch<Arc<AlertState>> ──► push.rs (optional) ──► Alertmanager POST /api/v2/alerts
//!  rules::defaults() ──► promgen.rs ──► alerts/leakwatch-rules.yaml, alerts/leakwatch-prometheusrule.yaml
//! ```
//!
//! The engine evaluates each snapshot once, on the sampler's cadence, and never reads files.

pub mod engine;
pub mod history;
pub mod leak;
pub mod promgen;
pub(crate) mod push;
pub(crate) mod pusher;
pub mod rules;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use engine::{AlertState, Engine};

use rules::AlertRules;

use crate::measure::TrimInbox;
use crate::snapshot::Snapshot;

/// Evaluates every new snapshot and publishes the resulting state, until cancelled or until the
/// sampler's channel closes. New rules on `rules` (a reload) apply from the next evaluation;
/// trim requests from `trims` are answered between evaluations.
pub(crate) async fn run(
    mut engine: Engine,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    mut rules: watch::Receiver<Arc<AlertRules>>,
    tx: watch::Sender<Arc<AlertState>>,
    mut trims: TrimInbox,
    token: CancellationToken,
) {
    rules.mark_unchanged();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            Some(reply) = trims.recv() => {
                let _ = reply.send(engine.trim());
                continue;
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
        // Rules sent before this snapshot was taken apply to it.
        if rules.has_changed().unwrap_or(false) {
            engine.set_rules((**rules.borrow_and_update()).clone());
        }
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.seq == 0 {
            continue;
        }
        tx.send_replace(Arc::new(engine.evaluate(&snapshot)));
    }
}
