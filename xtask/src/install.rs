//! `cargo xtask install`: build in release mode (with the eBPF probes when
//! the toolchain is there) and install the binaries under a prefix.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xtask::build_bins;

#[derive(clap::Args)]
pub struct Args {
    /// Install into PREFIX/bin
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Do not build the eBPF probes (the interceptor then reports
    /// warren_ebpf_enabled 0)
    #[arg(long)]
    pub no_ebpf: bool,
}

pub fn run(args: &Args) -> Result<()> {
    crate::deps::run(&crate::deps::Args { minimal: true })?;
    if !args.no_ebpf {
        crate::build_ebpf::build()?;
    }
    let bins = build_bins(true)?;
    let dest = args.prefix.join("bin");
    std::fs::create_dir_all(&dest).with_context(|| format!("create {}", dest.display()))?;
    // warren-runc finds warren-interceptor beside itself: install both.
    for name in ["warren-runc", "warren-interceptor"] {
        let to = dest.join(name);
        let tmp = dest.join(format!(".{name}.new"));
        std::fs::copy(bins.join(name), &tmp).with_context(|| format!("copy {name}"))?;
        std::fs::rename(&tmp, &to).with_context(|| format!("install {}", to.display()))?;
        eprintln!("xtask: installed {}", to.display());
    }
    Ok(())
}
