//! What a new configuration changes in the running one (pure: no I/O).

use crate::config::{LogSourceSpec, ValidConfig};
use crate::logs::SourceKind;

/// What happens to one log source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAction {
    /// The source stays where it is: its ring (lines, subscribers) stays, resized in place to
    /// the spec's caps.
    Keep(LogSourceSpec),
    /// The source stays but its path changed: following restarts at the new path; the ring
    /// (lines, subscribers) and counters stay.
    Move(LogSourceSpec),
    /// A new source.
    Add(LogSourceSpec),
    /// A source that is no longer configured: its reader stops and its streams end.
    Remove(String),
}

/// The actions that turn the sources `old` into `new`, removals first, then `new`'s order.
pub fn source_actions(old: &[LogSourceSpec], new: &[LogSourceSpec]) -> Vec<SourceAction> {
    let mut actions: Vec<SourceAction> = old
        .iter()
        .filter(|o| !new.iter().any(|n| n.name == o.name))
        .map(|o| SourceAction::Remove(o.name.clone()))
        .collect();
    for n in new {
        actions.push(match old.iter().find(|o| o.name == n.name) {
            None => SourceAction::Add(n.clone()),
            Some(o) if o.kind != n.kind => SourceAction::Move(n.clone()),
            Some(_) => SourceAction::Keep(n.clone()),
        });
    }
    actions
}

/// Settings that only take effect after a restart and differ between `old` and `new`, by key.
/// (The `run`-mode streams cannot differ: they follow from the command line.)
pub fn restart_only(old: &ValidConfig, new: &ValidConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.listen != new.listen {
        keys.push("listen");
    }
    if old.external_url != new.external_url {
        keys.push("web_external_url");
    }
    if old.console != new.console {
        keys.push("console");
    }
    keys
}

/// The sections whose values differ (for the reload's log line).
pub fn changed_sections(old: &ValidConfig, new: &ValidConfig) -> Vec<&'static str> {
    let target = |c: &ValidConfig| (format!("{:?}", c.selector), c.target_name.clone(), c.max_processes);
    let pss = |c: &ValidConfig| (c.pss_max_rss, c.pss_time_budget);
    let conns = |c: &ValidConfig| format!("{:?}", c.conns);
    [
        ("interval", old.interval != new.interval),
        ("procfs/sysfs roots", old.roots != new.roots),
        ("target", target(old) != target(new)),
        ("pss", pss(old) != pss(new)),
        ("logs", old.logs != new.logs),
        ("connections", conns(old) != conns(new)),
        ("tasks", format!("{:?}", old.tasks) != format!("{:?}", new.tasks)),
        ("alerts", old.alerts != new.alerts),
        ("alerts.alertmanager", old.alertmanager != new.alertmanager),
        ("admin.token_file", old.admin_token_file != new.admin_token_file),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Whether a source is a file the reloader follows (the `run`-mode streams are captured).
pub fn is_file(kind: &SourceKind) -> bool {
    matches!(kind, SourceKind::File { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, Config};
    use crate::logs::ring::RingLimits;

    fn spec(name: &str, path: &str, max_lines: usize) -> LogSourceSpec {
        LogSourceSpec {
            name: name.into(),
            kind: SourceKind::File { pattern: path.into() },
            limits: RingLimits { max_lines, max_bytes: 1 << 20, max_line_bytes: 1024, max_subscribers: 4 },
        }
    }

    #[test]
    fn sources_are_kept_moved_added_and_removed_by_name() {
        let old = [spec("a", "/a.log", 10), spec("b", "/b.log", 10), spec("c", "/c.log", 10)];
        let new = [spec("c", "/c.log", 5), spec("b", "/b2.log", 10), spec("d", "/d.log", 10)];
        let actions = source_actions(&old, &new);
        assert_eq!(
            actions,
            vec![
                SourceAction::Remove("a".into()),
                SourceAction::Keep(new[0].clone()),
                SourceAction::Move(new[1].clone()),
                SourceAction::Add(new[2].clone()),
            ]
        );
        assert!(source_actions(&old, &old).iter().all(|a| matches!(a, SourceAction::Keep(_))));
    }

    #[test]
    fn only_the_listen_address_needs_a_restart_and_changes_are_named_by_section() {
        let v = |yaml: &str| validate(&Config::from_yaml(yaml.as_bytes()).unwrap(), false).unwrap();
        let old = v("listen: 127.0.0.1:1000\n");
        let new = v("listen: 127.0.0.1:2000\ninterval: 1s\ntarget:\n  pid: 4\nalerts:\n  rules:\n    - ratio: memory_utilization\n      levels: {warning: 0.5}\n");
        assert_eq!(restart_only(&old, &new), vec!["listen"]);
        assert_eq!(changed_sections(&old, &new), vec!["interval", "target", "alerts"]);
        assert!(restart_only(&old, &old).is_empty() && changed_sections(&old, &old).is_empty());
    }
}
