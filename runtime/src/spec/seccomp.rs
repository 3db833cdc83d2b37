//! The seccomp rules that send a system container's privileged calls to
//! warren-interceptor, merged into whatever profile the spec already has.
//!
//! Trap narrowly, in the filter itself:
//! - `mount` traps only what the kernel cannot decide alone in a user
//!   namespace: a new superblock (no MS_BIND, MS_REMOUNT, MS_MOVE or
//!   propagation flag), because a fresh proc or sysfs is refused while the
//!   container has masked paths, and the interceptor must re-apply those
//!   masks on it; MS_REMOUNT, because a read-only mount the runtime set up
//!   must stay read-only; and MS_BIND, because a bind onto a masked path
//!   would hide the mask. MS_MOVE and propagation changes never trap: the
//!   kernel's own checks are the guard.
//! - `umount2` (and `umount`) always trap: the initial mounts and masks
//!   must not be unmounted, and the kernel would allow it.
//! - `fsopen`, `fsconfig`, `fsmount`, `fspick`, `move_mount` and
//!   `open_tree` fail with ENOSYS, so that mount(8) and runc fall back to
//!   mount(2), where the rules above apply. Emulating the fd-based API
//!   would need every step checked across several calls.
//! - A nested `seccomp()` that asks for SECCOMP_FILTER_FLAG_NEW_LISTENER
//!   gets EINVAL: a listener inside could answer for the container's own
//!   processes and race warren's.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};
use serde_json::json;

pub const MS_REMOUNT: u64 = 0x20;
pub const MS_BIND: u64 = 0x1000;
pub const MS_MOVE: u64 = 0x2000;
pub const MS_UNBINDABLE: u64 = 1 << 17;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const NEW_SUPERBLOCK_MASK: u64 =
    MS_REMOUNT | MS_BIND | MS_MOVE | MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 1 << 3;

/// The syscalls warren takes over; rules the spec has for them are replaced.
const OWNED: &[&str] = &[
    "mount",
    "umount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
];

fn masked_eq(index: usize, mask: u64, value: u64) -> serde_json::Value {
    json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"})
}

fn rule(
    names: &[&str],
    action: &str,
    args: Vec<serde_json::Value>,
    errno: Option<i32>,
) -> LinuxSyscall {
    let mut r = json!({"names": names, "action": action});
    if !args.is_empty() {
        r["args"] = args.into();
    }
    if let Some(e) = errno {
        r["errnoRet"] = e.into();
    }
    serde_json::from_value(r).expect("a rule built from constants always parses")
}

fn allows(profile: &LinuxSeccomp, name: &str) -> bool {
    if profile.default_action() == LinuxSeccompAction::ScmpActAllow {
        return true;
    }
    profile.syscalls().as_ref().is_some_and(|rules| {
        rules.iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.names().iter().any(|n| n == name)
                && r.args().as_ref().is_none_or(|a| a.is_empty())
        })
    })
}

