//! Command-line interface. Every global flag also reads a `LEAKWATCH_*` environment variable and
//! works before or after the subcommand.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{units, AdminConfig, Config, LogSourceConfig, LogsConfig, PssConfig, TargetConfig};

/// leakwatch: watches a process's memory, its cgroup and its limits from outside, for Prometheus.
#[derive(Debug, Parser)]
#[command(name = "leakwatch", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by all commands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; without one, leakwatch serves metrics for the configured target.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start CMD as a child, watch it, forward SIGTERM/SIGINT to it and exit with its exit code.
    Run {
        /// The command and its arguments (put them after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Print a log source's recent lines from a running leakwatch; with --follow, keep printing
    /// live lines (like `tail -f`), reconnecting and resuming after a drop.
    Logs(LogsCommand),
    /// Print a running leakwatch's status (GET /status) as a summary: target memory against its
    /// limit, connections and tasks, log sources, internal structures, the last cleanup.
    Status(StatusCommand),
    /// Write files generated from the alert rules (the built-in ones, or the `alerts:` section
    /// of `--config`).
    Generate {
        /// What to write.
        #[command(subcommand)]
        what: Generate,
    },
}

/// `leakwatch logs SOURCE`.
#[derive(Debug, Args)]
pub struct LogsCommand {
    /// The log source (see `GET /logs` for the names).
    pub source: String,
    /// Keep printing new lines as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Print this many recent lines first (0..=100000).
    #[arg(short = 'n', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub lines: u32,
    /// Only lines containing this text.
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
    /// Only lines matching this regex.
    #[arg(long, value_name = "REGEX")]
    pub regex: Option<String>,
    /// Print control characters as they are (by default they are escaped, e.g. `\x1b`).
    #[arg(long)]
    pub raw: bool,
    /// The server and how to reach it.
    #[command(flatten)]
    pub access: AccessArgs,
}

impl LogsCommand {
    /// The command's settings.
    pub fn args(&self) -> crate::logs_command::LogsArgs {
        crate::logs_command::LogsArgs {
            source: self.source.clone(),
            follow: self.follow,
            lines: self.lines as usize,
            access: self.access.access(),
            contains: self.contains.clone(),
            regex: self.regex.clone(),
            raw: self.raw,
        }
    }
}

/// How `leakwatch logs` and `leakwatch status` reach the server: its URL, TLS and basic auth.
#[derive(Debug, Args)]
pub struct AccessArgs {
    /// The running leakwatch, `http[s]://HOST:PORT[/PREFIX]`.
    #[arg(long, env = "LEAKWATCH_SERVER", default_value = "http://127.0.0.1:10171", value_name = "URL")]
    pub server: String,
    /// CA certificates (PEM) that signed an https:// server's certificate [default: the system bundle].
    #[arg(long, env = "LEAKWATCH_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one; needs --key.
    #[arg(long, env = "LEAKWATCH_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "LEAKWATCH_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Basic-auth user; the password comes from --password-file or LEAKWATCH_PASSWORD.
    #[arg(long, env = "LEAKWATCH_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// File holding the basic-auth password (e.g. a mounted Secret; a trailing newline is dropped).
    #[arg(long, env = "LEAKWATCH_PASSWORD_FILE", value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
}

impl AccessArgs {
    /// The client's settings.
    pub fn access(&self) -> crate::client::Access {
        crate::client::Access {
            server: self.server.clone(),
            cacert: self.cacert.clone(),
            client_cert: self.cert.clone().zip(self.key.clone()),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
        }
    }
}

/// `leakwatch status`.
#[derive(Debug, Args)]
pub struct StatusCommand {
    /// The server and how to reach it.
    #[command(flatten)]
    pub access: AccessArgs,
    /// Print the JSON document as served instead of the summary.
    #[arg(long)]
    pub json: bool,
}

impl StatusCommand {
    /// The command's settings.
    pub fn args(&self) -> crate::status_command::StatusArgs {
        crate::status_command::StatusArgs { access: self.access.access(), json: self.json }
    }
}

