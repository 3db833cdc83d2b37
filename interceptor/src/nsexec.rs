//! Long-lived helper processes that act with a container's credentials.
//!
//! Some calls must be made as the container's root, not as host root: a
//! superblock remount is allowed only to whoever holds CAP_SYS_ADMIN in the
//! user namespace that owns the filesystem, and host root always would.
//! For those, the interceptor starts one helper per container (a re-exec of
//! its own sealed binary, never a fork of the threaded daemon, and never one
//! per call). The helper joins the container's user namespace as its root
//! and serves requests over a socket pair: the caller's mount namespace and
//! the resolved target come as fds, so the helper resolves no path the
//! container gave.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::sys;

/// The fd number the helper finds the container's user namespace at.
const USERNS_FD: RawFd = 3;

/// A request: remount the target with these flags and data.
const OP_REMOUNT: u8 = 1;

#[derive(Debug)]
pub struct Helper {
    child: Child,
    sock: UnixStream,
}

impl Helper {
    /// Starts a helper in the user namespace `userns`.
    pub fn start(userns: BorrowedFd<'_>) -> std::io::Result<Helper> {
        let (ours, theirs) = UnixStream::pair()?;
        let exe = "/proc/self/exe";
        let mut cmd = Command::new(exe);
        cmd.arg("helper")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null());
        let ns = userns.as_raw_fd();
        // SAFETY: dup2 and close_range are async-signal-safe; ns stays open
        // in the parent until spawn returns.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::dup2(ns, USERNS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The helper keeps stdio and the user namespace, nothing
                // else the interceptor holds or inherited.
                if libc::syscall(libc::SYS_close_range, USERNS_FD + 1, u32::MAX, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Helper { child, sock: ours })
    }

    /// Asks the helper to remount `target` in mount namespace `mnt`.
    pub fn remount(
        &self,
        mnt: BorrowedFd<'_>,
        target: BorrowedFd<'_>,
        flags: u64,
        data: Option<&str>,
    ) -> std::io::Result<()> {
        let mut msg = vec![OP_REMOUNT];
        msg.extend_from_slice(&flags.to_le_bytes());
        msg.extend_from_slice(data.unwrap_or("").as_bytes());
        let fds = [mnt.as_raw_fd(), target.as_raw_fd()];
        sendmsg::<()>(
            self.sock.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(std::io::Error::from)?;
        let mut reply = [0u8; 4];
        let n =
            nix::unistd::read(self.sock.as_raw_fd(), &mut reply).map_err(std::io::Error::from)?;
        if n != 4 {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        match i32::from_le_bytes(reply) {
            0 => Ok(()),
            e => Err(std::io::Error::from_raw_os_error(e)),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_one(sock: &UnixStream, home_proc: BorrowedFd<'_>) -> std::io::Result<bool> {
    use std::io::Write;
    let sock_fd = sock.as_raw_fd();
    let mut buf = vec![0u8; 1 + 8 + 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(
        sock_fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let n = msg.bytes;
    if n == 0 {
        return Ok(false);
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: each fd arrived over SCM_RIGHTS and is owned here only.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let result = if n < 9 || buf[0] != OP_REMOUNT || fds.len() != 2 {
        Err(std::io::Error::from_raw_os_error(libc::EINVAL))
    } else {
        let mut f = [0u8; 8];
        f.copy_from_slice(&buf[1..9]);
        let flags = u64::from_le_bytes(f);
        let data = std::str::from_utf8(&buf[9..n])
            .ok()
            .filter(|d| !d.is_empty());
        sys::setns(fds[0].as_fd(), libc::CLONE_NEWNS)
            .and_then(|()| sys::fchdir(home_proc))
            .and_then(|()| {
                sys::remount_fd(
                    fds[1].as_fd(),
                    sys::FdOwner::Process,
                    flags as libc::c_ulong,
                    data,
                )
            })
    };
    let code = match result {
        Ok(()) => 0i32,
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    };
    let mut w = sock;
    w.write_all(&code.to_le_bytes())?;
    Ok(true)
}

/// The helper's main: join the user namespace at fd 3 as its root, then
/// serve requests on stdin until the daemon closes it.
pub fn helper_main() -> std::process::ExitCode {
    let run = || -> std::io::Result<()> {
        // The host's /proc, for naming fds after entering other mount
        // namespaces (thread-self/fd/N, relative to it).
        let home_proc = sys::open_path("/proc", libc::O_PATH | libc::O_DIRECTORY)?;
        // SAFETY: fd 3 was placed by the daemon and is owned by this process.
        let userns = unsafe { OwnedFd::from_raw_fd(USERNS_FD) };
        sys::setns(userns.as_fd(), libc::CLONE_NEWUSER)?;
        drop(userns);
        sys::become_root()?;
        // SAFETY: stdin is the request socket the daemon passed; this
        // process owns it.
        let sock = unsafe { UnixStream::from_raw_fd(0) };
        while serve_one(&sock, home_proc.as_fd())? {}
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-interceptor helper: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
