//! `cargo xtask lint`: rustfmt's check and clippy with the workspace's
//! deny lints (`undocumented_unsafe_blocks` among them), warnings as errors.
//! Run after `cargo xtask deps`, which installs protoc for the tests' CRI
//! client.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{cargo, workspace_root};

#[derive(clap::Args)]
pub struct Args {}

fn run_step(what: &str, cmd: &mut Command) -> Result<()> {
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {what}: {e}"))?;
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}

pub fn run(_: &Args) -> Result<()> {
    run_step(
        "cargo fmt --check",
        Command::new(cargo()).args(["fmt", "--all", "--", "--check"]),
    )?;
    run_step(
        "cargo clippy",
        Command::new(cargo()).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    eprintln!("xtask: rustfmt and clippy are clean");
    Ok(())
}
