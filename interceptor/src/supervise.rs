//! The loop of one notify fd: receive, copy, pin, decide, check, act,
//! respond. It holds no policy; the handlers decide.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use crate::act::{self, Caller, Home};
use crate::container::Container;
use crate::handlers::mount::{Action, Call, Source, Target, decide};
use crate::memory::{self, DATA_MAX, PATH_MAX};
use crate::metrics::Metrics;
use crate::mounts;
use crate::notify::{self, Notif, Response};
use crate::sys;

/// Copies a notification's arguments out of the caller.
fn copy_call(n: &Notif) -> Result<(&'static str, Call), i32> {
    let pid = n.pid as i32;
    let a = n.data.args;
    match i64::from(n.data.nr) {
        libc::SYS_mount => {
            let source = memory::read_optional(pid, a[0], PATH_MAX).map_err(|e| e.errno())?;
            let target = memory::read_cstring(pid, a[1], PATH_MAX).map_err(|e| e.errno())?;
            let fstype = memory::read_optional(pid, a[2], 256).map_err(|e| e.errno())?;
            // Mount data is binary for some filesystems: unreadable data is
            // passed on as absent only where it is not needed.
            let data = memory::read_optional(pid, a[4], DATA_MAX).ok().flatten();
            Ok((
                "mount",
                Call::Mount {
                    source,
                    target,
                    fstype,
                    flags: crate::handlers::mount::kernel_flags(a[3]),
                    data,
                },
            ))
        }
        libc::SYS_umount2 => {
            let target = memory::read_cstring(pid, a[0], PATH_MAX).map_err(|e| e.errno())?;
            Ok((
                "umount2",
                Call::Umount {
                    target,
                    flags: a[1],
                },
            ))
        }
        _ => Err(libc::ENOSYS),
    }
}

/// A bind's or a move's source, resolved once: its fd and the mount it is
/// on. A source outside the caller's mount table (a namespace file) is on
/// no mount of the container's.
fn source_of(
    caller: &Caller,
    call: &Call,
    table: &[mounts::MountEntry],
) -> Option<(OwnedFd, Source)> {
    use crate::handlers::mount::{MS_BIND, MS_MOVE};
    let Call::Mount {
        source: Some(source),
        flags,
        ..
    } = call
    else {
        return None;
    };
    if flags & (MS_BIND | MS_MOVE) == 0 || source.is_empty() {
        return None;
    }
    let fd = caller
        .resolve_source(source)
        .map_err(|e| tracing::debug!(source, error = %e, "source does not resolve"))
        .ok()?;
    let (id, is_root) = sys::mount_of(fd.as_fd()).ok()?;
    let entry = table.iter().find(|m| m.id == id);
    let src = Source {
        id,
        identity: entry.map(|e| e.identity()).unwrap_or_default(),
        is_mount_root: is_root,
        pseudo: entry.is_some_and(|e| e.fstype == "proc" || e.fstype == "sysfs"),
    };
    Some((fd, src))
}

/// The resolved target (and, for a bind or move, source) of a call.
struct Resolved {
    target: OwnedFd,
    source: Option<OwnedFd>,
}

fn target_of(caller: &Caller, path: &str, call: &Call) -> Option<(Resolved, Target)> {
    let fd = caller
        .resolve(path)
        .map_err(|e| tracing::debug!(path, error = %e, "target does not resolve"))
        .ok()?;
    let (id, is_root) = sys::mount_of(fd.as_fd())
        .map_err(|e| tracing::debug!(path, error = %e, "statx of the target failed"))
        .ok()?;
    let table = mounts::read(caller.pid).ok()?;
    let Some(entry) = table.iter().find(|m| m.id == id) else {
        tracing::debug!(
            path,
            mount_id = id,
            "the target's mount is not in the caller's table"
        );
        return None;
    };
    let (source_fd, source) = match source_of(caller, call, &table) {
        Some((f, s)) => (Some(f), Some(s)),
        None => (None, None),
    };
    Some((
        Resolved {
            target: fd,
            source: source_fd,
        },
        Target {
            id,
            identity: entry.identity(),
            is_mount_root: is_root,
            source,
        },
    ))
}

