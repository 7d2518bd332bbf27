//! What a new configuration changes in the running one (pure: no I/O).

use crate::config::ValidConfig;
use crate::sample::settings::SamplerSection;

/// Settings that only take effect after a restart and differ between `old` and `new`, by key.
/// (The `run`-mode streams cannot differ: they follow from the command line.)
pub(crate) fn restart_only(old: &ValidConfig, new: &ValidConfig) -> Vec<&'static str> {
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
pub(crate) fn changed_sections(old: &ValidConfig, new: &ValidConfig) -> Vec<&'static str> {
    let (o, n) = (&old.sampler, &new.sampler);
    let target = |c: &SamplerSection| (format!("{:?}", c.selector), c.target_name.clone(), c.max_processes);
    let pss = |c: &SamplerSection| (c.pss_max_rss, c.pss_time_budget);
    [
        ("interval", o.interval != n.interval),
        ("procfs/sysfs roots", o.roots != n.roots),
        ("target", target(o) != target(n)),
        ("pss", pss(o) != pss(n)),
        ("sampling", o.tiers != n.tiers),
        ("logs", old.logs != new.logs),
        ("connections", format!("{:?}", o.conns) != format!("{:?}", n.conns)),
        ("tasks", format!("{:?}", o.tasks) != format!("{:?}", n.tasks)),
        ("alerts", old.alerts != new.alerts),
        ("alerts.alertmanager", old.alertmanager != new.alertmanager),
        ("admin.token_file", old.admin_token_file != new.admin_token_file),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, Config};

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
