//! Facts fixed at start (version, Kubernetes Downward API context) that `/metrics` puts on its
//! `_info` metrics and the Alertmanager push on its labels. A leaf.

/// Facts fixed at start that appear on `_info` metrics.
#[derive(Debug, Clone, Default)]
pub struct StaticInfo {
    /// leakwatch's version.
    pub version: String,
    /// Kubernetes pod context from Downward API environment variables, as (label, value).
    pub kubernetes: Vec<(&'static str, String)>,
}

impl StaticInfo {
    /// Reads the Downward API variables `POD_NAMESPACE`, `POD_NAME`, `CONTAINER_NAME`, `NODE_NAME`
    /// through `env`, so tests can pass a map.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let kubernetes = [
            ("namespace", "POD_NAMESPACE"),
            ("pod", "POD_NAME"),
            ("container", "CONTAINER_NAME"),
            ("node", "NODE_NAME"),
        ]
        .into_iter()
        .filter_map(|(label, var)| env(var).filter(|v| !v.is_empty()).map(|v| (label, v)))
        .collect();
        Self { version: env!("CARGO_PKG_VERSION").to_owned(), kubernetes }
    }
}
