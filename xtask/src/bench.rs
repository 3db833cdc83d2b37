//! `cargo xtask bench`: release build, then the benchmarks in `benches/`,
//! with the report in target/bench/report.md and report.json.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, cargo, is_root, run, target_dir, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Iterations per runtime
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
}

pub fn run_cmd(args: &Args) -> Result<()> {
    if !is_root() {
        bail!("the benchmarks run containers: run cargo xtask bench as root");
    }
    crate::deps::run(&crate::deps::Args { minimal: false })?;
    crate::build_ebpf::build()?;
    let bins = build_bins(true)?;
    run(Command::new(cargo()).current_dir(workspace_root()).args([
        "build",
        "--release",
        "-p",
        "warren-benches",
    ]))?;
    run(Command::new(target_dir().join("release/warren-bench"))
        .arg(args.iterations.to_string())
        .env("WARREN_BIN_DIR", &bins))
}
