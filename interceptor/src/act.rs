//! Acting for a caller, from a dedicated thread that has its own fs context
//! (unshare(CLONE_FS)) and so can enter the caller's mount namespace and
//! come back. Every path was resolved to an fd inside the caller's root
//! before this runs: nothing here resolves a path the container gave.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::container::Container;
use crate::handlers::mount::{MS_RDONLY, Pseudo};
use crate::mounts;
use crate::sys::{self, FsParam};

const CAP_SYS_ADMIN: u32 = 21;
const MS_NOSUID: u64 = 0x2;
const MS_NODEV: u64 = 0x4;
const MS_NOEXEC: u64 = 0x8;

/// The thread's own namespaces, to return to after acting.
pub struct Home {
    mnt: OwnedFd,
    net: OwnedFd,
    root: OwnedFd,
    proc: OwnedFd,
}

impl Home {
    /// Unshares the thread's fs context and records where home is.
    pub fn new() -> std::io::Result<Home> {
        sys::unshare_fs()?;
        Ok(Home {
            mnt: sys::open_path("/proc/thread-self/ns/mnt", libc::O_RDONLY)?,
            net: sys::open_path("/proc/thread-self/ns/net", libc::O_RDONLY)?,
            root: sys::open_path("/", libc::O_PATH | libc::O_DIRECTORY)?,
            proc: sys::open_path("/proc", libc::O_PATH | libc::O_DIRECTORY)?,
        })
    }
}

/// The caller's handles, opened through /proc/PID. Each is used only
/// after a SECCOMP_IOCTL_NOTIF_ID_VALID check that followed its opening,
/// so that it belonged to the caller and not to a reused pid.
pub struct Caller {
    pub pid: i32,
    /// Where the caller's path resolves from: its root for an absolute
    /// path, its cwd for a relative one.
    base: OwnedFd,
    ns: Option<Namespaces>,
}

/// The caller's namespaces, opened only when warren acts for it.
pub struct Namespaces {
    pub mnt: OwnedFd,
    pub pidns: OwnedFd,
    pub net: OwnedFd,
}

fn not_opened() -> std::io::Error {
    std::io::Error::other("the caller's namespaces were not opened")
}

impl Caller {
    /// Opens what resolving `path` needs: nothing more, so that a call
    /// answered at once costs few syscalls.
    pub fn open(pid: i32, path: &str) -> std::io::Result<Caller> {
        let base = if path.starts_with('/') { "root" } else { "cwd" };
        Ok(Caller {
            pid,
            base: sys::open_path(
                &format!("/proc/{pid}/{base}"),
                libc::O_PATH | libc::O_DIRECTORY,
            )?,
            ns: None,
        })
    }

    /// Opens the caller's mount, pid and network namespaces. The caller
    /// must check the notification valid again before using them.
    pub fn open_namespaces(&mut self) -> std::io::Result<()> {
        let p = |s: &str| format!("/proc/{}/ns/{s}", self.pid);
        self.ns = Some(Namespaces {
            mnt: sys::open_path(&p("mnt"), libc::O_RDONLY)?,
            pidns: sys::open_path(&p("pid"), libc::O_RDONLY)?,
            net: sys::open_path(&p("net"), libc::O_RDONLY)?,
        });
        Ok(())
    }

    pub fn ns(&self) -> std::io::Result<&Namespaces> {
        self.ns.as_ref().ok_or_else(not_opened)
    }

    /// Resolves the path given to [`Caller::open`] inside the caller's
    /// root (absolute) or beneath its cwd (relative).
    ///
    /// `/proc/self/fd/N` (or `/proc/thread-self/fd/N`) names a file the
    /// caller holds open: systemd mounts onto O_PATH fds that way. Resolved
    /// in the caller's root it would mean the interceptor's own fd, so it
    /// is taken from the caller's fd table instead: the very object the
    /// caller holds, which gives it nothing it does not have.
    pub fn resolve(&self, path: &str) -> std::io::Result<OwnedFd> {
        if let Some(n) = own_fd(path) {
            return sys::open_path(&format!("/proc/{}/fd/{n}", self.pid), libc::O_PATH);
        }
        sys::open_in_root(self.base.as_fd(), path)
    }

