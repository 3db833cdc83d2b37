//! mknod and mknodat of character devices (the filter traps no other kind).
//!
//! The kernel refuses device nodes in a user namespace, yet engines inside
//! make a few while they build images or set up a root (debootstrap,
//! `RUN mknod`, runtimes' /dev). Those few are safe to have: they reach no
//! host hardware. The interceptor makes exactly those, for the caller and
//! as the caller (its filesystem IDs), in a directory resolved inside the
//! caller's root; overlay whiteouts (0:0) are the kernel's to allow; every
//! other device is refused, as the kernel would.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::memory::{self, PATH_MAX};
use crate::notify::{self, Notif, Response};
use crate::sys;

const CAP_MKNOD: u32 = 27;

/// The character devices a container may make: null, zero, full, random,
/// urandom, tty (the caller's own terminal) and ptmx (the devpts instance
/// beside the node). Not 5:1: a console node opens the host's console, and
/// a container's /dev/console is its own pty, bound by the runtime.
pub const SAFE_DEVICES: &[(u32, u32)] = &[(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)];

/// A trapped mknod, its arguments copied out of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mknod {
    /// The directory fd of mknodat; None for AT_FDCWD (and for mknod).
    pub dirfd: Option<i32>,
    pub path: String,
    pub mode: u32,
    pub major: u32,
    pub minor: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An overlay whiteout: the kernel allows it in a user namespace.
    Continue,
    /// One of the safe devices: made by the interceptor.
    Make,
    Deny(i32),
}

/// Pure: what to do with a character-device mknod.
pub fn decide(call: &Mknod, caller_has_mknod: bool) -> Decision {
    if (call.major, call.minor) == (0, 0) {
        return Decision::Continue;
    }
    if !SAFE_DEVICES.contains(&(call.major, call.minor)) || !caller_has_mknod {
        return Decision::Deny(libc::EPERM);
    }
    Decision::Make
}

/// The directory part and the name of a path; the name must be a plain
/// entry.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let trimmed = path.trim_end_matches('/');
    let (dir, name) = match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (".", trimmed),
    };
    (!name.is_empty() && name != "." && name != ".." && trimmed.len() == path.len())
        .then_some((dir, name))
}

fn copy(n: &Notif) -> Result<Mknod, i32> {
    let a = n.data.args;
    let (dirfd, path_arg, mode, dev) = if i64::from(n.data.nr) == libc::SYS_mknodat {
        let fd = a[0] as i32;
        ((fd != libc::AT_FDCWD).then_some(fd), a[1], a[2], a[3])
    } else {
        (None, a[0], a[1], a[2])
    };
    let path = memory::read_cstring(n.pid as i32, path_arg, PATH_MAX).map_err(|e| e.errno())?;
    let dev = dev as libc::dev_t;
    Ok(Mknod {
        dirfd,
        path,
        mode: mode as u32,
        major: libc::major(dev),
        minor: libc::minor(dev),
    })
}

/// The caller's filesystem uid and gid (host IDs) and umask, from its
/// status.
fn credentials(pid: i32) -> std::io::Result<(u32, u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |key: &str, index: usize| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().nth(index).map(str::to_owned))
    };
    let bad = || std::io::Error::from_raw_os_error(libc::ESRCH);
    let fsuid = field("Uid:", 3)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let fsgid = field("Gid:", 3)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)?;
    let umask = field("Umask:", 0)
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022);
    Ok((fsuid, fsgid, umask))
}

/// The directory the new node goes in, resolved inside the caller's root
/// (or beneath its cwd or directory fd).
fn parent(pid: i32, call: &Mknod, dir: &str) -> std::io::Result<OwnedFd> {
    let base = if dir.starts_with('/') {
        format!("/proc/{pid}/root")
    } else if let Some(fd) = call.dirfd {
        format!("/proc/{pid}/fd/{fd}")
    } else {
        format!("/proc/{pid}/cwd")
    };
    let base = sys::open_path(&base, libc::O_PATH | libc::O_DIRECTORY)?;
    sys::open_in_root(base.as_fd(), dir)
}

/// Handles one trapped mknod; None when the caller is gone.
pub fn handle(fd: BorrowedFd<'_>, n: &Notif) -> Option<(&'static str, &'static str, Response)> {
    let syscall = if i64::from(n.data.nr) == libc::SYS_mknodat {
        "mknodat"
    } else {
        "mknod"
    };
    let call = match copy(n) {
        Ok(c) => c,
        Err(errno) => return Some((syscall, "error", Response::Errno(errno))),
    };
    let pid = n.pid as i32;
    let failed = |e: std::io::Error| {
        notify::id_valid(fd, n.id).then(|| {
            (
                syscall,
                "error",
                Response::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })
    };
    let _pin = match sys::pidfd_open_task(pid) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let has_mknod = sys::effective_caps(pid).is_ok_and(|c| c & (1 << CAP_MKNOD) != 0);
    let decision = decide(&call, has_mknod);
    tracing::debug!(pid, notif_id = n.id, ?call, ?decision, "decided");
    match decision {
        Decision::Continue => return Some((syscall, "continued", Response::Continue)),
        Decision::Deny(e) => return Some((syscall, "denied", Response::Errno(e))),
        Decision::Make => {}
    }
    let Some((dir, name)) = split(&call.path) else {
        return Some((syscall, "denied", Response::Errno(libc::EINVAL)));
    };
    let dir_fd = match parent(pid, &call, dir) {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let (fsuid, fsgid, umask) = match credentials(pid) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    // Everything read through /proc/PID was the caller's only if its
    // notification is still pending.
    if !notify::id_valid(fd, n.id) {
        return None;
    }
    let mode = libc::S_IFCHR | (call.mode & 0o7777 & !umask);
    let dev = libc::makedev(call.major, call.minor);
    Some(
        match sys::mknod_as(dir_fd.as_fd(), name, mode, dev, fsuid, fsgid) {
            Ok(()) => (syscall, "emulated", Response::Success(0)),
            Err(e) => (
                syscall,
                "error",
                Response::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(major: u32, minor: u32) -> Mknod {
        Mknod {
            dirfd: None,
            path: "/dev/x".into(),
            mode: 0o666,
            major,
            minor,
        }
    }

    #[test]
    fn only_the_safe_devices_are_made() {
        assert_eq!(decide(&call(0, 0), false), Decision::Continue);
        assert_eq!(decide(&call(1, 3), true), Decision::Make);
        assert_eq!(decide(&call(5, 2), true), Decision::Make);
        assert_eq!(decide(&call(1, 3), false), Decision::Deny(libc::EPERM));
        // /dev/mem, /dev/kmsg, a disk's char device, a tty other than 5:0.
        for (ma, mi) in [(1, 1), (1, 11), (21, 0), (4, 1)] {
            assert_eq!(decide(&call(ma, mi), true), Decision::Deny(libc::EPERM));
        }
    }

    #[test]
    fn paths_split_into_a_directory_and_a_plain_name() {
        assert_eq!(split("/dev/null"), Some(("/dev", "null")));
        assert_eq!(split("/null"), Some(("/", "null")));
        assert_eq!(split("null"), Some((".", "null")));
        assert_eq!(split("a/b/c"), Some(("a/b", "c")));
        assert_eq!(split("/dev/.."), None);
        assert_eq!(split("/dev/"), None);
        assert_eq!(split(""), None);
    }
}
