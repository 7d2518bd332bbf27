//! What `/metrics` shows about reloads (the Prometheus convention:
//! `*_config_last_reload_successful`, `*_config_last_reload_success_timestamp_seconds`).

use std::time::SystemTime;

/// SHA-256 of a config file.
pub type ConfigHash = [u8; 32];

/// Reload figures at one moment (plain data, published on a watch channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Reload attempts so far (successful or not); changes with every attempt.
    pub(crate) generation: u64,
    /// Whether the last attempt succeeded (the start counts as one).
    pub(crate) last_successful: bool,
    /// When a configuration was last loaded successfully (the start, or the last good reload).
    pub(crate) last_success_at: SystemTime,
    /// Successful reloads since start.
    pub(crate) successes: u64,
    /// Failed reloads since start.
    pub(crate) failures: u64,
    /// The hash of the config file in use; `None` without `--config`.
    pub(crate) hash: Option<ConfigHash>,
}

impl ReloadStatus {
    /// The status at start: one successful load, no reload yet.
    pub fn started(hash: Option<ConfigHash>) -> Self {
        Self {
            generation: 0,
            last_successful: true,
            last_success_at: SystemTime::now(),
            successes: 0,
            failures: 0,
            hash,
        }
    }

    /// After a successful reload of a file with `hash`.
    pub fn succeeded(&self, hash: Option<ConfigHash>) -> Self {
        Self {
            generation: self.generation + 1,
            last_successful: true,
            last_success_at: SystemTime::now(),
            successes: self.successes + 1,
            hash,
            ..self.clone()
        }
    }

    /// After a failed reload (the running config and its hash stay).
    pub fn failed(&self) -> Self {
        Self { generation: self.generation + 1, last_successful: false, failures: self.failures + 1, ..self.clone() }
    }

    /// The hash as a metric value: its first 48 bits, exact in an `f64` (as Alertmanager's
    /// `alertmanager_config_hash`).
    pub(crate) fn hash_value(&self) -> Option<f64> {
        let h = self.hash?;
        Some(h[..6].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_move_the_generation_and_only_successes_the_timestamp_and_hash() {
        let start = ReloadStatus::started(Some([1; 32]));
        let bad = start.failed();
        assert_eq!((bad.generation, bad.last_successful, bad.failures), (1, false, 1));
        assert_eq!((bad.last_success_at, bad.hash), (start.last_success_at, start.hash));
        let good = bad.succeeded(Some([2; 32]));
        assert_eq!((good.generation, good.last_successful, good.successes, good.failures), (2, true, 1, 1));
        assert!(good.last_success_at >= start.last_success_at);
        assert_eq!(good.hash_value(), Some(0x0202_0202_0202u64 as f64));
        assert_eq!(ReloadStatus::started(None).hash_value(), None);
    }
}
