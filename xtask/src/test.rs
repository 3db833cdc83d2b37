//! `cargo xtask test`: install what is missing, build, and run every test in
//! the workspace as root.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, cargo, is_root, run as run_cmd, workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Arguments passed on to `cargo test` (a filter, `--nocapture`, ...)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    if !is_root() {
        bail!("the tests create namespaces, cgroups and mounts: run cargo xtask test as root");
    }
    crate::deps::run(&crate::deps::Args { minimal: false })?;
    let containerd = crate::deps::containerd()?;
    let bins = build_bins(false)?;

    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = Command::new(cargo());
    cmd.current_dir(workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("WARREN_BIN_DIR", &bins)
        .env("WARREN_CONTAINERD_DIR", &containerd)
        .env("PATH", format!("{}:{path}", containerd.display()));
    if !args.rest.is_empty() {
        cmd.args(&args.rest);
    }
    run_cmd(&mut cmd)
}
