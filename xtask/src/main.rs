//! `cargo xtask`: the project's own tasks. One subcommand per file.

use clap::{Parser, Subcommand};

mod bench;
mod build_ebpf;
mod demo;
mod deps;
mod images;
mod install;
mod lint;
mod test;

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and testing warren needs (Debian packages, containerd 2.x)
    Deps(deps::Args),
    /// Benchmark warren against crun and runc; report in target/bench/
    Bench(bench::Args),
    /// Build the eBPF probes with Debian's toolchain, installing it if missing
    BuildEbpf(build_ebpf::Args),
    /// Build warren and run a busybox system container with it
    Demo(demo::Args),
    /// Build the Debian test image (systemd, docker.io, containerd), cached by recipe
    Images(images::Args),
    /// Build in release mode and install warren-runc and warren-interceptor
    Install(install::Args),
    /// Check formatting and run clippy with warnings as errors
    Lint(lint::Args),
    /// Install what is missing, build, and run every test as root
    Test(test::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Deps(args) => deps::run(&args),
        Command::Bench(args) => bench::run_cmd(&args),
        Command::BuildEbpf(args) => build_ebpf::run_cmd(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Images(args) => images::run(&args),
        Command::Install(args) => install::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Test(args) => test::run(&args),
    }
}