    /// Resolves a bind's or a move's source inside the caller's root (or
    /// beneath its cwd), following /proc's magic links: engines bind
    /// namespace files (`/proc/PID/ns/net`) to keep namespaces. `self` and
    /// `thread-self` there mean the caller, so they are spelled with its
    /// ids as its own /proc numbers them.
    pub fn resolve_source(&self, path: &str) -> std::io::Result<OwnedFd> {
        let base = if path.starts_with('/') { "root" } else { "cwd" };
        let base = sys::open_path(
            &format!("/proc/{}/{base}", self.pid),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        let path = match own_proc_prefix(path) {
            Some((thread, rest)) => {
                let (tgid, tid) = ns_ids(self.pid)?;
                if thread {
                    format!("/proc/{tgid}/task/{tid}{rest}")
                } else {
                    format!("/proc/{tgid}{rest}")
                }
            }
            None => path.to_owned(),
        };
        // openat2 follows no magic link inside a root, so a /proc entry
        // (ns/net, fd/3, root) is opened from its directory, once that is
        // known to be a real procfs: there only the kernel makes links.
        if let Some((dir, name)) = path.rsplit_once('/') {
            let plain = !name.is_empty() && name != "." && name != "..";
            if let (true, Ok(parent)) = (plain, sys::open_in_root(base.as_fd(), dir)) {
                if sys::is_procfs(parent.as_fd()) {
                    return sys::open_proc_entry(parent.as_fd(), name);
                }
            }
        }
        sys::open_in_root(base.as_fd(), &path)
    }

    /// Whether the caller holds CAP_SYS_ADMIN (in its own user namespace).
    pub fn is_admin(&self) -> bool {
        sys::effective_caps(self.pid).is_ok_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
    }
}

/// For `/proc/self...` (false) or `/proc/thread-self...` (true): which, and
/// the rest of the path.
fn own_proc_prefix(path: &str) -> Option<(bool, &str)> {
    for (prefix, thread) in [("/proc/thread-self", true), ("/proc/self", false)] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if rest.is_empty() || rest.starts_with('/') {
                return Some((thread, rest));
            }
        }
    }
    None
}

/// A task's process and thread ids as its own pid namespace numbers them
/// (the last fields of NStgid and NSpid).
fn ns_ids(tid: i32) -> std::io::Result<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    let last = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    };
    match (last("NStgid:"), last("NSpid:")) {
        (Some(tgid), Some(pid)) => Ok((tgid, pid)),
        _ => Err(std::io::Error::from_raw_os_error(libc::ESRCH)),
    }
}

/// N, for a path that names the caller's own fd N through its /proc.
fn own_fd(path: &str) -> Option<u32> {
    let n = path
        .strip_prefix("/proc/self/fd/")
        .or_else(|| path.strip_prefix("/proc/thread-self/fd/"))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Runs `f` inside the caller's mount namespace and returns home after.
fn in_mount_ns<T>(
    home: &Home,
    caller: &Caller,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    sys::setns(caller.ns()?.mnt.as_fd(), libc::CLONE_NEWNS)?;
    let result = f();
    let back = sys::setns(home.mnt.as_fd(), libc::CLONE_NEWNS)
        .and_then(|()| sys::fchdir(home.root.as_fd()));
    // Failing to return would leave this thread inside a container.
    if let Err(e) = back {
        tracing::error!(%e, "cannot return to the host mount namespace");
        std::process::abort();
    }
    result
}

/// A bind of `source` onto `target` for the caller, both resolved in its
/// root: a copy of the source's mount (and, if `recursive`, the mounts
/// below it) attached at the target. Made on the fds, so neither path is
/// read again.
pub fn bind(
    home: &Home,
    caller: &Caller,
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
) -> std::io::Result<()> {
    // mount(2) answers a file bound onto a directory (or the reverse)
    // with ENOTDIR, which runtimes inside rely on (runc tries /dev/null
    // over a masked path, then a tmpfs); move_mount would say EINVAL.
    if sys::is_dir(source) != sys::is_dir(target) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    in_mount_ns(home, caller, || {
        let tree = sys::clone_mount(source, recursive)?;
        sys::move_mount(tree.as_fd(), target, None)
    })
}

/// A move of the mount whose root `source` is onto `target`, for the
/// caller, on the resolved fds.
pub fn move_to(
    home: &Home,
    caller: &Caller,
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
) -> std::io::Result<()> {
    if sys::is_dir(source) != sys::is_dir(target) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    in_mount_ns(home, caller, || sys::move_mount(source, target, None))
}

pub fn unmount(
    home: &Home,
    caller: &Caller,
    target: OwnedFd,
    flags: u64,
    detach: bool,
) -> std::io::Result<()> {
    // UMOUNT_NOFOLLOW means nothing for an fd already resolved.
    let mut flags = (flags as libc::c_int) & !libc::UMOUNT_NOFOLLOW;
    if detach {
        flags |= libc::MNT_DETACH;
    }
    in_mount_ns(home, caller, || {
        sys::fchdir(home.proc.as_fd())?;
        sys::umount_fd(target, flags)
    })
}

pub fn bind_remount(
    home: &Home,
    caller: &Caller,
    target: BorrowedFd<'_>,
    flags: u64,
    data: Option<&str>,
) -> std::io::Result<()> {
    in_mount_ns(home, caller, || {
        sys::fchdir(home.proc.as_fd())?;
        sys::remount_fd(target, sys::FdOwner::Thread, flags as libc::c_ulong, data)
    })
}

fn attrs_of(flags: u64) -> u64 {
    let mut a = 0;
    for (ms, attr) in [
        (MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            a |= attr;
        }
    }
    a
}

/// Paths of `list` under `prefix`, relative to it.
fn under<'a>(list: &'a [String], prefix: &str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = format!("{prefix}/");
    list.iter()
        .filter_map(move |p| p.strip_prefix(prefix.as_str()))
}

