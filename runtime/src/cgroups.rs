//! Delegating a system container's cgroups to its root, so that an engine
//! inside (dockerd, containerd, systemd) can make child cgroups and set
//! limits on them, below warren's.
//!
//! Only the directory and the files that move processes or enable
//! controllers are given to the container's root: the limit files of the
//! container's own cgroup stay the host's, so the container cannot raise
//! what warren set. Children it creates are its own, and the kernel bounds
//! them by the parent's limits.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use crate::error::RuntimeError;

/// The files of a delegated cgroup directory the container's root may write.
const DELEGATED_FILES: &[&str] = &[
    "cgroup.procs",
    "tasks",
    "cgroup.clone_children",
    "cgroup.subtree_control",
    "cgroup.threads",
];

/// One cgroup hierarchy as this process sees it mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// The controllers (and `name=` options) of a v1 hierarchy; empty for
    /// cgroup2.
    pub controllers: Vec<String>,
}

/// The cgroup hierarchies mounted in this mount namespace, from mountinfo.
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        let (Some(mount_point), Some(fstype), Some(opts)) = (pre.get(4), post.first(), post.get(2))
        else {
            continue;
        };
        // Only whole hierarchies: a bind of a sub-cgroup is not one.
        if pre.get(3) != Some(&"/") {
            continue;
        }
        let controllers = match *fstype {
            "cgroup2" => Vec::new(),
            "cgroup" => opts
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("xattr"))
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        let h = Hierarchy {
            mount_point: PathBuf::from(unescape(mount_point)),
            controllers,
        };
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// mountinfo escapes spaces and the like as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host directories of a process's cgroups, from its /proc/PID/cgroup
/// text (read from the host's cgroup namespace) and the host's hierarchies.
/// A process in a hierarchy's root is left out: the host's root cgroup is
/// never delegated.
pub fn dirs_of(cgroup: &str, hierarchies: &[Hierarchy]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if path == "/" || path.is_empty() {
            continue;
        }
        let want: Vec<&str> = if ctrls.is_empty() {
            Vec::new()
        } else {
            ctrls.split(',').collect()
        };
        let Some(h) = hierarchies.iter().find(|h| {
            h.controllers.len() == want.len()
                && want.iter().all(|c| h.controllers.iter().any(|x| x == c))
        }) else {
            continue;
        };
        let dir = h.mount_point.join(path.trim_start_matches('/'));
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

/// The host uid and gid that are root inside the process's user namespace.
pub fn root_of(pid: i32) -> Result<(u32, u32), RuntimeError> {
    let read = |f: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/{f}"));
        std::fs::read_to_string(&path).map_err(|e| RuntimeError::io("cannot read", &path, e))
    };
    let host0 = |map: &str| {
        map.lines().find_map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3 && v[0] == 0).then_some(v[1])
        })
    };
    match (host0(&read("uid_map")?), host0(&read("gid_map")?)) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(RuntimeError::NoRootInUserns(pid)),
    }
}

/// Gives the cgroups of process `pid` to its user namespace's root.
/// Returns the directories delegated.
pub fn delegate(pid: i32) -> Result<Vec<PathBuf>, RuntimeError> {
    let (uid, gid) = root_of(pid)?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("cannot read", Path::new("/proc/self/mountinfo"), e))?;
    let cg_path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let cgroup = std::fs::read_to_string(&cg_path)
        .map_err(|e| RuntimeError::io("cannot read", &cg_path, e))?;
    let dirs = dirs_of(&cgroup, &hierarchies(&mountinfo));
    for dir in &dirs {
        chown(dir, Some(uid), Some(gid))
            .map_err(|e| RuntimeError::io("cannot delegate the cgroup", dir, e))?;
        for f in DELEGATED_FILES {
            let file = dir.join(f);
            match chown(&file, Some(uid), Some(gid)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io("cannot delegate", &file, e)),
            }
        }
    }
    tracing::debug!(pid, uid, gid, ?dirs, "cgroups delegated");
    Ok(dirs)
}

/// Where a process sits in the v1 hierarchy of `controllers` (empty for
/// cgroup2), from its /proc/PID/cgroup text.
fn path_in(cgroup: &str, controllers: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, c, path) = (p.next()?, p.next()?, p.next()?);
        (c == controllers).then(|| path.to_owned())
    })
}

/// Where process `pid` (or "self") sits in the hierarchy of `controllers`.
fn cgroup_path(pid: &str, controllers: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    path_in(&text, controllers)
}

/// A stay of this process in one cgroup of one hierarchy, so that the
/// processes it starts begin there. Dropping it moves this process back.
struct Stay {
    dir: PathBuf,
    back: PathBuf,
}

impl Stay {
    /// Joins `<mount>/<rel>` of the hierarchy of `controllers`, making it
    /// first if `make`.
    fn enter(
        mount: &Path,
        controllers: &str,
        rel: &Path,
        make: bool,
    ) -> Result<Stay, RuntimeError> {
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        let dir = mount.join(rel);
        let back = mount.join(
            cgroup_path("self", controllers)
                .unwrap_or_default()
                .trim_start_matches('/'),
        );
        if make {
            std::fs::create_dir_all(&dir)
                .map_err(|e| RuntimeError::io("cannot create the cgroup", &dir, e))?;
        }
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, std::process::id().to_string())
            .map_err(|e| RuntimeError::io("cannot join the cgroup", &procs, e))?;
        Ok(Stay { dir, back })
    }
}

