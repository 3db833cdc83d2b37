//! A cgroup v2 directory per container, for the probes to tell containers
//! apart. `bpf_get_current_cgroup_id()` gives the v2 cgroup; on a hybrid
//! host every container started by a v1 runtime sits in the v2 root, so
//! warren gives each its own directory there (no controllers, tracking
//! only), and removes it when the container is gone. On a v2-only host the
//! container's own cgroup serves.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Tracking {
    pub dir: PathBuf,
    /// warren made the directory and removes it.
    pub created: bool,
    /// The cgroup id (the directory's inode).
    pub id: u64,
    /// Its depth below the cgroup2 root.
    pub level: u32,
}

/// Where cgroup2 is mounted.
pub fn v2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The v2 cgroup of a process, from /proc/PID/cgroup.
pub fn v2_path_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

fn join(dir: &Path, pid: i32) -> std::io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// Finds or makes the container's tracking cgroup, with `pid` in it.
pub fn track(container_id: &str, pid: i32) -> std::io::Result<Tracking> {
    let mount = v2_mount().ok_or_else(|| std::io::Error::other("no cgroup2 mount"))?;
    let own =
        v2_path_of(pid).ok_or_else(|| std::io::Error::other("no v2 cgroup for the process"))?;
    let (dir, created) = if own == "/" {
        let dir = mount.join("warren").join(format!("{container_id}.{pid}"));
        std::fs::create_dir_all(&dir)?;
        join(&dir, pid)?;
        (dir, true)
    } else {
        (mount.join(own.trim_start_matches('/')), false)
    };
    let id = std::fs::metadata(&dir)?.ino();
    let level = dir
        .strip_prefix(&mount)
        .map(|p| p.components().count() as u32)
        .unwrap_or(0);
    Ok(Tracking {
        dir,
        created,
        id,
        level,
    })
}

/// Puts another process of the container (an exec) in its tracking cgroup.
pub fn add(t: &Tracking, pid: i32) {
    if t.created {
        let _ = join(&t.dir, pid);
    }
}

/// Removes a tracking cgroup warren made, once its processes are gone.
pub fn remove(t: &Tracking) {
    if !t.created {
        return;
    }
    for _ in 0..50 {
        match std::fs::remove_dir(&t.dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    tracing::warn!(dir = %t.dir.display(), "cannot remove a tracking cgroup");
}

/// Removes the tracking cgroups no process is in any more: those of an
/// interceptor that was killed before it could clean up. A cgroup with
/// processes in it cannot be removed, so live containers keep theirs.
pub fn remove_stale() -> usize {
    let Some(dir) = v2_mount().map(|m| m.join("warren")) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cgroup.procs"))
                .is_ok_and(|p| p.trim().is_empty())
        })
        .filter(|e| std::fs::remove_dir(e.path()).is_ok())
        .count()
}
