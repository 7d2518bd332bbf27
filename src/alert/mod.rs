//! Alerts (placeholder while building).
pub mod history;
pub mod leak;