impl Drop for Stay {
    fn drop(&mut self) {
        let procs = self.back.join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
            tracing::warn!(path = %procs.display(), error = %e, "cannot leave the container's cgroup");
        }
    }
}

/// The hierarchies libcontainer's v1 manager leaves alone: `name=systemd`
/// and, on a hybrid host, cgroup2 (as `""`), with their mount points.
fn unmanaged_hierarchies(all: &[Hierarchy]) -> Vec<(PathBuf, String)> {
    let hybrid = all.iter().any(|h| !h.controllers.is_empty());
    all.iter()
        .filter_map(|h| match h.controllers.as_slice() {
            [] if hybrid => Some((h.mount_point.clone(), String::new())),
            [named] if named == "name=systemd" => Some((h.mount_point.clone(), named.clone())),
            _ => None,
        })
        .collect()
}

/// The stays of this process in the container's own cgroups of the
/// hierarchies libcontainer leaves alone, so that the container's init
/// starts there and its cgroup namespace is rooted there. Without them the
/// container would sit in the host's root of those hierarchies, where
/// systemd inside could not make its own cgroups (it needs `name=systemd`,
/// and on a hybrid host cgroup2 too). Dropping them moves this process back.
pub struct OwnCgroups(Vec<Stay>);

impl OwnCgroups {
    /// Joins `<hierarchy>/<rel>` of each, making them.
    pub fn enter(rel: &Path) -> Result<OwnCgroups, RuntimeError> {
        if rel.strip_prefix("/").unwrap_or(rel).as_os_str().is_empty() {
            return Ok(OwnCgroups(Vec::new()));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("cannot read", Path::new("/proc/self/mountinfo"), e))?;
        let mut stays = Vec::new();
        for (mount, key) in unmanaged_hierarchies(&hierarchies(&mountinfo)) {
            // An error drops the stays made so far, which moves back.
            stays.push(Stay::enter(&mount, &key, rel, true)?);
        }
        Ok(OwnCgroups(stays))
    }

    /// The container's directories in those hierarchies.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.0.iter().map(|s| s.dir.clone()).collect()
    }
}

/// The stays of a process that is to join a running container (exec) in
/// the hierarchies libcontainer does not join for it: `name=systemd`, and
/// on a hybrid host cgroup2, where the interceptor keeps the container's
/// tracking cgroup for the eBPF probes. Without this, an exec'd process
/// would sit in the host's root there, uncounted and outside the
/// container's cgroups.
pub struct ExecStays {
    _stays: Vec<Stay>,
}

impl ExecStays {
    pub fn enter_like(pid: i32) -> Result<ExecStays, RuntimeError> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("cannot read", Path::new("/proc/self/mountinfo"), e))?;
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let mut stays = Vec::new();
        for (mount, key) in unmanaged_hierarchies(&hierarchies(&mountinfo)) {
            match path_in(&cgroup, &key) {
                Some(p) if p != "/" => stays.push(Stay::enter(&mount, &key, Path::new(&p), false)?),
                _ => {}
            }
        }
        Ok(ExecStays { _stays: stays })
    }
}

/// Removes a container's cgroups in the hierarchies libcontainer leaves
/// alone, and what it made below them.
pub fn remove_own_cgroups(rel: &Path) {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        return;
    }
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for (mount, _) in unmanaged_hierarchies(&hierarchies(&mountinfo)) {
        let dir = mount.join(rel);
        if dir.exists() {
            remove_tree(&dir);
        }
    }
}

/// Removes the cgroups a container made below its own cgroup `rel` (its
/// cgroupsPath), deepest first, in every hierarchy, so that the runtime can
/// remove the container's own. Their processes must be gone.
pub fn remove_children(rel: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        return;
    }
    for h in hierarchies(&mountinfo) {
        let top = h.mount_point.join(rel);
        if let Ok(entries) = std::fs::read_dir(&top) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path());
                }
            }
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a nested cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
25 1 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory
30 29 0:26 /sub /mnt/memsub rw - cgroup cgroup rw,memory
";

    #[test]
    fn hierarchies_come_from_mountinfo() {
        let h = hierarchies(MOUNTINFO);
        assert_eq!(h.len(), 4, "{h:?}");
        assert_eq!(h[0].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(h[0].controllers.is_empty());
        assert_eq!(h[1].controllers, vec!["name=systemd"]);
        assert_eq!(h[2].controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn dirs_map_each_hierarchy_and_never_the_root() {
        let cgroup = "\
12:memory:/warren/c1
4:cpu,cpuacct:/warren/c1
1:name=systemd:/warren/c1
0::/
9:pids:/warren/c1
";
        let dirs = dirs_of(cgroup, &hierarchies(MOUNTINFO));
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/sys/fs/cgroup/memory/warren/c1"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/warren/c1"),
                PathBuf::from("/sys/fs/cgroup/systemd/warren/c1"),
            ]
        );
        let v2 = dirs_of("0::/warren/c2\n", &hierarchies(MOUNTINFO));
        assert_eq!(v2, vec![PathBuf::from("/sys/fs/cgroup/unified/warren/c2")]);
    }

    #[test]
    fn a_process_path_is_found_by_its_hierarchy() {
        let cgroup = "4:memory:/warren/c1\n1:name=systemd:/warren/c1\n0::/\n";
        assert_eq!(
            path_in(cgroup, "name=systemd").as_deref(),
            Some("/warren/c1")
        );
        assert_eq!(path_in(cgroup, "").as_deref(), Some("/"));
        assert_eq!(path_in(cgroup, "pids"), None);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
