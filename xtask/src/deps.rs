//! `cargo xtask deps`: everything warren's build, demo and tests use, from
//! Debian's archive. containerd 2.x comes from Debian sid, unpacked under
//! `target/tools/` rather than installed, because bookworm's is 1.6.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use xtask::{apt_install, output, path_str, run as run_cmd, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Only what the demo needs
    #[arg(long)]
    pub minimal: bool,
}

/// What building warren and running the demo need.
/// protoc: the tests' CRI client (k8s-cri) compiles the CRI protobufs.
pub const BUILD_PACKAGES: &[&str] = &[
    "libseccomp-dev",
    "pkg-config",
    "busybox-static",
    "protobuf-compiler",
];

/// What the tests add: the peer runtimes and the real clients.
pub const TEST_PACKAGES: &[&str] = &[
    "runc",
    "crun",
    "podman",
    "uidmap",
    "containernetworking-plugins",
    "iptables",
    // Reads the probes' maps from outside the interceptor.
    "bpftool",
    // Builds the Debian test image (cargo xtask images).
    "debootstrap",
];

pub fn run(args: &Args) -> Result<()> {
    apt_install(BUILD_PACKAGES)?;
    if !args.minimal {
        apt_install(TEST_PACKAGES)?;
        let dir = containerd()?;
        eprintln!("xtask: containerd 2.x in {}", dir.display());
    }
    Ok(())
}

/// The bin dir of an unpacked containerd 2.x, fetching it when missing.
pub fn containerd() -> Result<PathBuf> {
    let tools = target_dir().join("tools");
    let root = tools.join("containerd");
    let bin = root.join("usr/bin");
    if is_containerd_2(&bin) {
        return Ok(bin);
    }
    let apt = tools.join("apt-sid");
    for d in ["lists/partial", "cache/archives/partial", "debs"] {
        std::fs::create_dir_all(apt.join(d)).with_context(|| format!("mkdir {d}"))?;
    }
    let (uri, keyring) = debian_mirror()?;
    let sources = apt.join("sources.list");
    std::fs::write(
        &sources,
        format!("deb [signed-by={keyring}] {uri} sid main\n"),
    )?;
    let apt_opts = |cmd: &mut Command| -> Result<()> {
        cmd.arg("-o")
            .arg(format!(
                "Dir::State::Lists={}",
                path_str(&apt.join("lists"))?
            ))
            .arg("-o")
            .arg(format!("Dir::Etc::SourceList={}", path_str(&sources)?))
            .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
            .arg("-o")
            .arg(format!("Dir::Cache={}", path_str(&apt.join("cache"))?));
        Ok(())
    };
    let mut update = Command::new("apt-get");
    apt_opts(&mut update)?;
    run_cmd(update.args(["update", "-q"]))?;
    let debs = apt.join("debs");
    for old in std::fs::read_dir(&debs)?.flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    let mut download = Command::new("apt-get");
    apt_opts(&mut download)?;
    run_cmd(download.current_dir(&debs).args(["download", "containerd"]))?;
    let deb = std::fs::read_dir(&debs)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let _ = std::fs::remove_dir_all(&root);
    run_cmd(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    if !is_containerd_2(&bin) {
        bail!("{} does not hold containerd 2.x", deb.display());
    }
    Ok(bin)
}

fn is_containerd_2(bin: &Path) -> bool {
    output(Command::new(bin.join("containerd")).arg("--version"))
        .map(|v| {
            v.split_whitespace()
                .any(|w| w.starts_with("v2.") || w.starts_with("2."))
        })
        .unwrap_or(false)
}

/// The Debian archive this machine's apt already uses, and its keyring, from
/// the deb822 sources (or the one-line sources.list).
fn debian_mirror() -> Result<(String, String)> {
    let default_keyring = "/usr/share/keyrings/debian-archive-keyring.gpg".to_owned();
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            if e.path().extension().is_some_and(|x| x == "sources") {
                texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    for text in &texts {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(|v| v.trim().to_owned())
                })
            };
            let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
                continue;
            };
            let is_main_archive = suites
                .split_whitespace()
                .any(|s| !s.contains('-') && s != "sid")
                && !uris.contains("security");
            if is_main_archive {
                let uri = uris
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Ok((uri, field("Signed-By").unwrap_or(default_keyring)));
            }
        }
    }
    let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for line in list.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let uri = words.iter().find(|w| w.contains("://"));
        if let (Some(&"deb"), Some(uri)) = (words.first(), uri)
            && !uri.contains("security")
        {
            return Ok(((*uri).to_owned(), default_keyring));
        }
    }
    bail!("no Debian archive found in /etc/apt sources")
}
