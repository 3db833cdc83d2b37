//! mount and umount2: what to do with a trapped call.
//!
//! Pure: the call's copied arguments and the facts about its target in,
//! an action out.

use std::collections::HashSet;

pub const MS_RDONLY: u64 = 0x1;
pub const MS_REMOUNT: u64 = 0x20;
pub const MS_BIND: u64 = 0x1000;
pub const MS_MOVE: u64 = 0x2000;
pub const MS_PROPAGATION: u64 = (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20);
pub const MNT_DETACH: u64 = 0x2;

/// A trapped call, with its arguments copied out of the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: u64,
        data: Option<String>,
    },
    Umount {
        target: String,
        flags: u64,
    },
}

/// What a new proc or sysfs mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    Proc,
    Sysfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The kernel decides, on the caller's own path resolution.
    Continue,
    /// Fail the call with this errno.
    Deny(i32),
    /// Mount a new proc or sysfs for the caller and re-apply the masks.
    EmulatePseudo(Pseudo),
    /// Unmount the resolved target for the caller; `detach` for an
    /// emulated mount, whose masks go with it.
    Unmount { detach: bool },
    /// Change the resolved target's mount flags for the caller.
    BindRemount,
    /// Reconfigure the resolved target's filesystem, with the container's
    /// credentials (the kernel then checks who owns the filesystem).
    SuperblockRemount,
}

/// Where a call's target resolved, inside the caller's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The id of the mount the path is on.
    pub id: u64,
    /// (device, root) of that mount.
    pub identity: (String, String),
    /// Whether the path is that mount's root (a mount point).
    pub is_mount_root: bool,
}

/// A set of mounts, by id (exact, in the namespace they were seen in) and
/// by identity (what copies of them in other mount namespaces share).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub ids: HashSet<u64>,
    pub identities: HashSet<(String, String)>,
}

impl Known {
    pub fn insert(&mut self, id: u64, identity: (String, String)) {
        self.ids.insert(id);
        self.identities.insert(identity);
    }
}

/// What the decision knows about the container.
#[derive(Debug, Default)]
pub struct Facts {
    /// The mounts the runtime set up.
    pub initial: Known,
    /// Those of them that were read-only.
    pub initial_ro: Known,
    /// Masks: the runtime's (at the spec's masked paths) and those warren
    /// put on emulated mounts.
    pub masks: Known,
    /// Emulated proc and sysfs mounts.
    pub emulated: Known,
    /// Whether the caller is in the container's first mount namespace,
    /// where mount ids say exactly which mount is which. Elsewhere the
    /// mounts are copies, known by identity.
    pub same_ns: bool,
    /// Whether the caller holds CAP_SYS_ADMIN.
    pub caller_admin: bool,
}

impl Facts {
    fn has(&self, set: &Known, t: &Target) -> bool {
        set.ids.contains(&t.id) || (!self.same_ns && set.identities.contains(&t.identity))
    }
    fn is_protected(&self, t: &Target) -> bool {
        self.has(&self.initial, t) || self.has(&self.masks, t)
    }
}

