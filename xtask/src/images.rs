//! `cargo xtask images`: build the Debian test image (bookworm with
//! systemd, docker.io, containerd and iptables) into target/images/, or
//! reuse the one its recipe already built.

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Result<()> {
    xtask::apt_install(&["debootstrap"])?;
    let rootfs = warren_tests::debian::debian_rootfs()?;
    eprintln!("xtask: Debian test image in {}", rootfs.display());
    Ok(())
}