/// Mounts a new proc (for the caller's pid namespace) or sysfs (for its
/// network namespace) at `target`, with the container's masks and
/// read-only paths re-applied before it becomes visible.
pub fn mount_pseudo(
    home: &Home,
    caller: &Caller,
    container: &Container,
    kind: Pseudo,
    target: BorrowedFd<'_>,
    flags: u64,
) -> std::io::Result<()> {
    let attrs = attrs_of(flags);
    let (m, prefix) = match kind {
        Pseudo::Proc => (
            sys::new_mount(
                "proc",
                &[FsParam::Fd("pidns", caller.ns()?.pidns.as_fd())],
                attrs,
            )?,
            "/proc",
        ),
        Pseudo::Sysfs => {
            // sysfs shows the network devices of the mounter's namespace.
            sys::setns(caller.ns()?.net.as_fd(), libc::CLONE_NEWNET)?;
            let m = sys::new_mount("sysfs", &[], attrs);
            if let Err(e) = sys::setns(home.net.as_fd(), libc::CLONE_NEWNET) {
                tracing::error!(%e, "cannot return to the host network namespace");
                std::process::abort();
            }
            (m?, "/sys")
        }
    };
    let mut added = Vec::new();
    for rel in under(&container.readonly, prefix) {
        added.extend(sys::read_only_in(m.as_fd(), rel)?);
    }
    for rel in under(&container.masked, prefix) {
        added.extend(sys::mask_in(m.as_fd(), home.root.as_fd(), rel)?);
    }
    let ids: Vec<u64> = added
        .iter()
        .filter_map(|fd| sys::mount_of(fd.as_fd()).ok().map(|(id, _)| id))
        .collect();
    let root_id = sys::mount_of(m.as_fd())?.0;
    in_mount_ns(home, caller, || sys::move_mount(m.as_fd(), target, None))?;

    // Protect what was added, by identity, as the caller's table shows it.
    let table = mounts::read(caller.pid).unwrap_or_default();
    let mut rec = container.added.lock().unwrap_or_else(|p| p.into_inner());
    for entry in &table {
        if ids.contains(&entry.id) {
            rec.masks.insert(entry.id, entry.identity());
        } else if entry.id == root_id {
            rec.emulated.insert(entry.id, entry.identity());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::own_fd;

    #[test]
    fn self_and_thread_self_are_recognised_whole() {
        use super::own_proc_prefix;
        assert_eq!(
            own_proc_prefix("/proc/self/ns/net"),
            Some((false, "/ns/net"))
        );
        assert_eq!(
            own_proc_prefix("/proc/thread-self/ns/net"),
            Some((true, "/ns/net"))
        );
        assert_eq!(own_proc_prefix("/proc/selfish"), None);
        assert_eq!(own_proc_prefix("/proc/1/ns/net"), None);
    }

    #[test]
    fn only_plain_fd_paths_name_the_callers_fds() {
        assert_eq!(own_fd("/proc/self/fd/3"), Some(3));
        assert_eq!(own_fd("/proc/thread-self/fd/12"), Some(12));
        assert_eq!(own_fd("/proc/self/fd/3/x"), None);
        assert_eq!(own_fd("/proc/self/fd/"), None);
        assert_eq!(own_fd("/proc/1/fd/3"), None);
        assert_eq!(own_fd("/proc/self/fd/+3"), None);
    }
}
