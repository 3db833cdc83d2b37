//! warren-interceptor: the per-node daemon that receives each container's
//! seccomp user-notify fd and emulates privileged syscalls.
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "warren-interceptor", version, about)]
struct Args {
    /// The listenerPath socket that runtimes send notify fds to.
    #[arg(long, default_value = "/run/warren/interceptor.sock")]
    socket: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    tracing::error!(socket = %args.socket.display(), families = interceptor_ebpf::FAMILIES, "the seccomp listener is not built into this release yet");
    ExitCode::from(2)
}
