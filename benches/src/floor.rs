//! The floor: a bare seccomp user-notification round trip on this kernel.
//!
//! A caller thread installs a filter that sends `getppid` to a listener
//! and makes the call in a loop; a supervisor thread answers each one at
//! once. Nothing else runs, so this is the least any interceptor can cost.
//! The supervisor waits in one of three ways (a blocking RECV, poll then
//! RECV as warren-interceptor does, epoll then RECV), with or without
//! SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use warren_interceptor::notify::{self, Response};

/// How the supervisor waits for a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Blocking,
    Poll,
    Epoll,
}

impl Wait {
    pub fn name(self) -> &'static str {
        match self {
            Wait::Blocking => "blocking RECV",
            Wait::Poll => "poll + RECV",
            Wait::Epoll => "epoll + RECV",
        }
    }
}

const ANSWER: i64 = 4242;

/// Installs, on the calling thread only, a filter that notifies on getppid.
fn install_listener() -> Result<OwnedFd> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let filter = [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // seccomp_data.nr
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0x7fc0_0000, // SECCOMP_RET_USER_NOTIF
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000, // SECCOMP_RET_ALLOW
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with constant arguments; affects this thread only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("PR_SET_NO_NEW_PRIVS");
    }
    // SAFETY: prog and filter outlive the call; no TSYNC flag, so only this
    // thread is filtered.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1,      // SECCOMP_SET_MODE_FILTER
            1 << 3, // SECCOMP_FILTER_FLAG_NEW_LISTENER
            &prog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("seccomp NEW_LISTENER");
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn supervise(fd: OwnedFd, wait: Wait, sync: bool, n: usize) -> Result<()> {
    if sync {
        notify::set_sync_wake_up(fd.as_fd()).context("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP")?;
    }
    let epoll = if wait == Wait::Epoll {
        let ep = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC)?;
        ep.add(
            fd.as_fd(),
            nix::sys::epoll::EpollEvent::new(nix::sys::epoll::EpollFlags::EPOLLIN, 0),
        )?;
        Some(ep)
    } else {
        None
    };
    for _ in 0..n {
        match wait {
            Wait::Blocking => {}
            Wait::Poll => {
                let mut p = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut p, nix::poll::PollTimeout::NONE)?;
            }
            Wait::Epoll => {
                let mut events = [nix::sys::epoll::EpollEvent::empty()];
                if let Some(ep) = &epoll {
                    ep.wait(&mut events, nix::sys::epoll::EpollTimeout::NONE)?;
                }
            }
        }
        let n = notify::recv(fd.as_fd()).context("RECV")?;
        notify::respond(fd.as_fd(), n.id, Response::Success(ANSWER)).context("SEND")?;
    }
    Ok(())
}

/// `n` round trips; each one's nanoseconds, as the caller sees them.
pub fn round_trips(wait: Wait, sync: bool, n: usize) -> Result<Vec<f64>> {
    let (fd_tx, fd_rx) = mpsc::channel::<OwnedFd>();
    let supervisor = std::thread::spawn(move || -> Result<()> {
        let fd = fd_rx.recv().context("the caller sent no listener")?;
        supervise(fd, wait, sync, n)
    });
    let caller = std::thread::spawn(move || -> Result<Vec<f64>> {
        let fd = install_listener()?;
        fd_tx.send(fd).context("the supervisor is gone")?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            // SAFETY: getppid takes no arguments; the filter sends it to
            // the supervisor, which answers ANSWER.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            samples.push(t.elapsed().as_nanos() as f64);
            if r != ANSWER {
                bail!("the notified getppid returned {r}, not the supervisor's answer");
            }
        }
        Ok(samples)
    });
    let samples = caller
        .join()
        .map_err(|_| anyhow::anyhow!("the caller thread panicked"))??;
    supervisor
        .join()
        .map_err(|_| anyhow::anyhow!("the supervisor thread panicked"))??;
    Ok(samples)
}