pub fn decide(call: &Call, target: Option<&Target>, facts: &Facts) -> Action {
    match call {
        Call::Umount { flags, .. } => {
            let Some(t) = target else {
                // Never continue: the kernel would re-read a path the
                // caller may have changed since it was copied.
                return Action::Deny(libc::ENOENT);
            };
            if !t.is_mount_root {
                return Action::Deny(libc::EINVAL);
            }
            if facts.is_protected(t) {
                return Action::Deny(libc::EPERM);
            }
            if !facts.caller_admin {
                return Action::Deny(libc::EPERM);
            }
            Action::Unmount {
                detach: flags & MNT_DETACH != 0 || facts.has(&facts.emulated, t),
            }
        }
        Call::Mount { fstype, flags, .. } => {
            let flags = *flags;
            if flags & MS_REMOUNT != 0 {
                let Some(t) = target else {
                    return Action::Deny(libc::ENOENT);
                };
                if t.is_mount_root && facts.has(&facts.initial_ro, t) && flags & MS_RDONLY == 0 {
                    return Action::Deny(libc::EPERM);
                }
                if flags & MS_BIND != 0 {
                    return if facts.caller_admin {
                        Action::BindRemount
                    } else {
                        Action::Deny(libc::EPERM)
                    };
                }
                // A superblock remount needs CAP_SYS_ADMIN in the user
                // namespace that owns the filesystem: it is made on the
                // resolved target with the container's credentials, not
                // continued (the kernel would re-read the path).
                return if facts.caller_admin {
                    Action::SuperblockRemount
                } else {
                    Action::Deny(libc::EPERM)
                };
            }
            if flags & (MS_MOVE | MS_PROPAGATION) != 0 && flags & MS_BIND == 0 {
                return Action::Continue;
            }
            // A bind or a new superblock over a mask would hide it.
            if let Some(t) = target {
                if t.is_mount_root && facts.has(&facts.masks, t) {
                    return Action::Deny(libc::EPERM);
                }
            }
            if flags & MS_BIND != 0 {
                return Action::Continue;
            }
            let pseudo = match fstype.as_deref() {
                Some("proc") => Pseudo::Proc,
                Some("sysfs") => Pseudo::Sysfs,
                _ => return Action::Continue,
            };
            // Never let the kernel re-read a path for these: the caller
            // could have changed it since it was copied.
            if target.is_none() {
                Action::Deny(libc::ENOENT)
            } else if facts.caller_admin {
                Action::EmulatePseudo(pseudo)
            } else {
                Action::Deny(libc::EPERM)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(dev: &str, root: &str) -> (String, String) {
        (dev.to_owned(), root.to_owned())
    }

    fn known(items: &[(u64, &str, &str)]) -> Known {
        let mut k = Known::default();
        for (i, d, r) in items {
            k.insert(*i, id(d, r));
        }
        k
    }

    fn facts() -> Facts {
        Facts {
            // 1 rootfs (ro), 2 /proc, 3 kcore mask, 4 /sys (ro)
            initial: known(&[
                (1, "8:1", "/rootfs"),
                (2, "0:50", "/"),
                (3, "0:5", "/null"),
                (4, "0:60", "/"),
            ]),
            initial_ro: known(&[(1, "8:1", "/rootfs"), (4, "0:60", "/")]),
            masks: known(&[(3, "0:5", "/null")]),
            emulated: known(&[(9, "0:99", "/")]),
            same_ns: true,
            caller_admin: true,
        }
    }

    fn at(mid: u64, dev: &str, root: &str, is_root: bool) -> Target {
        Target {
            id: mid,
            identity: id(dev, root),
            is_mount_root: is_root,
        }
    }

    fn mount(fstype: Option<&str>, flags: u64) -> Call {
        Call::Mount {
            source: None,
            target: "/x".into(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: None,
        }
    }

    fn umount(flags: u64) -> Call {
        Call::Umount {
            target: "/x".into(),
            flags,
        }
    }

    #[test]
    fn table() {
        let f = facts();
        let no_admin = Facts {
            caller_admin: false,
            ..facts()
        };
        let cases: Vec<(&str, Call, Option<Target>, &Facts, Action)> = vec![
            (
                "new proc",
                mount(Some("proc"), 0),
                Some(at(1, "8:1", "/rootfs", false)),
                &f,
                Action::EmulatePseudo(Pseudo::Proc),
            ),
            (
                "new sysfs",
                mount(Some("sysfs"), 0),
                Some(at(1, "8:1", "/rootfs", false)),
                &f,
                Action::EmulatePseudo(Pseudo::Sysfs),
            ),
            (
                "proc without CAP_SYS_ADMIN",
                mount(Some("proc"), 0),
                Some(at(1, "8:1", "/rootfs", false)),
                &no_admin,
                Action::Deny(libc::EPERM),
            ),
            (
                "new proc over /proc",
                mount(Some("proc"), 0),
                Some(at(2, "0:50", "/", true)),
                &f,
                Action::EmulatePseudo(Pseudo::Proc),
            ),
            (
                "tmpfs is the kernel's",
                mount(Some("tmpfs"), 0),
                Some(at(1, "8:1", "/rootfs", false)),
                &f,
                Action::Continue,
            ),
            (
                "proc over the kcore mask",
                mount(Some("proc"), 0),
                Some(at(3, "0:5", "/null", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "bind over a mask",
                mount(None, MS_BIND),
                Some(at(3, "0:5", "/null", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "bind elsewhere",
                mount(None, MS_BIND),
                Some(at(1, "8:1", "/rootfs", false)),
                &f,
                Action::Continue,
            ),
            (
                "move",
                mount(None, MS_MOVE),
                Some(at(3, "0:5", "/null", true)),
                &f,
                Action::Continue,
            ),
            (
                "propagation",
                mount(None, 1 << 18),
                Some(at(2, "0:50", "/", true)),
                &f,
                Action::Continue,
            ),
            (
                "remount ro rootfs rw",
                mount(None, MS_REMOUNT),
                Some(at(1, "8:1", "/rootfs", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "bind-remount ro /sys rw",
                mount(None, MS_REMOUNT | MS_BIND),
                Some(at(4, "0:60", "/", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "remount ro rootfs ro",
                mount(None, MS_REMOUNT | MS_RDONLY),
                Some(at(1, "8:1", "/rootfs", true)),
                &f,
                Action::SuperblockRemount,
            ),
            (
                "bind-remount elsewhere",
                mount(None, MS_REMOUNT | MS_BIND | MS_RDONLY),
                Some(at(7, "0:77", "/", true)),
                &f,
                Action::BindRemount,
            ),
            (
                "remount of rw /proc",
                mount(None, MS_REMOUNT),
                Some(at(2, "0:50", "/", true)),
                &f,
                Action::SuperblockRemount,
            ),
            (
                "umount /proc",
                umount(0),
                Some(at(2, "0:50", "/", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "umount the kcore mask",
                umount(0),
                Some(at(3, "0:5", "/null", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "umount a non-mount-point",
                umount(0),
                Some(at(1, "8:1", "/rootfs", false)),
                &f,
                Action::Deny(libc::EINVAL),
            ),
            (
                "umount own tmpfs",
                umount(0),
                Some(at(7, "0:77", "/", true)),
                &f,
                Action::Unmount { detach: false },
            ),
            (
                "umount own tmpfs lazily",
                umount(MNT_DETACH),
                Some(at(7, "0:77", "/", true)),
                &f,
                Action::Unmount { detach: true },
            ),
            (
                "umount emulated proc",
                umount(0),
                Some(at(9, "0:99", "/", true)),
                &f,
                Action::Unmount { detach: true },
            ),
            (
                "umount without CAP_SYS_ADMIN",
                umount(0),
                Some(at(7, "0:77", "/", true)),
                &no_admin,
                Action::Deny(libc::EPERM),
            ),
            (
                "umount of nothing",
                umount(0),
                None,
                &f,
                Action::Deny(libc::ENOENT),
            ),
            (
                "remount of nothing",
                mount(None, MS_REMOUNT),
                None,
                &f,
                Action::Deny(libc::ENOENT),
            ),
            (
                "proc on a path that does not resolve",
                mount(Some("proc"), 0),
                None,
                &f,
                Action::Deny(libc::ENOENT),
            ),
            (
                "a second sysfs mount of the same superblock",
                umount(0),
                Some(at(11, "0:60", "/", true)),
                &f,
                Action::Unmount { detach: false },
            ),
        ];
        for (name, call, target, facts, want) in cases {
            assert_eq!(decide(&call, target.as_ref(), facts), want, "{name}");
        }
    }

    #[test]
    fn copies_in_nested_mount_namespaces_are_known_by_identity() {
        let nested = Facts {
            same_ns: false,
            ..facts()
        };
        // The copy of /proc in a nested namespace has a new id.
        assert_eq!(
            decide(&umount(0), Some(&at(50, "0:50", "/", true)), &nested),
            Action::Deny(libc::EPERM)
        );
        assert_eq!(
            decide(&umount(0), Some(&at(51, "0:5", "/null", true)), &nested),
            Action::Deny(libc::EPERM)
        );
        assert_eq!(
            decide(
                &mount(None, MS_REMOUNT),
                Some(&at(52, "0:60", "/", true)),
                &nested
            ),
            Action::Deny(libc::EPERM)
        );
    }

    /// The supervisor skips reading the caller's capabilities and the
    /// container's mounts when the target does not resolve: no decision
    /// without a target may depend on them.
    #[test]
    fn decisions_without_a_target_ignore_the_facts() {
        let full = facts();
        let empty = Facts::default();
        let calls = [
            umount(0),
            umount(MNT_DETACH),
            mount(Some("proc"), 0),
            mount(Some("sysfs"), 0),
            mount(Some("tmpfs"), 0),
            mount(None, MS_REMOUNT),
            mount(None, MS_REMOUNT | MS_BIND),
            mount(None, MS_BIND),
            mount(None, MS_MOVE),
            mount(None, 1 << 18),
        ];
        for call in calls {
            assert_eq!(
                decide(&call, None, &full),
                decide(&call, None, &empty),
                "{call:?}"
            );
        }
    }
}
