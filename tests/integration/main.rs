//! Integration tests: the real `leakwatch` binary against real processes, real `/proc` and real
//! cgroups (these machines run the tests as root), plus fixture trees for what this machine
//! cannot produce. One binary, one module per feature.

mod alerts;
mod alerts_rules;
mod cgroup;
mod compression;
mod config;
mod conns;
mod conns_fixtures;
mod console;
mod dashboards;
mod e2e;
mod fixtures;
mod follow;
mod groups;
mod helm;
mod hostile;
mod http_load;
mod image;
mod log_api;
mod log_capture;
mod log_cli;
mod log_flood;
mod log_stream;
mod log_tail;
mod oom;
mod pod;
mod process;
mod promtool;
mod reload;
mod run_mode;
mod series;
mod slow_clients;
mod status;
mod support;
mod tasks;
mod web_tls;
