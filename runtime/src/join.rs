//! Joining a system container's user namespace from `exec`.
//!
//! libcontainer 0.7 joins an exec'd process to the container's ipc, uts,
//! net, pid, mount, cgroup and time namespaces, but not to its user
//! namespace: the process would run as host root. warren's executor
//! finishes the job as its last step before execve: it enters the user
//! namespace (through an fd opened by warren-runc before forking), then takes
//! the process's user, groups and capabilities again, now inside it.

use std::os::fd::RawFd;

use oci_spec::runtime::{Capability, Spec};

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

/// Enters the user namespace `userns_fd` and becomes the spec's process
/// user there, with the spec's capabilities.
pub fn enter(userns_fd: RawFd, spec: &Spec) -> Result<(), JoinError> {
    let process = spec.process().as_ref();
    let user = process.map(|p| p.user().clone()).unwrap_or_default();
    let caps = process.and_then(|p| p.capabilities().as_ref());

    // SAFETY: setns takes an fd this process holds open and a flag; it
    // touches no memory of ours. The process is single-threaded here.
    if unsafe { libc::setns(userns_fd, libc::CLONE_NEWUSER) } != 0 {
        return Err(JoinError::SetNs(last()));
    }
    // Keep the permitted set across the uid change below; the sets are
    // replaced right after.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };

    let (uid, gid) = (user.uid(), user.gid());
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
