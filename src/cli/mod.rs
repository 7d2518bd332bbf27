//! Command-line interface: flags per subcommand. The server commands (the default, `serve`,
//! `run`) take the server flags, each also read from a `LEAKWATCH_*` environment variable and
//! accepted before or after `serve`/`run`; the client commands (`logs`, `status`) take only the
//! flags that reach a server; `generate` takes `--config` and its output options.

pub mod client;
pub mod generate;
pub mod logs;
pub mod status;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, LogSourceConfig, Overlay};
use crate::units;

/// leakwatch: watches a process's memory, its cgroup and its limits from outside, for Prometheus.
#[derive(Debug, Parser)]
#[command(name = "leakwatch", version, about, long_about = None)]
pub struct Cli {
    /// The server flags (for the default command: serve metrics for the configured target).
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
    /// What to do; without one, leakwatch serves metrics for the configured target.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The server commands' names: their flags may also stand before the subcommand.
const SERVER_COMMANDS: [&str; 2] = ["serve", "run"];

impl Cli {
    /// The clap command tree (for parsing, completions and the man page). After `serve`/`run`
    /// the server flags read no environment variable: the ones before the subcommand do, so a
    /// flag on either side wins over the environment.
    pub(crate) fn command_tree() -> clap::Command {
        SERVER_COMMANDS.into_iter().fold(<Self as CommandFactory>::command(), |cmd, name| {
            cmd.mut_subcommand(name, |sub| sub.mut_args(|arg| arg.env(None)))
        })
    }

    /// Parses `args` (the first is the program name).
    pub(crate) fn parse_args_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut matches = Self::command_tree().try_get_matches_from(args)?;
        Self::from_arg_matches_mut(&mut matches)
    }

    /// Parses the process's arguments.
    pub fn parse_args() -> Result<Self, clap::Error> {
        Self::parse_args_from(std::env::args_os())
    }

    /// What the command line asks for.
    pub fn into_action(self) -> Action {
        let Cli { serve, command } = self;
        let (after, wrapped) = match command {
            None => (None, None),
            Some(Command::Serve(sub)) => (Some(sub), None),
            Some(Command::Run { serve: sub, command }) => (Some(sub), Some(command)),
            Some(Command::Logs(logs)) => return Action::Logs(logs.args()),
            Some(Command::Status(status)) => return Action::Status(status.args()),
            Some(Command::Generate { config, what }) => {
                return Action::Generate { config: config.or_else(|| serve.config.clone()), flags: serve, what }
            }
        };
        Action::Serve { flags: ServerFlags { before: serve, after }, wrapped }
    }
}

/// What to do, the command line resolved (built once per process: the size difference of the
/// variants does not matter).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Serve metrics; with `wrapped`, for a child started from that command line.
    Serve {
        /// The server flags.
        flags: ServerFlags,
        /// `run`'s command and arguments.
        wrapped: Option<Vec<OsString>>,
    },
    /// `leakwatch logs`.
    Logs(logs::LogsArgs),
    /// `leakwatch status`.
    Status(status::StatusArgs),
    /// `leakwatch generate`.
    Generate {
        /// The config file whose `alerts:` section the rules come from.
        config: Option<PathBuf>,
        /// The server flags' environment variables (`LEAKWATCH_RUNBOOK_BASE_URL`, ...) and
        /// flags given before `generate`, laid over the file.
        flags: ServeArgs,
        /// What to write.
        what: Generate,
    },
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve metrics for the configured target (what leakwatch does without a subcommand).
    Serve(ServeArgs),
    /// Start CMD as a child, watch it, forward SIGTERM/SIGINT to it and exit with its exit code.
    Run {
        /// The server flags.
        #[command(flatten)]
        serve: ServeArgs,
        /// The command and its arguments (put them after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<OsString>,
    },
    /// Print a log source's recent lines from a running leakwatch; with --follow, keep printing
    /// live lines (like `tail -f`), reconnecting and resuming after a drop.
    Logs(LogsCommand),
    /// Print a running leakwatch's status (GET /status) as a summary: alerts first (firing,
    /// pending, the predicted time to the limit), then memory, fds, connections by state, tasks
    /// and log sources; -v adds the internal structures and the last cleanup.
    Status(StatusCommand),
    /// Write files generated from the alert rules (the built-in ones, or the `alerts:` section
    /// of `--config`), the dashboards, shell completions or the man page.
    Generate {
        /// YAML config file whose `alerts:` section the rules come from (before or after the
        /// kind of file: `generate prometheus-rules --config FILE` works too).
        #[arg(long, global = true, value_name = "FILE")]
        config: Option<PathBuf>,
        /// What to write.
        #[command(subcommand)]
        what: Generate,
    },
}

