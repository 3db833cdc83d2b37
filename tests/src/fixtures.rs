//! Root filesystems and bundles built from Debian's busybox-static.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const BUSYBOX: &str = "/bin/busybox";

/// Builds a busybox rootfs at `dir`, unless one is already complete there.
/// Safe to call from concurrent processes: the tree is built in a temporary
/// directory and renamed into place.
pub fn busybox_rootfs(dir: &Path) -> Result<PathBuf> {
    if dir.join(".complete").exists() {
        return Ok(dir.to_path_buf());
    }
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static (cargo xtask deps)");
    }
    let parent = dir.parent().context("rootfs dir has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    // Unique per call: threads of one test binary build concurrently too.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(".tmp-rootfs-{}-{seq}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for d in [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "mnt", "var", "usr", "opt",
    ] {
        std::fs::create_dir_all(tmp.join(d)).with_context(|| format!("mkdir {d}"))?;
    }
    std::fs::copy(BUSYBOX, tmp.join("bin/busybox")).context("copy busybox")?;
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        symlink("busybox", tmp.join("bin").join(applet))
            .with_context(|| format!("link applet {applet}"))?;
    }
    symlink("bin", tmp.join("sbin")).context("link /sbin")?;
    symlink("../bin", tmp.join("usr/bin")).context("link /usr/bin")?;
    symlink("../bin", tmp.join("usr/sbin")).context("link /usr/sbin")?;
    std::fs::write(
        tmp.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(tmp.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::write(tmp.join(".complete"), "")?;
    std::fs::set_permissions(
        tmp.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        // Another process finished first: use its tree.
        Err(_) if dir.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir.to_path_buf())
        }
        Err(e) => Err(e).with_context(|| format!("rename into {}", dir.display())),
    }
}

/// The shared, read-only busybox rootfs under the target dir.
pub fn shared_busybox() -> PathBuf {
    static SHARED: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = shared.as_ref() {
        return dir.clone();
    }
    let dir = crate::target_dir().join("fixtures/busybox-rootfs-2");
    let dir = busybox_rootfs(&dir).unwrap_or_else(|e| panic!("cannot build busybox rootfs: {e:#}"));
    *shared = Some(dir.clone());
    dir
}

/// A private copy of the busybox rootfs, for tests that write to it.
pub fn private_busybox(dir: &Path) -> PathBuf {
    let shared = shared_busybox();
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).expect("create parent of private rootfs");
    }
    let status = Command::new("cp")
        .args(["-a", "--"])
        .arg(&shared)
        .arg(dir)
        .status()
        .expect("run cp");
    assert!(status.success(), "copy busybox rootfs to {}", dir.display());
    dir.to_path_buf()
}

/// Writes a bundle at `dir` whose config is warren-runc's default spec with
/// the given rootfs and args, edited by `edit`.
pub fn bundle(
    warren: &Path,
    dir: &Path,
    rootfs: &Path,
    args: &[&str],
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create bundle dir");
    let config = dir.join("config.json");
    let _ = std::fs::remove_file(&config);
    let out = Command::new(warren)
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .expect("run warren-runc spec");
    assert!(
        out.status.success(),
        "warren-runc spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).expect("read config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&text).expect("spec is json");
    spec["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .into();
    edit(&mut spec);
    std::fs::write(&config, serde_json::to_vec_pretty(&spec).expect("encode"))
        .expect("write config.json");
    dir.to_path_buf()
}

/// The static hostile test program, built by `cargo xtask test`.
pub fn hostile_bin() -> PathBuf {
    let bin = std::env::var_os("WARREN_HOSTILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::target_dir().join("x86_64-unknown-linux-gnu/debug/warren-hostile")
        });
    assert!(
        bin.exists(),
        "{} is missing: cargo xtask test builds it (a static build of tests/src/bin/warren-hostile.rs)",
        bin.display()
    );
    bin
}