/// `leakwatch generate ...`
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// A Prometheus rule file (`rule_files:`), checked by `promtool check rules`.
    PrometheusRules {
        /// Output options.
        #[command(flatten)]
        out: GenerateArgs,
    },
    /// A prometheus-operator PrometheusRule manifest with the same rules.
    PrometheusRuleCrd {
        /// Output options.
        #[command(flatten)]
        out: GenerateArgs,
        /// `metadata.name` of the manifest.
        #[arg(long, default_value = crate::alert::promgen::DEFAULT_CRD_NAME)]
        name: String,
    },
    /// The Grafana dashboards (overview, target, fleet), with the rule levels as thresholds.
    Dashboards {
        /// Write the JSON files into DIR.
        #[arg(long, default_value = "dashboards", value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Options shared by the `generate` commands.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Label matchers added to every metric in the PromQL, e.g. 'job="leakwatch"'.
    #[arg(long, default_value = "", value_name = "MATCHERS")]
    pub selector: String,
    /// Runbook URL before the `#anchor` of each alert [default: alerts.runbook_base_url of
    /// --config, else the project's README].
    #[arg(long, value_name = "URL")]
    pub runbook_base: Option<String>,
    /// Label matchers selecting leakwatch's own scrape job in `up` (LeakwatchDown, LeakwatchAbsent).
    #[arg(long, default_value = crate::alert::promgen::DEFAULT_JOB_SELECTOR, value_name = "MATCHERS")]
    pub job_selector: String,
}

/// Flags that override the config file.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// YAML config file (optional: the defaults watch leakwatch itself and the host).
    #[arg(long, global = true, env = "LEAKWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve /metrics on [default: 0.0.0.0:10171].
    #[arg(long, global = true, env = "LEAKWATCH_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Sampling interval, e.g. 5s or 500ms [default: 5s].
    #[arg(long, global = true, env = "LEAKWATCH_INTERVAL", value_parser = units::parse_duration)]
    pub interval: Option<Duration>,
    /// procfs mount point [default: /proc].
    #[arg(long, global = true, env = "LEAKWATCH_PROCFS_ROOT", value_name = "DIR")]
    pub procfs_root: Option<PathBuf>,
    /// sysfs mount point; cgroups are read under DIR/fs/cgroup [default: /sys].
    #[arg(long, global = true, env = "LEAKWATCH_SYSFS_ROOT", value_name = "DIR")]
    pub sysfs_root: Option<PathBuf>,
    /// Watch this pid.
    #[arg(long, global = true, env = "LEAKWATCH_PID")]
    pub pid: Option<i32>,
    /// Watch the pid written in this file (re-read every interval).
    #[arg(long, global = true, env = "LEAKWATCH_PIDFILE", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Watch every process with this name (comm, at most 15 bytes).
    #[arg(long, global = true, env = "LEAKWATCH_PROCESS_NAME", value_name = "NAME")]
    pub process_name: Option<String>,
    /// Watch every process whose command line matches this regex.
    #[arg(long, global = true, env = "LEAKWATCH_CMDLINE_REGEX", value_name = "REGEX")]
    pub cmdline_regex: Option<String>,
    /// The `target` label value.
    #[arg(long, global = true, env = "LEAKWATCH_TARGET_NAME", value_name = "NAME")]
    pub target_name: Option<String>,
    /// Sample at most this many matching processes [default: 64].
    #[arg(long, global = true, env = "LEAKWATCH_MAX_PROCESSES", value_name = "N")]
    pub max_processes: Option<usize>,
    /// Skip PSS (smaps_rollup) above this RSS, e.g. 8GiB [default: 8GiB].
    #[arg(long, global = true, env = "LEAKWATCH_PSS_MAX_RSS", value_parser = units::parse_bytes, value_name = "BYTES")]
    pub pss_max_rss: Option<u64>,
    /// Back off PSS reads slower than this [default: 100ms].
    #[arg(long, global = true, env = "LEAKWATCH_PSS_TIME_BUDGET", value_parser = units::parse_duration, value_name = "DURATION")]
    pub pss_time_budget: Option<Duration>,
    /// Follow a log file (or the newest file of a glob) as source NAME, with the `logs:` caps;
    /// repeatable. The environment variable takes a comma-separated list.
    #[arg(long, global = true, env = "LEAKWATCH_TAIL", value_delimiter = ',', value_parser = parse_tail, value_name = "NAME=PATH")]
    pub tail: Vec<(String, String)>,
    /// Enable the admin endpoints, guarded by the bearer token in FILE (read on every request).
    #[arg(long, global = true, env = "LEAKWATCH_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// exporter-toolkit web config: TLS (certificate reloaded on change, client CA), basic auth
    /// (bcrypt), response headers, rate limit.
    #[arg(long = "web.config.file", global = true, env = "LEAKWATCH_WEB_CONFIG_FILE", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Absolute URL of the runbook; each alert's runbook_url is URL#alertname [default: the project README].
    #[arg(long, global = true, env = "LEAKWATCH_RUNBOOK_BASE_URL", value_name = "URL")]
    pub runbook_base_url: Option<String>,
    /// The URL under which leakwatch is reached (pushed alerts' generatorURL is URL/alerts)
    /// [default: http://INSTANCE, INSTANCE as in the pushed `instance` label].
    #[arg(long = "web.external-url", global = true, env = "LEAKWATCH_WEB_EXTERNAL_URL", value_name = "URL")]
    pub web_external_url: Option<String>,
    /// Log filter, e.g. info or leakwatch=debug [default: info].
    #[arg(long, global = true, env = "LEAKWATCH_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

