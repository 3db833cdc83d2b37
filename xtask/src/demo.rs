//! `cargo xtask demo`: build warren and run one busybox system container
//! that prints who it is.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, path_str, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Build in debug mode rather than release
    #[arg(long)]
    pub debug: bool,
}

const SCRIPT: &str = r#"
echo "== inside a warren container =="
echo "id:       $(id)"
echo "hostname: $(hostname)"
echo "uid_map:  $(cat /proc/self/uid_map)"
echo "pid 1:    $(cat /proc/1/comm)"
"#;

pub fn run(args: &Args) -> Result<()> {
    crate::deps::run(&crate::deps::Args { minimal: true })?;
    let bins = build_bins(!args.debug)?;
    let warren = bins.join("warren-runc");

    let demo = target_dir().join("demo");
    let rootfs = warren_tests::fixtures::busybox_rootfs(&demo.join("rootfs"))?;
    let bundle = demo.join("bundle");
    warren_tests::fixtures::bundle(&warren, &bundle, &rootfs, &["sh", "-c", SCRIPT], |_| {});

    let id = format!("warren-demo-{}", std::process::id());
    eprintln!(
        "xtask: {} run --bundle {} {id}",
        warren.display(),
        bundle.display()
    );
    let status = Command::new(&warren)
        .args(["run", "--bundle", path_str(&bundle)?, &id])
        .status()?;
    if !status.success() {
        // Leave nothing behind on failure either.
        let _ = Command::new(&warren)
            .args(["delete", "--force", &id])
            .status();
        bail!("the demo container failed: {status}");
    }
    Ok(())
}