/// Handles one notification and returns the response, with the action's
/// label for metrics. None: the caller is gone, nothing to answer.
fn handle(
    fd: std::os::fd::BorrowedFd<'_>,
    home: &Home,
    container: &Container,
    n: &Notif,
) -> Option<(&'static str, &'static str, Response)> {
    if matches!(i64::from(n.data.nr), libc::SYS_mknod | libc::SYS_mknodat) {
        return crate::mknod::handle(fd, n);
    }
    // 1. Copy the arguments out.
    let (syscall, call) = match copy_call(n) {
        Ok(c) => c,
        Err(errno) => return Some(("other", "error", Response::Errno(errno))),
    };
    let path = match &call {
        Call::Mount { target, .. } | Call::Umount { target, .. } => target.clone(),
    };
    // A caller that is still there gets an error, never silence: an
    // unanswered notification would block it for good.
    let failed = |e: std::io::Error| {
        notify::id_valid(fd, n.id).then(|| {
            tracing::debug!(pid = n.pid, error = %e, "cannot open the caller's handles");
            (
                syscall,
                "error",
                Response::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })
    };
    // 2. Pin the caller: the calling thread, or its process.
    let _pin = match sys::pidfd_open_task(n.pid as i32) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    let mut caller = match Caller::open(n.pid as i32, &path) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let target = target_of(&caller, &path, &call);
    // 3. Decide. Without a target every decision is made on the call
    // alone: the caller's capabilities, its namespace and the container's
    // mounts are not read.
    let facts = if target.is_some() {
        container.facts(caller.is_admin(), crate::container::mnt_ns_of(caller.pid))
    } else {
        crate::handlers::mount::Facts::default()
    };
    let action = decide(&call, target.as_ref().map(|(_, t)| t), &facts);
    tracing::debug!(container_id = %container.id, pid = n.pid, notif_id = n.id, syscall, ?call, ?action, "decided");
    // 4. Before acting: everything read through /proc/PID, the caller's
    // namespaces included, belonged to the caller only if its notification
    // is still pending now. A denial or a CONTINUE acts on nothing: if the
    // caller is gone, the kernel refuses the answer itself.
    if !matches!(action, Action::Continue | Action::Deny(_)) {
        if let Err(e) = caller.open_namespaces() {
            return failed(e);
        }
        if !notify::id_valid(fd, n.id) {
            return None;
        }
    }
    // 5. Act.
    let result = match (&action, &call, target) {
        (Action::Continue, ..) => return Some((syscall, "continued", Response::Continue)),
        (Action::Deny(e), ..) => return Some((syscall, "denied", Response::Errno(*e))),
        (Action::Unmount { detach }, Call::Umount { flags, .. }, Some((r, _))) => {
            act::unmount(home, &caller, r.target, *flags, *detach)
        }
        (
            Action::Bind { recursive },
            _,
            Some((
                Resolved {
                    target,
                    source: Some(source),
                },
                _,
            )),
        ) => act::bind(home, &caller, source.as_fd(), target.as_fd(), *recursive),
        (
            Action::Move,
            _,
            Some((
                Resolved {
                    target,
                    source: Some(source),
                },
                _,
            )),
        ) => act::move_to(home, &caller, source.as_fd(), target.as_fd()),
        (Action::BindRemount, Call::Mount { flags, data, .. }, Some((r, _))) => {
            act::bind_remount(home, &caller, r.target.as_fd(), *flags, data.as_deref())
        }
        (Action::SuperblockRemount, Call::Mount { flags, data, .. }, Some((r, _))) => container
            .with_helper(|h| {
                h.remount(
                    caller.ns()?.mnt.as_fd(),
                    r.target.as_fd(),
                    *flags,
                    data.as_deref(),
                )
            }),
        (Action::EmulatePseudo(kind), Call::Mount { flags, .. }, Some((r, _))) => {
            act::mount_pseudo(home, &caller, container, *kind, r.target.as_fd(), *flags)
        }
        _ => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
    };
    Some(match result {
        Ok(()) => (syscall, "emulated", Response::Success(0)),
        Err(e) => (
            syscall,
            "error",
            Response::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        ),
    })
}

/// Serves one notify fd until every process holding its filter is gone.
pub fn run(fd: OwnedFd, container: Arc<Container>, metrics: Arc<Metrics>) {
    let span =
        tracing::info_span!("notify", container_id = %container.id, pid = container.init_pid);
    let _enter = span.enter();
    if let Err(e) = notify::set_sync_wake_up(fd.as_fd()) {
        tracing::warn!(%e, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is unavailable");
    }
    let home = match Home::new() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(%e, "cannot prepare the acting thread");
            return;
        }
    };
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!(%e, "poll on the notify fd failed");
                return;
            }
        }
        let revents = pfd[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if revents.intersects(nix::poll::PollFlags::POLLHUP | nix::poll::PollFlags::POLLERR)
            && !revents.contains(nix::poll::PollFlags::POLLIN)
        {
            tracing::debug!("every process of the filter is gone");
            return;
        }
        let n = match notify::recv(fd.as_fd()) {
            Ok(n) => n,
            // The caller died between poll and recv.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOENT)
                    || e.raw_os_error() == Some(libc::EINTR) =>
            {
                continue;
            }
            Err(e) => {
                tracing::error!(%e, "cannot receive a notification");
                return;
            }
        };
        let start = Instant::now();
        let Some((syscall, label, response)) = handle(fd.as_fd(), &home, &container, &n) else {
            continue;
        };
        if let Err(e) = notify::respond(fd.as_fd(), n.id, response) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                tracing::warn!(%e, notif_id = n.id, "cannot respond");
            }
        }
        metrics.record(syscall, label, start.elapsed().as_secs_f64());
    }
}