impl GlobalArgs {
    /// The flags as a config overlay.
    pub fn overlay(&self) -> Config {
        Config {
            listen: self.listen.clone(),
            interval: self.interval,
            procfs_root: self.procfs_root.clone(),
            sysfs_root: self.sysfs_root.clone(),
            target: TargetConfig {
                name: self.target_name.clone(),
                pid: self.pid,
                pidfile: self.pidfile.clone(),
                process_name: self.process_name.clone(),
                cmdline_regex: self.cmdline_regex.clone(),
                max_processes: self.max_processes,
            },
            pss: PssConfig { max_rss: self.pss_max_rss, time_budget: self.pss_time_budget },
            logs: LogsConfig {
                sources: self
                    .tail
                    .iter()
                    .map(|(name, path)| LogSourceConfig {
                        name: name.clone(),
                        path: path.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            connections: Default::default(),
            tasks: Default::default(),
            alerts: crate::config::AlertsConfig {
                runbook_base_url: self.runbook_base_url.clone(),
                ..Default::default()
            },
            admin: AdminConfig { token_file: self.admin_token_file.clone() },
            cleanup: Default::default(),
            console: Default::default(),
            web_config_file: self.web_config_file.clone(),
            web_external_url: self.web_external_url.clone(),
        }
    }
}

/// Parses `NAME=PATH` (the name and path are checked with the config).
fn parse_tail(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_owned(), path.to_owned())),
        _ => Err(format!("{text:?} is not NAME=PATH, e.g. app=/var/log/app.log")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_flags_work_before_and_after_run() {
        let before = Cli::try_parse_from(["leakwatch", "--listen", "127.0.0.1:1", "run", "--", "sleep", "1"]).unwrap();
        assert_eq!(before.global.listen.as_deref(), Some("127.0.0.1:1"));
        let after = Cli::try_parse_from(["leakwatch", "run", "--listen", "127.0.0.1:2", "--", "sleep", "-x"]).unwrap();
        assert_eq!(after.global.listen.as_deref(), Some("127.0.0.1:2"));
        let Some(Command::Run { command }) = after.command else { panic!("run expected") };
        assert_eq!(command, vec![OsString::from("sleep"), OsString::from("-x")]);
    }

    #[test]
    fn generate_takes_a_kind_and_output_options() {
        let cli = Cli::try_parse_from(["leakwatch", "generate", "prometheus-rule-crd", "-o", "x.yaml", "--name", "lw"])
            .unwrap();
        let Some(Command::Generate { what: Generate::PrometheusRuleCrd { out, name } }) = cli.command else {
            panic!("generate expected")
        };
        assert_eq!((out.output, name.as_str(), out.selector.as_str()), (Some(PathBuf::from("x.yaml")), "lw", ""));
        assert!(Cli::try_parse_from(["leakwatch", "generate", "grafana"]).is_err(), "an unknown kind");
        let cli = Cli::try_parse_from(["leakwatch", "generate", "dashboards", "--dir", "out"]).unwrap();
        let Some(Command::Generate { what: Generate::Dashboards { dir } }) = cli.command else {
            panic!("generate dashboards expected")
        };
        assert_eq!(dir, PathBuf::from("out"));
    }

    #[test]
    fn tail_flags_add_file_sources() {
        let cli = Cli::try_parse_from(["leakwatch", "--tail", "app=/a.log", "--tail", "b=/b/*.log,c=/c"]).unwrap();
        let names: Vec<String> = cli.global.overlay().logs.sources.into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["app", "b", "c"]);
        let err = Cli::try_parse_from(["leakwatch", "--tail", "/only/a/path"]).unwrap_err().to_string();
        assert!(err.contains("--tail") && err.contains("NAME=PATH"), "{err}");
    }

    #[test]
    fn the_logs_command_takes_a_source_and_options() {
        let cli = Cli::try_parse_from(["leakwatch", "logs", "app", "-f", "-n", "5", "--server", "http://h:1"]).unwrap();
        let Some(Command::Logs(logs)) = cli.command else { panic!("logs expected") };
        let args = logs.args();
        assert_eq!(
            (args.source.as_str(), args.follow, args.lines, args.access.server.as_str()),
            ("app", true, 5, "http://h:1")
        );
        let err = Cli::try_parse_from(["leakwatch", "logs", "app", "--lines", "100001"]).unwrap_err().to_string();
        assert!(err.contains("--lines"), "{err}");
        assert!(Cli::try_parse_from(["leakwatch", "logs"]).is_err(), "the source is required");
    }

    #[test]
    fn the_web_config_flag_and_the_logs_command_auth_options() {
        let cli = Cli::try_parse_from(["leakwatch", "--web.config.file", "/etc/web.yml"]).unwrap();
        assert_eq!(cli.global.overlay().web_config_file, Some(PathBuf::from("/etc/web.yml")));
        let cli = Cli::try_parse_from([
            "leakwatch",
            "logs",
            "app",
            "--server",
            "https://h:1",
            "--cacert",
            "ca.pem",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--user",
            "reader",
            "--password-file",
            "pw",
        ])
        .unwrap();
        let Some(Command::Logs(logs)) = cli.command else { panic!("logs expected") };
        let args = logs.args();
        assert_eq!(args.access.client_cert, Some((PathBuf::from("c.pem"), PathBuf::from("k.pem"))));
        assert_eq!(
            (args.access.user.as_deref(), args.access.password_file),
            (Some("reader"), Some(PathBuf::from("pw")))
        );
        assert!(Cli::try_parse_from(["leakwatch", "logs", "app", "--cert", "c.pem"]).is_err(), "--cert needs --key");
        assert!(Cli::try_parse_from(["leakwatch", "logs", "app", "--password-file", "pw"]).is_err(), "needs --user");
    }

    #[test]
    fn bad_values_are_rejected_with_the_flag_name() {
        let err = Cli::try_parse_from(["leakwatch", "--interval", "soon"]).unwrap_err().to_string();
        assert!(err.contains("--interval"), "{err}");
        let err = Cli::try_parse_from(["leakwatch", "--pid", "12abc"]).unwrap_err().to_string();
        assert!(err.contains("--pid"), "{err}");
    }
}