/// Returns the profile with warren's rules, talking to `listener`.
pub fn with_interception(
    profile: Option<LinuxSeccomp>,
    listener: &std::path::Path,
    metadata: &str,
) -> LinuxSeccomp {
    let mut profile = profile.unwrap_or_else(|| {
        serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW"}))
            .expect("a default profile always parses")
    });
    let allow_default = profile.default_action() == LinuxSeccompAction::ScmpActAllow;
    let seccomp_allowed = allows(&profile, "seccomp");

    let mut rules: Vec<LinuxSyscall> = profile.syscalls().clone().unwrap_or_default();
    for r in rules.iter_mut() {
        let names: Vec<String> = r
            .names()
            .iter()
            .filter(|n| !OWNED.contains(&n.as_str()) && n.as_str() != "seccomp")
            .cloned()
            .collect();
        r.set_names(names);
    }
    rules.retain(|r| !r.names().is_empty());

    if allow_default {
        rules.push(rule(
            &["mount"],
            "SCMP_ACT_NOTIFY",
            vec![masked_eq(3, NEW_SUPERBLOCK_MASK, 0)],
            None,
        ));
        rules.push(rule(
            &["mount"],
            "SCMP_ACT_NOTIFY",
            vec![masked_eq(3, MS_REMOUNT, MS_REMOUNT)],
            None,
        ));
        rules.push(rule(
            &["mount"],
            "SCMP_ACT_NOTIFY",
            vec![masked_eq(3, MS_BIND | MS_REMOUNT, MS_BIND)],
            None,
        ));
        // A move could carry a mask away from what it covers.
        rules.push(rule(
            &["mount"],
            "SCMP_ACT_NOTIFY",
            vec![masked_eq(3, MS_MOVE | MS_REMOUNT | MS_BIND, MS_MOVE)],
            None,
        ));
    } else {
        // Under a deny-by-default profile the calls the rules above let
        // through would be denied: trap every mount and let the interceptor
        // continue the moves and propagation changes.
        rules.push(rule(&["mount"], "SCMP_ACT_NOTIFY", vec![], None));
    }
    // Character devices: the interceptor makes the safe ones (null, zero,
    // full, random, urandom, tty, console, ptmx), which engines inside
    // create while building images; the kernel alone refuses them in a
    // user namespace. Other kinds of node are not trapped.
    rules.push(rule(
        &["mknod"],
        "SCMP_ACT_NOTIFY",
        vec![masked_eq(1, S_IFMT, S_IFCHR)],
        None,
    ));
    rules.push(rule(
        &["mknodat"],
        "SCMP_ACT_NOTIFY",
        vec![masked_eq(2, S_IFMT, S_IFCHR)],
        None,
    ));
    rules.push(rule(
        &["umount2", "umount"],
        "SCMP_ACT_NOTIFY",
        vec![],
        None,
    ));
    rules.push(rule(
        &[
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "move_mount",
            "open_tree",
        ],
        "SCMP_ACT_ERRNO",
        vec![],
        Some(libc::ENOSYS),
    ));
    rules.push(rule(
        &["seccomp"],
        "SCMP_ACT_ERRNO",
        vec![masked_eq(
            1,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
        )],
        Some(libc::EINVAL),
    ));
    if seccomp_allowed && !allow_default {
        rules.push(rule(
            &["seccomp"],
            "SCMP_ACT_ALLOW",
            vec![masked_eq(1, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0)],
            None,
        ));
    }
    profile.set_syscalls(Some(rules));
    profile.set_listener_path(Some(listener.to_path_buf()));
    profile.set_listener_metadata(Some(metadata.to_owned()));
    profile
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn actions_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn no_profile_gets_narrow_traps() {
        let p = with_interception(None, Path::new("/run/warren/i.sock"), "warren/v1");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            p.listener_path().as_deref(),
            Some(Path::new("/run/warren/i.sock"))
        );
        let mounts = actions_for(&p, "mount");
        assert_eq!(mounts.len(), 4);
        assert!(
            mounts
                .iter()
                .all(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
        );
        assert!(
            mounts
                .iter()
                .all(|r| r.args().as_ref().is_some_and(|a| a.len() == 1))
        );
        let fs = actions_for(&p, "fsopen");
        assert_eq!(fs[0].errno_ret(), Some(libc::ENOSYS as u32));
        let sc = actions_for(&p, "seccomp");
        assert_eq!(sc.len(), 1);
        assert_eq!(sc[0].errno_ret(), Some(libc::EINVAL as u32));
        assert_eq!(
            actions_for(&p, "umount2")[0].action(),
            LinuxSeccompAction::ScmpActNotify
        );
    }

    #[test]
    fn a_deny_by_default_profile_keeps_its_rules_and_loses_its_mount_rules() {
        let docker_like: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "mount", "seccomp"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["umount2"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
        .unwrap();
        let p = with_interception(Some(docker_like), Path::new("/s"), "m");
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        let read = actions_for(&p, "read");
        assert_eq!(read[0].action(), LinuxSeccompAction::ScmpActAllow);
        let mounts = actions_for(&p, "mount");
        assert_eq!(mounts.len(), 1, "only warren's rule for mount remains");
        assert_eq!(mounts[0].action(), LinuxSeccompAction::ScmpActNotify);
        assert!(mounts[0].args().is_none());
        let sc = actions_for(&p, "seccomp");
        assert_eq!(sc.len(), 2, "EINVAL for NEW_LISTENER, allowed otherwise");
        assert_eq!(actions_for(&p, "umount2").len(), 1);
    }
}
