//! `cargo xtask bench`: release build, then the benchmarks in `benches/`,
//! with the report in target/bench/report.md and report.json.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, build_static, cargo, is_root, run, target_dir, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Lifecycle iterations per runtime; the other sections scale from it
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Run only these sections: lifecycle, getppid, notify, scale
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

pub fn run_cmd(args: &Args) -> Result<()> {
    if !is_root() {
        bail!("the benchmarks run containers: run cargo xtask bench as root");
    }
    crate::deps::run(&crate::deps::Args { minimal: false })?;
    crate::build_ebpf::build()?;
    let bins = build_bins(true)?;
    let helper = build_static("warren-benches", "warren-bench-helper", true)?;
    run(Command::new(cargo()).current_dir(workspace_root()).args([
        "build",
        "--release",
        "-p",
        "warren-benches",
        "--bin",
        "warren-bench",
    ]))?;
    let mut bench = Command::new(target_dir().join("release/warren-bench"));
    bench
        .arg("--iterations")
        .arg(args.iterations.to_string())
        .arg("--helper")
        .arg(&helper)
        .env("WARREN_BIN_DIR", &bins);
    if !args.only.is_empty() {
        bench.arg("--only").arg(args.only.join(","));
    }
    run(&mut bench)
}
