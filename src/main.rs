//! The `leakwatch` binary: CLI → config → logging → runtime → [`leakwatch::lifecycle::run`].
//! Exit codes: 64 for usage and config errors, 1 for runtime failures, the wrapped command's
//! code in `run` mode.

use std::process::ExitCode;

use clap::Parser;
use leakwatch::alert::promgen;
use leakwatch::alert::rules::AlertRules;
use leakwatch::cli::{Cli, Command, Generate, GenerateArgs};
use leakwatch::metrics::StaticInfo;
use leakwatch::reload::ConfigSource;

const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.global.log.as_deref());
    let (wrapped, generate) = match cli.command {
        Some(Command::Logs(logs)) => return logs_command(logs.args()),
        Some(Command::Status(status)) => return status_command(status.args()),
        Some(Command::Run { command }) => (Some(command), None),
        Some(Command::Generate { what }) => (None, Some(what)),
        None => (None, None),
    };
    let source = ConfigSource::new(cli.global.config.clone(), cli.global.overlay(), wrapped.is_some());
    let loaded = match source.load() {
        Ok(l) => l,
        Err(e) => return usage_error(&e),
    };
    if let Some(what) = generate {
        return generate_files(&loaded.config.alerts, what);
    }
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
fn logs_command(args: leakwatch::logs_command::LogsArgs) -> ExitCode {
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(leakwatch::logs_command::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ leakwatch::logs_command::LogsError::Client(leakwatch::client::ClientError::BadServer(_))) => {
            usage_error(&e)
        }
        Err(e) => {
            eprintln!("leakwatch logs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch status`: 0 when printed, 1 when the server refused or could not be reached.
fn status_command(args: leakwatch::status_command::StatusArgs) -> ExitCode {
    use leakwatch::client::ClientError;
    use leakwatch::status_command::StatusError;
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(leakwatch::status_command::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StatusError::Client(ClientError::BadServer(_))) => usage_error(&e),
        Err(e) => {
            eprintln!("leakwatch status: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch generate ...`: writes a file generated from the alert rules.
fn generate_files(rules: &AlertRules, what: Generate) -> ExitCode {
    let opts = |out: &GenerateArgs| promgen::Options {
        selector: out.selector.clone(),
        runbook_base: out.runbook_base.clone().unwrap_or_else(|| rules.runbook_base.clone()),
        job_selector: out.job_selector.clone(),
    };
    let (text, out) = match &what {
        Generate::Dashboards { dir } => return generate_dashboards(dir),
        Generate::PrometheusRules { out } => (promgen::rules_yaml(rules, &opts(out)), out),
        Generate::PrometheusRuleCrd { out, name } => (promgen::prometheus_rule_yaml(rules, &opts(out), name), out),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("leakwatch: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match &out.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("leakwatch: cannot write the rules: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `leakwatch generate dashboards`: one JSON file per dashboard in `dir`.
fn generate_dashboards(dir: &std::path::Path) -> ExitCode {
    for (file, dashboard) in leakwatch::dashboard::all() {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, leakwatch::dashboard::file_text(&dashboard)) {
            eprintln!("leakwatch: cannot write {}: {e}", path.display());
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
