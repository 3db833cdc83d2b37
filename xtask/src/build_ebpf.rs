//! `cargo xtask build-ebpf`: build warren's eBPF probes with Debian's
//! toolchain (rustc-web with rust-web-src, LLVM 22, bpf-linker), installing
//! whatever part of it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use xtask::{apt_install, run, target_dir, workspace_root};

/// Debian's rustc ships the core sources build-std needs; rustup's does not.
const RUSTC: &str = "/usr/bin/rustc";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const TARGET: &str = "bpfel-unknown-none";

#[derive(clap::Args)]
pub struct Args {}

fn bpf_linker() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let bin = home.join("bin/bpf-linker");
    bin.exists().then_some(bin)
}

/// Installs the toolchain's missing parts.
pub fn toolchain() -> Result<PathBuf> {
    apt_install(&["rustc-web", "rust-web-src", "llvm-22-dev"])?;
    if let Some(bin) = bpf_linker() {
        return Ok(bin);
    }
    let path = format!(
        "{LLVM_PREFIX}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new(xtask::cargo())
        .args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", LLVM_PREFIX)
        .env("PATH", path))?;
    bpf_linker().context("bpf-linker is not in ~/.cargo/bin after cargo install")
}

/// Builds the probes and returns the object's path.
pub fn build() -> Result<PathBuf> {
    let linker = toolchain()?;
    let out = target_dir().join("ebpf");
    let path = format!(
        "{}:{LLVM_PREFIX}/bin:{}",
        linker
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new(xtask::cargo())
        .current_dir(workspace_root().join("interceptor-ebpf"))
        .args([
            "build",
            "--release",
            "--bin",
            "warren-probes",
            "--features",
            "probes",
        ])
        .args(["--target", TARGET, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&out)
        .env("RUSTC", RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", "bpf-linker")
        .env_remove("RUSTFLAGS")
        .env("PATH", path))?;
    let object = out.join(TARGET).join("release/warren-probes");
    if !object.exists() {
        bail!("the build left no object at {}", object.display());
    }
    Ok(object)
}

pub fn run_cmd(_args: &Args) -> Result<()> {
    let object = build()?;
    eprintln!("xtask: eBPF probes in {}", object.display());
    Ok(())
}
