//! /proc/sys in a system container: one policy per key or directory, all
//! of them here.
//!
//! A spec's readonlyPaths usually hold all of /proc/sys. That also stops
//! the writes engines inside make to their own namespaces at start-up
//! (dockerd and runc set net.* keys in the network namespaces they make).
//! So a system container gets, instead of one read-only /proc/sys:
//! - the namespaced directories writable: the container owns the network
//!   (and IPC) namespaces their keys belong to, and the kernel checks that;
//! - the global directories read-only, as before: their keys are the host's;
//! - a few global keys that engines insist on writing emulated: the
//!   container gets its own copy, a file bound over the key, which it may
//!   read and write without touching the host's value.

/// What a system container may do with a part of /proc/sys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Namespaced: writes reach the container's own namespace.
    Namespaced,
    /// Global: read-only.
    ReadOnly,
    /// Global but written by engines at start-up: a per-container copy.
    Emulated,
}

/// The policy, by path below /proc/sys. A key's own entry wins over its
/// directory's.
pub const POLICY: &[(&str, Policy)] = &[
    // net.*: per network namespace (ip_forward, ip_unprivileged_port_start,
    // conf.*.disable_ipv6, bridge-nf-call-*, ...).
    ("net", Policy::Namespaced),
    ("kernel", Policy::ReadOnly),
    ("vm", Policy::ReadOnly),
    ("fs", Policy::ReadOnly),
    ("dev", Policy::ReadOnly),
    ("abi", Policy::ReadOnly),
    ("debug", Policy::ReadOnly),
    ("crypto", Policy::ReadOnly),
    ("user", Policy::ReadOnly),
    ("sunrpc", Policy::ReadOnly),
    // Set by kubelet (and k3s) at start-up, and checked.
    ("vm/overcommit_memory", Policy::Emulated),
    ("vm/panic_on_oom", Policy::Emulated),
    ("kernel/panic", Policy::Emulated),
    ("kernel/panic_on_oops", Policy::Emulated),
    ("kernel/keys/root_maxkeys", Policy::Emulated),
    ("kernel/keys/root_maxbytes", Policy::Emulated),
];

/// The read-only paths that replace /proc/sys.
pub fn read_only_paths() -> Vec<String> {
    POLICY
        .iter()
        .filter(|(_, p)| *p == Policy::ReadOnly)
        .map(|(k, _)| format!("/proc/sys/{k}"))
        .collect()
}

/// The keys a container gets its own copy of, as paths below /proc/sys.
pub fn emulated_keys() -> impl Iterator<Item = &'static str> {
    POLICY
        .iter()
        .filter(|(_, p)| *p == Policy::Emulated)
        .map(|(k, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_policy_and_net_stays_writable() {
        for (i, (k, _)) in POLICY.iter().enumerate() {
            assert!(POLICY[i + 1..].iter().all(|(o, _)| o != k), "{k} twice");
        }
        let ro = read_only_paths();
        assert!(ro.contains(&"/proc/sys/kernel".to_owned()));
        assert!(!ro.iter().any(|p| p.starts_with("/proc/sys/net")));
        assert!(emulated_keys().any(|k| k == "vm/overcommit_memory"));
    }
}
