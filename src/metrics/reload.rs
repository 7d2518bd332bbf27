//! The `leakwatch_config_*` families: reload health, as Prometheus and Alertmanager spell it.

use super::family::Family;
use crate::reload::ReloadStatus;

/// Adds the reload families.
pub fn reload(out: &mut Vec<Family>, r: &ReloadStatus) {
    let mut f = Family::gauge("leakwatch_config_last_reload_successful", "Whether the last reload succeeded.");
    f.add(&[], if r.last_successful { 1.0 } else { 0.0 });
    out.push(f);
    let mut f =
        Family::gauge("leakwatch_config_last_reload_success_timestamp_seconds", "Last good config load, Unix seconds.");
    f.add(&[], crate::seconds::unix(r.last_success_at));
    out.push(f);
    let mut f = Family::counter("leakwatch_config_reloads_total", "Configuration reload attempts since start.");
    f.add(&[("result", "success")], r.successes as f64);
    f.add(&[("result", "failure")], r.failures as f64);
    out.push(f);
    let mut f = Family::gauge(
        "leakwatch_config_hash",
        "Hash of the configuration file in use (the first 48 bits of its SHA-256); absent without a config file.",
    );
    f.add_opt(&[], r.hash_value());
    out.push(f);
}
