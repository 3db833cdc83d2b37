//! Waiting for a foreground process the way runc does: every signal warren-runc
//! receives is forwarded to it, and its exit status becomes ours.

use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::SigSet;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::RuntimeError;

/// Maps a wait status to a shell-style exit code (128+signal when killed).
fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every child that has exited; returns `pid`'s exit code once it has.
fn reap(pid: Pid) -> Result<Option<i32>, RuntimeError> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(status) if status.pid() == Some(pid) => {
                if let Some(code) = exit_code(status) {
                    return Ok(Some(code));
                }
            }
            Ok(_) => {}
            // Nothing left to wait for: the process is not our child.
            Err(nix::errno::Errno::ECHILD) => {
                return Err(RuntimeError::io(
                    "lost track of process",
                    pid.to_string(),
                    std::io::Error::from_raw_os_error(libc::ECHILD),
                ));
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(RuntimeError::io(
                    "cannot wait for",
                    pid.to_string(),
                    std::io::Error::from(e),
                ));
            }
        }
    }
}

/// Waits for `pid`, a child of this process, forwarding signals to it.
pub fn forward_and_wait(pid: Pid) -> Result<i32, RuntimeError> {
    let all = SigSet::all();
    all.thread_block()
        .map_err(|e| RuntimeError::io("cannot block signals for", pid.to_string(), e.into()))?;
    // The process may have exited before the signals were blocked.
    if let Some(code) = reap(pid)? {
        return Ok(code);
    }
    loop {
        let sig = all.wait().map_err(|e| {
            RuntimeError::io("cannot wait for signals of", pid.to_string(), e.into())
        })?;
        match sig {
            Signal::SIGCHLD => {
                if let Some(code) = reap(pid)? {
                    return Ok(code);
                }
            }
            Signal::SIGWINCH | Signal::SIGURG => {}
            other => {
                if let Err(err) = kill(pid, other) {
                    tracing::warn!(pid = pid.as_raw(), signal = %other, %err, "cannot forward signal");
                }
            }
        }
    }
}
