//! The command line: runc's global flags and subcommands.
//!
//! The subcommand structs come from liboci-cli, except `kill`, whose signal
//! runc makes optional (SIGTERM by default).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_ROOT: &str = "/run/warren";

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("WARREN_COMMIT");

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("WARREN_COMMIT"),
    "\nspec: 1.2.1"
);

#[derive(Parser, Debug)]
#[command(
    name = "warren-runc",
    version = VERSION,
    long_version = LONG_VERSION,
    about = "A runc-compatible OCI runtime for system containers"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: liboci_cli::GlobalOpts,
    /// Accepted for runc compatibility; warren decides rootless mode itself.
    #[arg(long, global = false, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// The node settings file [default: $WARREN_CONFIG, else /etc/warren/config.toml]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle, stopped before its process runs
    Create(liboci_cli::Create),
    /// Run the process of a created container
    Start(liboci_cli::Start),
    /// Create and start a container, and wait for it unless --detach
    Run(liboci_cli::Run),
    /// Print a container's state as JSON
    State(liboci_cli::State),
    /// Send a signal to a container's init process, or to all its processes
    Kill(Kill),
    /// Delete a container and everything warren set up for it
    Delete(liboci_cli::Delete),
    /// Run a new process in a running container
    Exec(liboci_cli::Exec),
    /// List the processes of a container
    Ps(liboci_cli::Ps),
    /// List containers
    List(liboci_cli::List),
    /// Freeze all processes of a container
    Pause(liboci_cli::Pause),
    /// Thaw a paused container
    Resume(liboci_cli::Resume),
    /// Print container events and resource statistics
    Events(liboci_cli::Events),
    /// Change a container's resource limits
    Update(liboci_cli::Update),
    /// Write a default config.json into a bundle
    Spec(liboci_cli::Spec),
    /// Print the OCI features document of this runtime
    Features(liboci_cli::Features),
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Send the signal to every process of the container
    #[arg(short, long)]
    pub all: bool,
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new(), required = true)]
    pub container_id: String,
    /// Signal name (KILL, SIGKILL, RTMIN+3) or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Settings every command needs, resolved from the global flags.
#[derive(Debug, Clone)]
pub struct Globals {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub settings: crate::settings::Settings,
}

/// The state root as a real path: every record and every comparison with
/// the mount table uses it. Docker names its root through the /var/run
/// symlink; mountinfo names the same directory under /run. The part that
/// does not exist yet is kept as given, below the real path of the rest.
pub fn real_root(root: &std::path::Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(root)?;
    let mut existing = abs.as_path();
    let mut missing = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut real = std::fs::canonicalize(existing)?;
    for name in missing.into_iter().rev() {
        real.push(name);
    }
    Ok(real)
}
