//! The `leakwatch_config_*` families: reload health, as Prometheus and Alertmanager spell it.

use super::family::Family;
use crate::metric_names as n;
use crate::reload::ReloadStatus;

/// Adds the reload families.
pub(crate) fn reload(out: &mut Vec<Family>, r: &ReloadStatus) {
    let mut f = Family::gauge(n::CONFIG_LAST_RELOAD_SUCCESSFUL, "Whether the last reload succeeded.");
    f.add(&[], if r.last_successful { 1.0 } else { 0.0 });
    out.push(f);
    let mut f = Family::gauge(n::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, "Last good config load.");
    f.add(&[], crate::seconds::unix(r.last_success_at));
    out.push(f);
    let mut f = Family::counter(n::CONFIG_RELOADS_TOTAL, "Config reload attempts.");
    // A result's series appears with its first reload, as client libraries create label sets.
    for (result, count) in [("success", r.successes), ("failure", r.failures)].into_iter().filter(|(_, c)| *c > 0) {
        f.add(&[("result", result)], count as f64);
    }
    out.push(f);
    let mut f = Family::gauge(
        n::CONFIG_HASH,
        "Hash of the configuration file in use (the first 48 bits of its SHA-256); absent without a config file.",
    );
    f.add_opt(&[], r.hash_value());
    out.push(f);
}
