//! The `leakwatch` binary: CLI → config → logging → runtime → [`leakwatch::lifecycle::run`].
//! Exit codes: 64 for usage and config errors, 1 for runtime failures, the wrapped command's
//! code in `run` mode.

use std::process::ExitCode;

use std::sync::Arc;

use leakwatch::alert::promgen;
use leakwatch::alert::rules::AlertRules;
use leakwatch::cli::{generate, Action, Cli, Generate, Output, RuleArgs, ServeArgs};
use leakwatch::info::StaticInfo;
use leakwatch::reload::ConfigSource;

const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let (flags, wrapped) = match cli.into_action() {
        Action::Serve { flags, wrapped } => (flags, wrapped),
        Action::Logs(args) => return logs_command(args),
        Action::Status(args) => return status_command(args),
        Action::Generate { config, flags, what } => return generate_command(config, flags, what),
    };
    init_logging(flags.log().as_deref());
    let source = ConfigSource::new(flags.config(), Arc::new(flags), wrapped.is_some());
    let loaded = match source.load() {
        Ok(l) => l,
        Err(e) => return usage_error(&e),
    };
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    let info = StaticInfo::from_env(|k| std::env::var(k).ok());
    let result = runtime.block_on(leakwatch::lifecycle::run(loaded, source, wrapped, info));
    // Blocking work still running (a reload or a page stuck in a file system) is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("leakwatch: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch logs`: 0 when done, 1 when the server refused or could not be reached.
fn logs_command(args: leakwatch::cli::logs::LogsArgs) -> ExitCode {
    use leakwatch::cli::client::ClientError;
    use leakwatch::cli::logs::LogsError;
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(leakwatch::cli::logs::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ LogsError::Client(ClientError::BadServer(_))) => usage_error(&e),
        Err(e) => {
            eprintln!("leakwatch logs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch status`: 0 when printed, 1 when the server refused or could not be reached.
fn status_command(args: leakwatch::cli::status::StatusArgs) -> ExitCode {
    use leakwatch::cli::client::ClientError;
    use leakwatch::cli::status::StatusError;
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(leakwatch::cli::status::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StatusError::Client(ClientError::BadServer(_))) => usage_error(&e),
        Err(e) => {
            eprintln!("leakwatch status: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch generate ...`: the rules need the config (its `alerts:` section).
fn generate_command(config: Option<std::path::PathBuf>, flags: ServeArgs, what: Generate) -> ExitCode {
    let source = ConfigSource::new(config, Arc::new(flags), false);
    let rules = || source.load().map(|l| l.config.alerts);
    let opts = |rules: &AlertRules, args: &RuleArgs| promgen::Options {
        selector: args.selector.clone(),
        runbook_base: args.runbook_base.clone().unwrap_or_else(|| rules.runbook_base.clone()),
        job_selector: args.job_selector.clone(),
    };
    let (text, out, name): (Result<Vec<u8>, String>, &Output, String) = match &what {
        Generate::Dashboards { output } => return generate_dashboards(output),
        Generate::Completions { shell, out } => {
            (Ok(generate::completions(*shell)), out, generate::completions_file_name(*shell))
        }
        Generate::Man { out } => (generate::man().map_err(|e| e.to_string()), out, "leakwatch.1".into()),
        Generate::PrometheusRules { rules: args, out } => {
            let rules = match rules() {
                Ok(r) => r,
                Err(e) => return usage_error(&e),
            };
            let text =
                promgen::rules_yaml(&rules, &opts(&rules, args)).map(String::into_bytes).map_err(|e| e.to_string());
            (text, out, "leakwatch-rules.yaml".into())
        }
        Generate::PrometheusRuleCrd { rules: args, out, name } => {
            let rules = match rules() {
                Ok(r) => r,
                Err(e) => return usage_error(&e),
            };
            let text = promgen::prometheus_rule_yaml(&rules, &opts(&rules, args), name)
                .map(String::into_bytes)
                .map_err(|e| e.to_string());
            (text, out, "leakwatch-prometheusrule.yaml".into())
        }
    };
    let written = text.and_then(|t| generate::write(generate::output_path(out, &name).as_deref(), &t));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leakwatch: cannot generate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch generate dashboards`: one JSON file per dashboard in `dir` (created when missing).
fn generate_dashboards(dir: &std::path::Path) -> ExitCode {
    for (file, dashboard) in leakwatch::dashboard::all() {
        let path = dir.join(file);
        if let Err(e) = generate::write(Some(&path), leakwatch::dashboard::file_text(&dashboard).as_bytes()) {
            eprintln!("leakwatch: cannot write {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .inspect_err(|e| eprintln!("leakwatch: cannot start the runtime: {e}"))
        .ok()
}

fn usage_error(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("leakwatch: {e}");
    ExitCode::from(EX_USAGE)
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|e| {
        eprintln!("leakwatch: bad log filter ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
