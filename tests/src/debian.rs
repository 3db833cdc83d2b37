//! The Debian test image: bookworm from Debian's archive with debootstrap,
//! plus systemd, docker.io, containerd and iptables installed with apt-get
//! in a chroot. Built once per recipe and cached under `target/images/`:
//! a change to the recipe below names a new directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// What apt-get adds to the minbase system.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "docker.io",
    "containerd",
    "iptables",
    "iproute2",
    "procps",
    "ca-certificates",
];
/// Run in the chroot after the install. Services are not started while
/// building (policy-rc.d); the image's machine-id is empty so that each
/// container's systemd makes its own.
const FINISH: &str = "\
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo warren-debian > /etc/hostname
";

/// A stable (FNV-1a) hash of the recipe; it names the cached image.
fn recipe_hash() -> String {
    let recipe = format!("{SUITE}|{MIRROR}|{}|{FINISH}|v1", PACKAGES.join(","));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in recipe.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Where the image for the current recipe lives (built or not).
pub fn image_dir() -> PathBuf {
    crate::target_dir()
        .join("images")
        .join(format!("debian-{SUITE}-{}", recipe_hash()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("run {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The image's rootfs, built first if this recipe has none yet.
pub fn debian_rootfs() -> Result<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = image_dir();
    let rootfs = dir.join("rootfs");
    if dir.join(".complete").exists() {
        return Ok(rootfs);
    }
    if !Path::new("/usr/sbin/debootstrap").exists() {
        bail!("debootstrap is missing: run `cargo xtask deps` (Debian package debootstrap)");
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let tmp = dir.join("rootfs.tmp");
    run(Command::new("debootstrap")
        .args(["--variant=minbase", SUITE])
        .arg(&tmp)
        .arg(MIRROR))?;
    std::fs::write(
        tmp.join("usr/sbin/policy-rc.d"),
        "#!/bin/sh\n# no services start while the image is built\nexit 101\n",
    )?;
    run(Command::new("chmod")
        .arg("0755")
        .arg(tmp.join("usr/sbin/policy-rc.d")))?;
    run(Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "install", "-y", "-q", "--no-install-recommends"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("chroot").arg(&tmp).args(["sh", "-ec", FINISH]))?;
    std::fs::rename(&tmp, &rootfs).context("move the finished rootfs in place")?;
    std::fs::write(dir.join(".complete"), recipe_hash())?;
    Ok(rootfs)
}
