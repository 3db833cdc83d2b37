//! The harness for warren's end-to-end tests: real containers, as root.
//!
//! Tests drive the `warren-runc` binary (and runc, crun, containerd and
//! podman for comparison) and assert what a probe inside the container sees.
//! Anything a test needs that is missing makes it panic with the reason:
//! a test never passes without having run.

pub mod containerd;
pub mod debian;
pub mod fixtures;
pub mod host;
pub mod images;
pub mod runtime;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// The directory build products and fixtures go in.
pub fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    static PRIVATE: std::sync::Once = std::sync::Once::new();
    PRIVATE.call_once(|| private_rootfs_dirs(&dir));
    dir
}

/// The directories that hold the tests' rootfs trees are root's alone:
/// container root writes into a writable ID-mapped rootfs as host uid 0,
/// and warren refuses such a rootfs where other host users could reach a
/// setuid file in it.
fn private_rootfs_dirs(target: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["test-bundles", "test-rootfs", "fixtures", "images"] {
        let dir = target.join(sub);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
}

/// Panics unless running as root: these tests create namespaces, cgroups
/// and mounts.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test needs root: run it through `cargo xtask test` as root");
    }
}

/// A name unique to this process and call, for container ids and dirs.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The interceptor's metrics text, from `addr` (host:port).
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read the metrics");
    text
}

/// The process listening on the unix socket at `path`: found by the
/// socket's inode, never by a process name, so that a test or a bench finds
/// the daemon it started on its own socket and never the node's.
pub fn try_listener_of(path: &std::path::Path) -> Option<i32> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let inode = table
        .lines()
        // The listening socket: flags __SO_ACCEPTCON.
        .find(|l| {
            l.ends_with(&format!(" {}", path.display()))
                && l.split_whitespace().nth(3) == Some("00010000")
        })
        .and_then(|l| l.split_whitespace().nth(6))?
        .to_owned();
    let want = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc_dir.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let holds = std::fs::read_dir(proc_dir.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == want));
        if holds {
            return Some(pid);
        }
    }
    None
}

pub fn listener_of(path: &std::path::Path) -> i32 {
    try_listener_of(path).unwrap_or_else(|| panic!("nothing listens on {}", path.display()))
}
