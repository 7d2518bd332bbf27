//! leakwatch: a sidecar that watches a process's memory, its cgroup and its limits from outside
//! and serves them to Prometheus.
//!
//! ```text
//!  /proc, /sys/fs/cgroup
//!        │  (sample: one pass per interval, reads through Roots; parse: pure parsers)
//!        ▼
//!  Snapshot (immutable, Arc) ── watch channel ──► http: /metrics renders it (no /proc reads)
//!        │
//!        └──► alert: rules, leak detector, state machine ── watch channel ──► /alerts, /metrics
//! ```
//!
//! `main` parses the CLI and config, then hands over to [`lifecycle::run`].

pub mod alert;
pub(crate) mod app;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod dashboard;
pub(crate) mod fsread;
pub mod history;
pub mod http;
pub(crate) mod http_client;
pub mod info;
pub mod lifecycle;
pub mod logs;
pub mod measure;
pub mod metric_names;
pub mod metrics;
pub(crate) mod oom;
pub mod parse;
pub(crate) mod redact;
pub mod reload;
pub mod roots;
pub mod sample;
pub(crate) mod seconds;
pub mod snapshot;
pub(crate) mod summary;
pub(crate) mod token;
pub(crate) mod units;
pub(crate) mod web;
pub mod yaml_guard;