/// `leakwatch logs SOURCE`.
#[derive(Debug, Args)]
pub(crate) struct LogsCommand {
    /// The log source (see `GET /logs` for the names).
    pub(crate) source: String,
    /// Keep printing new lines as they arrive.
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// Print this many recent lines first (0..=100000).
    #[arg(short = 'n', long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub(crate) lines: u32,
    /// Only lines containing this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) contains: Option<String>,
    /// Only lines matching this regex.
    #[arg(long, value_name = "REGEX")]
    pub(crate) regex: Option<String>,
    /// Print control characters as they are (by default they are escaped, e.g. `\x1b`).
    #[arg(long)]
    pub(crate) raw: bool,
    /// The server and how to reach it.
    #[command(flatten)]
    pub(crate) access: AccessArgs,
}

impl LogsCommand {
    /// The command's settings.
    pub(crate) fn args(&self) -> crate::cli::logs::LogsArgs {
        crate::cli::logs::LogsArgs {
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
pub(crate) struct AccessArgs {
    /// The running leakwatch, `http[s]://HOST:PORT[/PREFIX]`.
    #[arg(long, env = "LEAKWATCH_SERVER", default_value = "http://127.0.0.1:10171", value_name = "URL")]
    pub(crate) server: String,
    /// CA certificates (PEM) that signed an https:// server's certificate [default: the system bundle].
    #[arg(long, env = "LEAKWATCH_CACERT", value_name = "FILE")]
    pub(crate) cacert: Option<PathBuf>,
    /// Client certificate (PEM) for a server that requires one; needs --key.
    #[arg(long, env = "LEAKWATCH_CERT", value_name = "FILE", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "LEAKWATCH_KEY", value_name = "FILE", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Basic-auth user; the password comes from --password-file or LEAKWATCH_PASSWORD.
    #[arg(long, env = "LEAKWATCH_USER", value_name = "NAME")]
    pub(crate) user: Option<String>,
    /// File holding the basic-auth password (e.g. a mounted Secret; a trailing newline is dropped).
    #[arg(long, env = "LEAKWATCH_PASSWORD_FILE", value_name = "FILE", requires = "user")]
    pub(crate) password_file: Option<PathBuf>,
}

impl AccessArgs {
    /// The client's settings.
    pub(crate) fn access(&self) -> crate::cli::client::Access {
        crate::cli::client::Access {
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
pub(crate) struct StatusCommand {
    /// The server and how to reach it.
    #[command(flatten)]
    pub(crate) access: AccessArgs,
    /// Print the JSON document as served instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also print leakwatch's internal structures and its last cleanup.
    #[arg(short, long)]
    pub(crate) verbose: bool,
}

impl StatusCommand {
    /// The command's settings.
    pub(crate) fn args(&self) -> crate::cli::status::StatusArgs {
        crate::cli::status::StatusArgs { access: self.access.access(), json: self.json, verbose: self.verbose }
    }
}

/// `leakwatch generate ...`: every kind writes to stdout, or to `-o/--output`.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// A Prometheus rule file (`rule_files:`), checked by `promtool check rules`.
    PrometheusRules {
        /// Rule options.
        #[command(flatten)]
        rules: RuleArgs,
        /// Output options.
        #[command(flatten)]
        out: Output,
    },
    /// A prometheus-operator PrometheusRule manifest with the same rules.
    PrometheusRuleCrd {
        /// Rule options.
        #[command(flatten)]
        rules: RuleArgs,
        /// Output options.
        #[command(flatten)]
        out: Output,
        /// `metadata.name` of the manifest.
        #[arg(long, default_value = crate::alert::promgen::DEFAULT_CRD_NAME)]
        name: String,
    },
    /// The Grafana dashboards (overview, target, fleet), with the rule levels as thresholds,
    /// one JSON file each in the directory `-o` (created when missing).
    Dashboards {
        /// The directory.
        #[arg(short, long, alias = "dir", default_value = "dashboards", value_name = "DIR")]
        output: PathBuf,
    },
    /// A shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
        /// Output options.
        #[command(flatten)]
        out: Output,
    },
    /// The man page (roff), for `man -l` or a `man1` directory.
    Man {
        /// Output options.
        #[command(flatten)]
        out: Output,
    },
}

/// Where a `generate` command writes its one file.
#[derive(Debug, Args)]
pub struct Output {
    /// Write to PATH instead of stdout: a file, or a directory (an existing one, or PATH ending
    /// in `/`) that gets the file under its usual name; missing directories are created.
    #[arg(short, long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
}

/// Options of the rule files.
#[derive(Debug, Args)]
pub struct RuleArgs {
    /// Label matchers added to every metric in the PromQL, e.g. 'job="leakwatch"'.
    #[arg(long, default_value = "", value_name = "MATCHERS")]
    pub selector: String,
    /// Runbook URL before the `#anchor` of each alert [default: alerts.runbook_base_url of
    /// --config, else docs/runbook.md on GitHub].
    #[arg(long, value_name = "URL")]
    pub runbook_base: Option<String>,
    /// Label matchers selecting leakwatch's own scrape job in `up` (LeakwatchDown, LeakwatchAbsent).
    #[arg(long, default_value = crate::alert::promgen::DEFAULT_JOB_SELECTOR, value_name = "MATCHERS")]
    pub job_selector: String,
}

/// The server flags: each a value of the config file, which it overrides.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// YAML config file (optional: the defaults watch leakwatch itself and the host).
    #[arg(long, env = "LEAKWATCH_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to serve /metrics on, HOST:PORT (a name is resolved) [default: 0.0.0.0:10171].
    #[arg(long, env = "LEAKWATCH_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Sampling interval, e.g. 5s or 500ms [default: 5s].
    #[arg(long, env = "LEAKWATCH_INTERVAL", value_parser = units::parse_duration)]
    pub(crate) interval: Option<Duration>,
    /// procfs mount point [default: /proc].
    #[arg(long, env = "LEAKWATCH_PROCFS_ROOT", value_name = "DIR")]
    pub(crate) procfs_root: Option<PathBuf>,
    /// sysfs mount point; cgroups are read under DIR/fs/cgroup [default: /sys].
    #[arg(long, env = "LEAKWATCH_SYSFS_ROOT", value_name = "DIR")]
    pub(crate) sysfs_root: Option<PathBuf>,
    /// Watch this pid.
    #[arg(long, env = "LEAKWATCH_PID")]
    pub(crate) pid: Option<i32>,
    /// Watch the pid written in this file (re-read every interval).
    #[arg(long, env = "LEAKWATCH_PIDFILE", value_name = "FILE")]
    pub(crate) pidfile: Option<PathBuf>,
    /// Watch every process with this name (comm, at most 15 bytes).
    #[arg(long, env = "LEAKWATCH_PROCESS_NAME", value_name = "NAME")]
    pub(crate) process_name: Option<String>,
    /// Watch every process whose command line matches this regex.
    #[arg(long, env = "LEAKWATCH_CMDLINE_REGEX", value_name = "REGEX")]
    pub(crate) cmdline_regex: Option<String>,
    /// The `target` label value.
    #[arg(long, env = "LEAKWATCH_TARGET_NAME", value_name = "NAME")]
    pub(crate) target_name: Option<String>,
    /// Sample at most this many matching processes [default: 64].
    #[arg(long, env = "LEAKWATCH_MAX_PROCESSES", value_name = "N")]
    pub(crate) max_processes: Option<usize>,
    /// Skip PSS (smaps_rollup) above this RSS, e.g. 8GiB [default: 8GiB].
    #[arg(long, env = "LEAKWATCH_PSS_MAX_RSS", value_parser = units::parse_bytes, value_name = "BYTES")]
    pub(crate) pss_max_rss: Option<u64>,
    /// Back off PSS reads slower than this [default: 100ms].
    #[arg(long, env = "LEAKWATCH_PSS_TIME_BUDGET", value_parser = units::parse_duration, value_name = "DURATION")]
    pub(crate) pss_time_budget: Option<Duration>,
    /// Follow a log file (or the newest file of a glob) as source NAME, with the `logs:` caps;
    /// repeatable. The environment variable takes a comma-separated list.
    #[arg(long, env = "LEAKWATCH_TAIL", value_delimiter = ',', value_parser = parse_tail, value_name = "NAME=PATH")]
    pub(crate) tail: Vec<(String, String)>,
    /// Enable the admin endpoints, guarded by the bearer token in FILE (read on every request).
    #[arg(long, env = "LEAKWATCH_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub(crate) admin_token_file: Option<PathBuf>,
    /// exporter-toolkit web config: TLS (certificate reloaded on change, client CA), basic auth
    /// (bcrypt), response headers, rate limit.
    #[arg(long = "web.config.file", env = "LEAKWATCH_WEB_CONFIG_FILE", value_name = "FILE")]
    pub(crate) web_config_file: Option<PathBuf>,
    /// Absolute URL of the runbook; each alert's runbook_url is URL#alertname [default: docs/runbook.md on GitHub].
    #[arg(long, env = "LEAKWATCH_RUNBOOK_BASE_URL", value_name = "URL")]
    pub(crate) runbook_base_url: Option<String>,
    /// The URL under which leakwatch is reached (pushed alerts' generatorURL is URL/alerts)
    /// [default: http://INSTANCE, INSTANCE as in the pushed `instance` label].
    #[arg(long = "web.external-url", env = "LEAKWATCH_WEB_EXTERNAL_URL", value_name = "URL")]
    pub(crate) web_external_url: Option<String>,
    /// Log filter, e.g. info or leakwatch=debug [default: info].
    #[arg(long, env = "LEAKWATCH_LOG", value_name = "FILTER")]
    pub(crate) log: Option<String>,
}

/// The one place a flag becomes a config value.
impl Overlay for ServeArgs {
    fn apply(&self, c: &mut Config) {
        fn set<T: Clone>(slot: &mut Option<T>, flag: &Option<T>) {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        }
        set(&mut c.listen, &self.listen);
        set(&mut c.interval, &self.interval);
        set(&mut c.procfs_root, &self.procfs_root);
        set(&mut c.sysfs_root, &self.sysfs_root);
        set(&mut c.target.name, &self.target_name);
        set(&mut c.target.pid, &self.pid);
        set(&mut c.target.pidfile, &self.pidfile);
        set(&mut c.target.process_name, &self.process_name);
        set(&mut c.target.cmdline_regex, &self.cmdline_regex);
        set(&mut c.target.max_processes, &self.max_processes);
        set(&mut c.pss.max_rss, &self.pss_max_rss);
        set(&mut c.pss.time_budget, &self.pss_time_budget);
        set(&mut c.admin.token_file, &self.admin_token_file);
        set(&mut c.web_config_file, &self.web_config_file);
        set(&mut c.alerts.runbook_base_url, &self.runbook_base_url);
        set(&mut c.web_external_url, &self.web_external_url);
        let tails = self.tail.iter().map(|(name, path)| LogSourceConfig {
            name: name.clone(),
            path: path.clone(),
            ..Default::default()
        });
        c.logs.sources.extend(tails);
    }
}

/// The server flags given before the subcommand, then after it (`serve`/`run`): laid over the
/// config in that order, so the later one wins.
#[derive(Debug, Clone)]
pub struct ServerFlags {
    before: ServeArgs,
    after: Option<ServeArgs>,
}

impl ServerFlags {
    fn both(&self) -> impl Iterator<Item = &ServeArgs> {
        std::iter::once(&self.before).chain(&self.after)
    }

    /// `--config`.
    pub fn config(&self) -> Option<PathBuf> {
        self.both().filter_map(|s| s.config.clone()).last()
    }

    /// `--log`.
    pub fn log(&self) -> Option<String> {
        self.both().filter_map(|s| s.log.clone()).last()
    }
}

impl Overlay for ServerFlags {
    fn apply(&self, config: &mut Config) {
        self.both().for_each(|flags| flags.apply(config));
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

    fn parse(args: &[&str]) -> Cli {
        Cli::parse_args_from(std::iter::once("leakwatch").chain(args.iter().copied())).unwrap()
    }

    fn parse_err(args: &[&str]) -> String {
        Cli::parse_args_from(std::iter::once("leakwatch").chain(args.iter().copied())).unwrap_err().to_string()
    }

    fn server(cli: Cli) -> (ServerFlags, Option<Vec<OsString>>) {
        match cli.into_action() {
            Action::Serve { flags, wrapped } => (flags, wrapped),
            other => panic!("a server command expected, got {other:?}"),
        }
    }

    fn merged(flags: &ServerFlags, file: &str) -> Config {
        let mut c = Config::from_yaml(file.as_bytes()).unwrap();
        flags.apply(&mut c);
        c
    }

    #[test]
    fn server_flags_work_before_and_after_run_and_serve_and_the_later_wins() {
        let (flags, _) = server(parse(&["--listen", "127.0.0.1:1", "run", "--", "sleep", "1"]));
        assert_eq!(merged(&flags, "{}").listen.as_deref(), Some("127.0.0.1:1"));
        let (flags, wrapped) = server(parse(&["run", "--listen", "127.0.0.1:2", "--", "sleep", "-x"]));
        assert_eq!(merged(&flags, "{}").listen.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(wrapped, Some(vec![OsString::from("sleep"), OsString::from("-x")]));
        let (flags, _) = server(parse(&["--interval", "1s", "--config", "a.yaml", "serve", "--interval", "2s"]));
        assert_eq!(merged(&flags, "{}").interval, Some(Duration::from_secs(2)));
        assert_eq!(flags.config(), Some(PathBuf::from("a.yaml")));
    }

    #[test]
    fn flags_override_the_file_key_by_key_and_add_tail_sources_after_the_files() {
        let (flags, _) = server(parse(&["--pid", "9", "--tail", "b=/b.log"]));
        let c = merged(&flags, "interval: 2s\ntarget:\n  pid: 5\n  name: app\nlogs:\n  max_lines: 500\n  sources:\n    - name: a\n      path: /a.log\n");
        assert_eq!((c.target.pid, c.target.name.as_deref()), (Some(9), Some("app")));
        assert_eq!((c.interval, c.logs.max_lines), (Some(Duration::from_secs(2)), Some(500)));
        let names: Vec<&str> = c.logs.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn client_commands_take_no_server_flag_and_their_help_lists_none() {
        for command in ["logs", "status"] {
            let mut tree = Cli::command_tree();
            let help = tree.find_subcommand_mut(command).expect("the subcommand").render_long_help().to_string();
            for server_flag in
                ["--listen", "--interval", "--pid", "--tail", "--config", "--procfs-root", "--web.config.file"]
            {
                assert!(!help.contains(server_flag), "{command} --help lists {server_flag}:\n{help}");
            }
            assert!(help.contains("--server") && help.contains("--cacert"), "{help}");
        }
        assert!(parse_err(&["status", "--listen", "127.0.0.1:1"]).contains("--listen"));
        assert!(parse_err(&["logs", "app", "--pid", "1"]).contains("--pid"));
        let mut tree = Cli::command_tree();
        let run_help = tree.find_subcommand_mut("run").expect("run").render_long_help().to_string();
        assert!(run_help.contains("--listen") && !run_help.contains("--server"), "{run_help}");
    }

    #[test]
    fn generate_takes_a_kind_and_output_options() {
        let cli = parse(&["generate", "prometheus-rule-crd", "-o", "x.yaml", "--name", "lw"]);
        let Some(Command::Generate { what: Generate::PrometheusRuleCrd { out, name, rules }, .. }) = cli.command else {
            panic!("generate expected")
        };
        assert_eq!((out.output, name.as_str(), rules.selector.as_str()), (Some(PathBuf::from("x.yaml")), "lw", ""));
        assert!(parse_err(&["generate", "grafana"]).contains("grafana"), "an unknown kind");
        for args in [["generate", "dashboards", "--dir", "out"], ["generate", "dashboards", "-o", "out"]] {
            let Some(Command::Generate { what: Generate::Dashboards { output }, .. }) = parse(&args).command else {
                panic!("generate dashboards expected")
            };
            assert_eq!(output, PathBuf::from("out"));
        }
        let Action::Generate { config, .. } = parse(&["--config", "c.yaml", "generate", "man"]).into_action() else {
            panic!("generate expected")
        };
        assert_eq!(config, Some(PathBuf::from("c.yaml")));
        let after = ["generate", "prometheus-rules", "--config", "c.yaml", "-o", "r.yaml"];
        let Action::Generate { config, .. } = parse(&after).into_action() else { panic!("generate expected") };
        assert_eq!(config, Some(PathBuf::from("c.yaml")), "the chart checks pass --config after the kind");
        assert!(matches!(parse(&["generate", "completions", "bash"]).command, Some(Command::Generate { .. })));
    }

    #[test]
    fn tail_flags_add_file_sources() {
        let (flags, _) = server(parse(&["--tail", "app=/a.log", "--tail", "b=/b/*.log,c=/c"]));
        let names: Vec<String> = merged(&flags, "{}").logs.sources.into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["app", "b", "c"]);
        let err = parse_err(&["--tail", "/only/a/path"]);
        assert!(err.contains("--tail") && err.contains("NAME=PATH"), "{err}");
    }

    #[test]
    fn the_logs_command_takes_a_source_and_options() {
        let Action::Logs(args) = parse(&["logs", "app", "-f", "-n", "5", "--server", "http://h:1"]).into_action()
        else {
            panic!("logs expected")
        };
        assert_eq!(
            (args.source.as_str(), args.follow, args.lines, args.access.server.as_str()),
            ("app", true, 5, "http://h:1")
        );
        let err = parse_err(&["logs", "app", "--lines", "100001"]);
        assert!(err.contains("--lines"), "{err}");
        assert!(Cli::parse_args_from(["leakwatch", "logs"]).is_err(), "the source is required");
    }

    #[test]
    fn the_web_config_flag_and_the_logs_command_auth_options() {
        let (flags, _) = server(parse(&["--web.config.file", "/etc/web.yml"]));
        assert_eq!(merged(&flags, "{}").web_config_file, Some(PathBuf::from("/etc/web.yml")));
        let cli = parse(&[
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
        ]);
        let Action::Logs(args) = cli.into_action() else { panic!("logs expected") };
        assert_eq!(args.access.client_cert, Some((PathBuf::from("c.pem"), PathBuf::from("k.pem"))));
        assert_eq!(
            (args.access.user.as_deref(), args.access.password_file),
            (Some("reader"), Some(PathBuf::from("pw")))
        );
        assert!(Cli::parse_args_from(["leakwatch", "logs", "app", "--cert", "c.pem"]).is_err(), "--cert needs --key");
        assert!(Cli::parse_args_from(["leakwatch", "logs", "app", "--password-file", "pw"]).is_err(), "needs --user");
    }

    #[test]
    fn bad_values_are_rejected_with_the_flag_name() {
        assert!(parse_err(&["--interval", "soon"]).contains("--interval"));
        assert!(parse_err(&["--pid", "12abc"]).contains("--pid"));
        assert!(parse_err(&["run", "--pid", "12abc", "--", "true"]).contains("--pid"));
    }
}
