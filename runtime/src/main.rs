//! warren-runc: the binary. It wires the command line, logging and exit codes;
//! the commands live in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};
use warren_runtime::cli::{Cli, DEFAULT_ROOT, Globals};
use warren_runtime::commands::dispatch;
use warren_runtime::error::{RuntimeError, one_line};
use warren_runtime::logging::{LogFormat, RecordLayer};
use warren_runtime::settings::Settings;

/// Where records go: the `--log` file, or nowhere but the final stderr line.
struct Logs {
    file: Option<Arc<RecordLayer>>,
}

struct Shared(Arc<RecordLayer>);

impl<S: tracing::Subscriber> Layer<S> for Shared {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        self.0.on_event(event, ctx);
    }
}

fn init_logs(cli: &Cli) -> Result<Logs, String> {
    let format = LogFormat::parse(cli.global.log_format.as_deref())?;
    let level = if cli.global.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::WARN
    };
    let file = match &cli.global.log {
        Some(path) if path.as_os_str() != "/dev/stderr" => {
            Some(Arc::new(RecordLayer::open(path, format).map_err(|e| {
                format!("cannot open log file {}: {e}", path.display())
            })?))
        }
        _ => None,
    };
    let subscriber = Registry::default()
        .with(file.clone().map(|f| Shared(f).with_filter(level)))
        .with(
            // Without a log file, records reach stderr only with --debug, so
            // that an error stays one line.
            (file.is_none() && cli.global.debug).then(|| {
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(LevelFilter::DEBUG)
            }),
        );
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| format!("cannot install logger: {e}"))?;
    Ok(Logs { file })
}

fn main() -> ExitCode {
    // The createRuntime hook warren-runc adds to system containers (see
    // warren_runtime::locked), with the container's state on stdin.
    if std::env::args().nth(1).as_deref() == Some(warren_runtime::locked::HOOK) {
        return match warren_runtime::locked::hook_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!(
                    "warren-runc {}: {}",
                    warren_runtime::locked::HOOK,
                    warren_runtime::error::one_line(&err)
                );
                ExitCode::from(1)
            }
        };
    }
    let cli = Cli::parse();
    let logs = match init_logs(&cli) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("warren-runc: {msg}");
            return ExitCode::from(1);
        }
    };
    let config = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("WARREN_CONFIG").map(PathBuf::from));
    let root = cli
        .global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let result = Settings::load(config.as_deref())
        .map_err(RuntimeError::from)
        .and_then(|settings| {
            let globals = Globals {
                root: warren_runtime::cli::real_root(&root)
                    .map_err(|e| RuntimeError::io("bad --root", &root, e))?,
                systemd_cgroup: cli.global.systemd_cgroup,
                settings,
            };
            dispatch(cli.command, &globals)
        });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
        Err(err) => {
            let mut line = one_line(&err);
            // libcontainer reports a container init that failed by the step
            // of its own that broke; the init's record says why.
            if let (RuntimeError::Libcontainer(_), Some(file)) = (&err, &logs.file) {
                if let Some(first) = file.first_error().filter(|f| !line.contains(f.as_str())) {
                    line = format!("{line} (container init: {first})");
                }
            }
            if let Some(file) = &logs.file {
                file.write(Level::ERROR, &line, &[]);
            }
            eprintln!("warren-runc: {line}");
            ExitCode::from(1)
        }
    }
}
