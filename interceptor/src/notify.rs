//! The seccomp user-notification ioctls, typed.

use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const IOCTL_RECV: libc::c_ulong = 0xc050_2100;
const IOCTL_SEND: libc::c_ulong = 0xc018_2101;
const IOCTL_ID_VALID: libc::c_ulong = 0x4008_2102;
const IOCTL_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const FLAG_CONTINUE: u32 = 1;
const FD_SYNC_WAKE_UP: u64 = 1;

/// How a notification is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Let the kernel run the call as the caller made it.
    Continue,
    /// Return `val` as the call's result (success).
    Success(i64),
    /// Fail the call with this errno.
    Errno(i32),
}

fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Asks the kernel to wake the supervisor on the CPU of the trapped task
/// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP): a cross-CPU wake-up per call costs
/// a vCPU idle exit here.
pub fn set_sync_wake_up(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let flags: u64 = FD_SYNC_WAKE_UP;
    // SAFETY: fd is an open notify fd; the ioctl reads the u64 that
    // `flags` holds and outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_SET_FLAGS, flags) };
    if rc < 0 { Err(last()) } else { Ok(()) }
}

/// Receives one notification, blocking.
pub fn recv(fd: BorrowedFd<'_>) -> std::io::Result<Notif> {
    let mut notif = Notif::default();
    // SAFETY: notif is a zeroed struct of the kernel's layout that the
    // kernel fills; it outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_RECV, &mut notif as *mut Notif) };
    if rc < 0 { Err(last()) } else { Ok(notif) }
}

/// Whether notification `id` is still pending: its caller has not died or
/// been interrupted. Checked after reading the caller's memory and before
/// acting on it.
pub fn id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads the u64 at the pointer, which outlives the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_ID_VALID, &id as *const u64) == 0 }
}

/// Answers notification `id`.
pub fn respond(fd: BorrowedFd<'_>, id: u64, response: Response) -> std::io::Result<()> {
    let mut resp = NotifResp {
        id,
        ..NotifResp::default()
    };
    match response {
        Response::Continue => resp.flags = FLAG_CONTINUE,
        Response::Success(v) => resp.val = v,
        Response::Errno(e) => resp.error = -e,
    }
    // SAFETY: resp has the kernel's layout and outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), IOCTL_SEND, &mut resp as *mut NotifResp) };
    if rc < 0 { Err(last()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<SeccompData>(), 64);
        assert_eq!(std::mem::size_of::<Notif>(), 80);
        assert_eq!(std::mem::size_of::<NotifResp>(), 24);
        // _IOWR('!', 0, struct seccomp_notif)
        assert_eq!(IOCTL_RECV, (3 << 30) | (80 << 16) | (0x21 << 8));
        assert_eq!(IOCTL_SEND, (3 << 30) | (24 << 16) | (0x21 << 8) | 1);
    }
}
