//! `cargo xtask test`: install what is missing, build, and run every test in
//! the workspace as root.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, cargo, is_root, workspace_root};

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
    // Built first, so that the interceptor embeds the probes.
    let probes = crate::build_ebpf::build()?;
    let bins = build_bins(false)?;
    let hostile = xtask::build_static("warren-tests", "warren-hostile", false)?;
    // The Debian image for the nested-engine tests: built once per recipe.
    let debian = warren_tests::debian::debian_rootfs()?;
    eprintln!("xtask: Debian test image in {}", debian.display());

    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = Command::new(cargo());
    cmd.current_dir(workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("WARREN_BIN_DIR", &bins)
        .env("WARREN_HOSTILE", &hostile)
        .env("WARREN_EBPF_OBJECT", &probes)
        .env("WARREN_CONTAINERD_DIR", &containerd)
        .env("PATH", format!("{}:{path}", containerd.display()));
    if !args.rest.is_empty() {
        cmd.args(&args.rest);
    }
    run_counted(&mut cmd)
}

/// Runs cargo test, passing its output through, and closes with one line
/// that totals every test binary's result: `N passed, N failed`.
fn run_counted(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start cargo test: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match kind {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    "ignored" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    let status = child.wait()?;
    writeln!(
        out,
        "warren: {passed} passed, {failed} failed, {ignored} skipped"
    )?;
    if !status.success() {
        bail!("cargo test failed: {status}");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}
