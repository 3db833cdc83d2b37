//! The listenerPath handshake: one message holding the JSON
//! ContainerProcessState, with the seccomp notify fd as SCM_RIGHTS.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use oci_spec::runtime::ContainerProcessState;

/// Largest state message accepted.
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("cannot receive the handshake")]
    Recv(#[source] std::io::Error),
    #[error("the handshake carried no seccomp fd")]
    NoFd,
    #[error("the handshake carried {got} fds for {named} names")]
    FdCount { got: usize, named: usize },
    #[error("the handshake names no \"seccompFd\"")]
    NoSeccompName,
    #[error("the handshake state is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("fd {0} is not a seccomp notify fd")]
    NotSeccomp(RawFd),
    #[error("the handshake names pid {0}, which is not a process")]
    BadPid(i32),
    #[error("the handshake has no container id")]
    NoId,
}

/// A validated registration: who the fd is for.
#[derive(Debug)]
pub struct Registration {
    pub id: String,
    pub pid: i32,
    pub bundle: std::path::PathBuf,
    pub status: String,
    pub fd: OwnedFd,
}

/// Receives one handshake from a connected socket, taking ownership of
/// every fd that came with it.
pub fn receive(sock: RawFd) -> Result<(Vec<u8>, Vec<OwnedFd>), HandshakeError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let msg = nix::sys::socket::recvmsg::<()>(
        sock,
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| HandshakeError::Recv(e.into()))?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| HandshakeError::Recv(e.into()))? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: each fd just arrived over SCM_RIGHTS; this process
            // owns it and nothing else refers to it.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((buf, fds))
}

fn is_seccomp_notify(fd: &OwnedFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|t| t.to_string_lossy().contains("seccomp notify"))
        .unwrap_or(false)
}

/// Validates a received handshake and keeps the seccomp fd; the other fds
/// are closed.
pub fn decode(bytes: &[u8], mut fds: Vec<OwnedFd>) -> Result<Registration, HandshakeError> {
    let state: ContainerProcessState =
        serde_json::from_slice(bytes).map_err(HandshakeError::Json)?;
    if fds.is_empty() {
        return Err(HandshakeError::NoFd);
    }
    if fds.len() != state.fds().len() {
        return Err(HandshakeError::FdCount {
            got: fds.len(),
            named: state.fds().len(),
        });
    }
    let index = state
        .fds()
        .iter()
        .position(|n| n == "seccompFd")
        .ok_or(HandshakeError::NoSeccompName)?;
    let fd = fds.swap_remove(index);
    if !is_seccomp_notify(&fd) {
        return Err(HandshakeError::NotSeccomp(fd.as_raw_fd()));
    }
    let id = state.state().id().to_owned();
    if id.is_empty() {
        return Err(HandshakeError::NoId);
    }
    let pid = *state.pid();
    if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return Err(HandshakeError::BadPid(pid));
    }
    Ok(Registration {
        id,
        pid,
        bundle: state.state().bundle().to_path_buf(),
        status: format!("{:?}", state.state().status()).to_lowercase(),
        fd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_json(fds: &[&str], pid: i32) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "ociVersion": "1.0.2",
            "fds": fds,
            "pid": pid,
            "metadata": "warren/v1",
            "state": {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": pid, "bundle": "/b"}
        }))
        .unwrap()
    }

    fn some_fd() -> OwnedFd {
        OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            decode(b"\x00\x01garbage", vec![some_fd()]),
            Err(HandshakeError::Json(_))
        ));
    }

    #[test]
    fn a_handshake_without_fd_is_refused() {
        let me = std::process::id() as i32;
        assert!(matches!(
            decode(&state_json(&["seccompFd"], me), vec![]),
            Err(HandshakeError::NoFd)
        ));
    }

    #[test]
    fn an_fd_that_is_not_seccomp_is_refused() {
        let me = std::process::id() as i32;
        let err = decode(&state_json(&["seccompFd"], me), vec![some_fd()]).unwrap_err();
        assert!(matches!(err, HandshakeError::NotSeccomp(_)), "{err}");
    }

    #[test]
    fn names_and_fds_must_agree() {
        let me = std::process::id() as i32;
        let err = decode(&state_json(&["seccompFd", "other"], me), vec![some_fd()]).unwrap_err();
        assert!(matches!(err, HandshakeError::FdCount { got: 1, named: 2 }));
        let err = decode(&state_json(&["other"], me), vec![some_fd()]).unwrap_err();
        assert!(matches!(err, HandshakeError::NoSeccompName));
    }

    #[test]
    fn receive_takes_the_fds_over_a_socket_pair() {
        use std::os::unix::net::UnixStream;
        let (a, b) = UnixStream::pair().unwrap();
        let f = some_fd();
        let fds = [f.as_raw_fd()];
        let msg = state_json(&["seccompFd"], 1);
        nix::sys::socket::sendmsg::<()>(
            a.as_raw_fd(),
            &[std::io::IoSlice::new(&msg)],
            &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
        let (bytes, got) = receive(b.as_raw_fd()).unwrap();
        assert_eq!(bytes, msg);
        assert_eq!(got.len(), 1);
    }
}
