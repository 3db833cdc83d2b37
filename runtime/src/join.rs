//! The last steps of an exec'd process, which libcontainer 0.7 leaves out.
//!
//! libcontainer joins an exec'd process to the container's ipc, uts, net,
//! pid, mount, cgroup and time namespaces, but not to its user namespace (the
//! process would run as host root), and it drops the container's seccomp
//! profile from an exec'd process altogether. warren-runc therefore hands
//! libcontainer the process as root with every capability, and warren's
//! executor finishes the job as its last step before execve:
//! 1. it enters the container's user namespace (through an fd opened by
//!    warren-runc before forking), where it holds every capability;
//! 2. it loads the container's seccomp profile, as runc does for exec, and
//!    passes the notify fd, when the profile has a listener, to warren-runc
//!    over an inherited socket, then waits until warren-runc says the
//!    listener holds it (see [`crate::exec_listener`]);
//! 3. it takes the process's real user, groups and capabilities.
//!
//! So no instruction of the exec'd program runs without the filter, and a
//! non-root exec user (`exec -u 1000`) joins the user namespace while still
//! privileged.

use std::os::fd::RawFd;

use oci_spec::runtime::{Capability, LinuxSeccomp, Process};

use crate::features::KNOWN_CAPABILITIES;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("cannot join the container's user namespace")]
    SetNs(#[source] std::io::Error),
    #[error("cannot set user {uid}:{gid} inside the container")]
    SetId {
        uid: u32,
        gid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set the process capabilities inside the container")]
    Caps(#[source] std::io::Error),
    #[error("cannot load the container's seccomp profile")]
    Seccomp(#[source] libcontainer::seccomp::SeccompError),
    #[error("cannot hand the seccomp notify fd to warren-runc")]
    Listener(#[source] std::io::Error),
}

/// What the executor of an exec'd process finishes (see the module doc).
#[derive(Clone)]
pub struct ExecPlan {
    /// The container's user namespace, when it has one of its own.
    pub userns: Option<RawFd>,
    /// The container's seccomp profile, as its init got it.
    pub seccomp: Option<LinuxSeccomp>,
    /// This end of warren-runc's socket pair (see [`crate::exec_listener`]).
    pub channel: RawFd,
    /// The process as the client asked for it: user, groups, capabilities.
    pub process: Process,
}

fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn cap_bit(cap: &Capability) -> Option<u32> {
    let name = serde_json::to_value(cap).ok()?;
    let name = name.as_str()?;
    KNOWN_CAPABILITIES
        .iter()
        .position(|k| *k == name)
        .map(|i| i as u32)
}

fn mask(caps: Option<&std::collections::HashSet<Capability>>) -> u64 {
    caps.into_iter()
        .flatten()
        .filter_map(cap_bit)
        .fold(0u64, |m, b| m | (1u64 << b))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Runs the steps of the module doc, in that order.
pub fn finish(plan: &ExecPlan) -> Result<(), JoinError> {
    if let Some(fd) = plan.userns {
        // SAFETY: setns takes an fd this process holds open and a flag; it
        // touches no memory of ours. The process is single-threaded here.
        if unsafe { libc::setns(fd, libc::CLONE_NEWUSER) } != 0 {
            return Err(JoinError::SetNs(last()));
        }
    }
    let notify = match &plan.seccomp {
        Some(profile) => {
            libcontainer::seccomp::initialize_seccomp(profile).map_err(JoinError::Seccomp)?
        }
        None => None,
    };
    crate::exec_listener::hand_over(plan.channel, notify).map_err(JoinError::Listener)?;
    become_user(&plan.process)
}

/// Becomes the process's user, with its groups and capabilities.
fn become_user(process: &Process) -> Result<(), JoinError> {
    let user = process.user().clone();
    let caps = process.capabilities().as_ref();
    // Keep the permitted set across the uid change below; the sets are
    // replaced right after.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };

    let (uid, gid) = (user.uid(), user.gid());
    let env_has_home = process
        .env()
        .as_ref()
        .is_some_and(|env| env.iter().any(|e| e.starts_with("HOME=")));
    if uid != 0 && !env_has_home {
        // libcontainer set HOME for root; runc gives the user's own.
        let home = crate::executor::home_of(uid).unwrap_or_else(|| "/".into());
        // SAFETY: the process is single-threaded here (it forked from
        // libcontainer's init and runs the executor alone).
        unsafe { std::env::set_var("HOME", home) };
    }
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    let set_id = |source| JoinError::SetId { uid, gid, source };
    // SAFETY: groups outlives the call and its length is passed with it.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(set_id(last()));
    }
    // SAFETY: plain integer syscalls.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(set_id(last()));
    }
    // SAFETY: plain integer syscalls.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(set_id(last()));
    }

    let Some(caps) = caps else {
        return Ok(());
    };
    let bounding = mask(caps.bounding().as_ref());
    for bit in 0..KNOWN_CAPABILITIES.len() as u32 {
        if bounding & (1u64 << bit) == 0 {
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, bit as libc::c_ulong, 0, 0, 0) };
        }
    }
    let eff = mask(caps.effective().as_ref());
    let prm = mask(caps.permitted().as_ref());
    let inh = mask(caps.inheritable().as_ref());
    let mut data = [CapData::default(); 2];
    for (i, d) in data.iter_mut().enumerate() {
        let shift = 32 * i as u32;
        d.effective = (eff >> shift) as u32;
        d.permitted = (prm >> shift) as u32;
        d.inheritable = (inh >> shift) as u32;
    }
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: header and data are valid for the kernel's v3 layout (one
    // header, two data elements) and outlive the call.
    if unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    } != 0
    {
        return Err(JoinError::Caps(last()));
    }
    for bit in 0..KNOWN_CAPABILITIES.len() as u32 {
        if mask(caps.ambient().as_ref()) & (1u64 << bit) != 0 {
            // SAFETY: prctl with integer arguments only.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    bit as libc::c_ulong,
                    0,
                    0,
                )
            };
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_map_to_kernel_bits() {
        let sys_admin: Capability = serde_json::from_str("\"CAP_SYS_ADMIN\"").unwrap();
        assert_eq!(cap_bit(&sys_admin), Some(21));
        let chown: Capability = serde_json::from_str("\"CAP_CHOWN\"").unwrap();
        let set: std::collections::HashSet<_> = [sys_admin, chown].into_iter().collect();
        assert_eq!(mask(Some(&set)), (1 << 21) | 1);
    }
}
