//! The seccomp notify fd of an exec'd process, from the process to the
//! listener.
//!
//! The exec'd process loads the container's profile itself (see
//! [`crate::join`]) while it is still warren's code, inside the container's
//! namespaces where the listener's socket is out of reach. It sends the
//! notify fd over a socket pair to warren-runc, whose thread sends the
//! listenerPath handshake (status "running") with the process's host pid
//! (the kernel attaches it to the message as SCM_CREDENTIALS), waits for
//! warren's interceptor to confirm that it holds the fd, and only then lets
//! the process go on to execve. Anything that fails on the way fails the
//! exec: the process gets no go-ahead and exits before execve, so a process
//! of a system container never runs with a filter nobody answers.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// How long warren-runc waits for the exec'd process to load its filter,
/// and for the listener to confirm it.
const WAIT: Duration = Duration::from_secs(10);

/// What the process sends: a notify fd follows, or the profile has none.
const WITH_FD: u8 = b's';
const WITHOUT_FD: u8 = b'n';
/// What warren-runc answers once the listener holds the fd.
const GO: u8 = b'1';

#[derive(Debug, thiserror::Error)]
pub enum ExecListenerError {
    #[error("cannot create the socket pair for the exec'd process")]
    Pair(#[source] std::io::Error),
    #[error("the exec'd process did not report its seccomp filter")]
    Receive(#[source] std::io::Error),
    #[error("the exec'd process reported a seccomp notify fd, but its profile has no listenerPath")]
    NoListener,
    #[error("cannot hand the exec'd process's notify fd to the listener at {path}")]
    Send {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the listener at {0} did not confirm the exec'd process's registration")]
    NotConfirmed(PathBuf),
    #[error("cannot let the exec'd process go on")]
    Go(#[source] std::io::Error),
}

/// Child side: sends `notify` (or word that there is none) to warren-runc
/// over `channel`, waits for its go-ahead, and closes both fds.
pub fn hand_over(channel: RawFd, notify: Option<RawFd>) -> std::io::Result<()> {
    let word = [if notify.is_some() {
        WITH_FD
    } else {
        WITHOUT_FD
    }];
    let fds: Vec<RawFd> = notify.into_iter().collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        channel,
        &[IoSlice::new(&word)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )?;
    let mut answer = [0u8; 1];
    let got = nix::unistd::read(channel, &mut answer);
    for fd in fds.into_iter().chain([channel]) {
        // SAFETY: both fds are this process's own and used nowhere after.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    match got {
        Ok(1) if answer[0] == GO => Ok(()),
        Ok(_) => Err(std::io::Error::other("warren-runc ended the exec")),
        Err(e) => Err(e.into()),
    }
}

/// Where and as what the exec'd process registers.
pub struct Registration {
    pub id: String,
    pub bundle: PathBuf,
    pub listener: Option<PathBuf>,
    pub metadata: Option<String>,
    pub annotations: Option<std::collections::HashMap<String, String>>,
}

/// warren-runc's side: a thread that serves the exec'd process while
/// libcontainer waits for that process to reach execve, and the end of the
/// socket pair the process inherits.
pub struct Channel {
    theirs: UnixStream,
    server: std::thread::JoinHandle<Result<(), ExecListenerError>>,
}

impl Channel {
    pub fn start(reg: Registration) -> Result<Channel, ExecListenerError> {
        let (ours, theirs) = UnixStream::pair().map_err(ExecListenerError::Pair)?;
        ours.set_read_timeout(Some(WAIT))
            .map_err(ExecListenerError::Pair)?;
        // The kernel attaches the sender's pid, as this namespace sees it.
        nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::PassCred, &true)
            .map_err(|e| ExecListenerError::Pair(e.into()))?;
        let server = std::thread::Builder::new()
            .name("exec-listener".into())
            .spawn(move || serve(ours, &reg))
            .map_err(ExecListenerError::Pair)?;
        Ok(Channel { theirs, server })
    }

    /// The fd the exec'd process uses (inherited across libcontainer's
    /// forks; libcontainer marks it close-on-exec, and the process closes
    /// it before execve).
    pub fn theirs(&self) -> RawFd {
        self.theirs.as_raw_fd()
    }

    /// Once libcontainer is done (the process reached execve, or failed):
    /// what the server thread saw.
    pub fn finish(self) -> Result<(), ExecListenerError> {
        // Only the process holds its end now: if it died, the read ends.
        drop(self.theirs);
        self.server.join().unwrap_or_else(|_| {
            Err(ExecListenerError::Receive(std::io::Error::other(
                "panicked",
            )))
        })
    }
}

/// Receives what the process reports, registers its notify fd with the
/// listener as the process (by the pid the kernel attached), and lets it go
/// on.
fn serve(mut ours: UnixStream, reg: &Registration) -> Result<(), ExecListenerError> {
    let mut word = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut word)];
    let mut space = nix::cmsg_space!(libc::ucred, [RawFd; 1]);
    let msg = recvmsg::<()>(
        ours.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ExecListenerError::Receive(e.into()))?;
    let mut fds = Vec::new();
    let mut pid = None;
    for c in msg
        .cmsgs()
        .map_err(|e| ExecListenerError::Receive(e.into()))?
    {
        match c {
            ControlMessageOwned::ScmRights(raw) => {
                // SAFETY: each fd just arrived over SCM_RIGHTS; this process
                // owns it and nothing else refers to it.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
            ControlMessageOwned::ScmCredentials(creds) => pid = Some(creds.pid()),
            _ => {}
        }
    }
    if msg.bytes != 1 {
        return Err(ExecListenerError::Receive(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    match (word[0], fds.pop(), pid) {
        // A profile with a listener must come back with its fd: a process
        // that says otherwise did not load the filter.
        (WITHOUT_FD, None, _) if reg.listener.is_none() => {}
        (WITH_FD, Some(fd), Some(pid)) if pid > 0 => register(&fd, pid, reg)?,
        _ => {
            return Err(ExecListenerError::Receive(std::io::Error::other(
                "unexpected message",
            )));
        }
    }
    ours.write_all(&[GO]).map_err(ExecListenerError::Go)
}

/// Sends the listenerPath handshake for an exec'd process. warren's
/// interceptor answers one byte once it receives on the fd; another
/// listener is trusted to, as runc trusts it.
fn register(fd: &OwnedFd, pid: i32, reg: &Registration) -> Result<(), ExecListenerError> {
    let path = reg
        .listener
        .as_deref()
        .ok_or(ExecListenerError::NoListener)?;
    let send = |source| ExecListenerError::Send {
        path: path.to_owned(),
        source,
    };
    let state = serde_json::json!({
        "ociVersion": "1.0.2",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": reg.metadata.clone().unwrap_or_default(),
        "state": {
            "ociVersion": "1.0.2",
            "id": reg.id,
            "status": "running",
            "pid": pid,
            "bundle": reg.bundle,
            "annotations": reg.annotations.clone().unwrap_or_default(),
        }
    });
    let bytes = serde_json::to_vec(&state).map_err(|e| send(std::io::Error::other(e)))?;
    let mut conn = UnixStream::connect(path).map_err(send)?;
    conn.set_read_timeout(Some(WAIT)).map_err(send)?;
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        conn.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| send(e.into()))?;
    if reg.metadata.as_deref() != Some(crate::spec::LISTENER_METADATA) {
        return Ok(());
    }
    let mut answer = [0u8; 1];
    match conn.read_exact(&mut answer) {
        Ok(()) if answer[0] == GO => Ok(()),
        _ => Err(ExecListenerError::NotConfirmed(path.to_owned())),
    }
}
