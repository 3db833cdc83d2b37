//! mount and umount2: what to do with a trapped call.
//!
//! Pure: the call's copied arguments and the facts about its target in,
//! an action out.

use std::collections::{HashMap, HashSet};

pub const MS_RDONLY: u64 = 0x1;
pub const MS_REMOUNT: u64 = 0x20;
pub const MS_BIND: u64 = 0x1000;
pub const MS_MOVE: u64 = 0x2000;
pub const MS_PROPAGATION: u64 = (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20);
pub const MNT_DETACH: u64 = 0x2;
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

/// mount(2) flags as the kernel reads them: the magic number old callers
/// put in the upper 16 bits is dropped, and so is everything above the 32
/// bits the kernel knows, exactly as the kernel does before deciding.
pub fn kernel_flags(flags: u64) -> u64 {
    let flags = flags & 0xffff_ffff;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags & !MS_MGC_MSK
    } else {
        flags
    }
}

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
    /// Bind the resolved source onto the resolved target for the caller
    /// (its mounts below too, if `recursive`).
    Bind { recursive: bool },
    /// Move the mount at the resolved source onto the resolved target.
    Move,
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
    /// For a bind or a move: the mount its source is on.
    pub source: Option<Source>,
}

/// The mount a bind's or a move's source path is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: u64,
    pub identity: (String, String),
    /// The path is that mount's root.
    pub is_mount_root: bool,
    /// The mount is a proc or sysfs, which carry masks.
    pub pseudo: bool,
}

/// A set of mounts, by id (exact, in the namespace they were seen in) and
/// by identity (what copies of them in other mount namespaces share).
///
/// An id is kept with the identity it had: the kernel reuses the id of a
/// mount that is gone, and a new mount with a recorded id is the recorded
/// one only if it also shows the same filesystem. Identities are kept as
/// 64-bit hashes, which every container keeps for each of its mounts: a
/// collision could only make an unprotected mount look protected, never
/// the reverse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub ids: HashMap<u64, u64>,
    pub identities: HashSet<u64>,
}

/// FNV-1a of a mount's identity (device, root).
fn identity_key(identity: &(String, String)) -> u64 {
    let bytes = identity
        .0
        .bytes()
        .chain(std::iter::once(0))
        .chain(identity.1.bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Known {
    pub fn insert(&mut self, id: u64, identity: (String, String)) {
        let key = identity_key(&identity);
        self.ids.insert(id, key);
        self.identities.insert(key);
    }

    /// Whether mount `id` showing `identity` is one of these, by its id.
    pub fn has_id(&self, id: u64, identity: &(String, String)) -> bool {
        self.ids.get(&id) == Some(&identity_key(identity))
    }

    /// Whether a mount showing `identity` is (a copy of) one of these.
    pub fn has_identity(&self, identity: &(String, String)) -> bool {
        self.identities.contains(&identity_key(identity))
    }

    /// Adds another set's mounts.
    pub fn extend(&mut self, other: &Known) {
        self.ids.extend(other.ids.iter().map(|(k, v)| (*k, *v)));
        self.identities.extend(other.identities.iter().copied());
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
    /// The container's root mount.
    pub root: Known,
    /// Whether the caller is in the container's first mount namespace,
    /// where mount ids say exactly which mount is which. Elsewhere the
    /// mounts are copies, known by identity.
    pub same_ns: bool,
    /// Whether the caller holds CAP_SYS_ADMIN.
    pub caller_admin: bool,
}

impl Facts {
    fn has(&self, set: &Known, t: &Target) -> bool {
        set.has_id(t.id, &t.identity) || (!self.same_ns && set.has_identity(&t.identity))
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
            // An engine inside (runc, systemd) that pivots into a new root
            // in a mount namespace of its own then detaches the old root: a
            // copy of the container's root with every mount on it, masks
            // and all. Detached together they reveal nothing, so this one
            // is allowed; unmounting a mask or proc alone is not.
            let old_root = !facts.same_ns && flags & MNT_DETACH != 0 && facts.has(&facts.root, t);
            if facts.is_protected(t) && !old_root {
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
            // The kernel's order: remount, bind, propagation, move, new.
            // A propagation change decides on the flags alone, which the
            // caller cannot change after they were read.
            if flags & MS_PROPAGATION != 0 && flags & MS_BIND == 0 {
                return Action::Continue;
            }
            if flags & MS_MOVE != 0 && flags & MS_BIND == 0 {
                // Moving a mask, or a read-only path, off what it covers
                // would uncover it. A move is made on the resolved paths,
                // never continued: the kernel would read them again.
                let Some(src) = target.and_then(|t| t.source.as_ref()) else {
                    return Action::Deny(libc::ENOENT);
                };
                let st = Target {
                    id: src.id,
                    identity: src.identity.clone(),
                    is_mount_root: src.is_mount_root,
                    source: None,
                };
                let root = facts.has(&facts.root, &st);
                if facts.has(&facts.masks, &st) || (facts.has(&facts.initial_ro, &st) && !root) {
                    return Action::Deny(libc::EPERM);
                }
                return if facts.caller_admin {
                    Action::Move
                } else {
                    Action::Deny(libc::EPERM)
                };
            }
            // Mounting over a mask hides the mask under something else and
            // reveals nothing; runtimes inside mask paths that way (a bind
            // of /dev/null, a read-only tmpfs). A new proc or sysfs there is
            // refused all the same: no runtime needs one on a masked path.
            // What would reveal a mask's secret is a copy of the proc or
            // sysfs mount without the masks on it.
            if let Some(t) = target {
                let pseudo = matches!(fstype.as_deref(), Some("proc" | "sysfs"));
                if pseudo && flags & MS_BIND == 0 && t.is_mount_root && facts.has(&facts.masks, t) {
                    return Action::Deny(libc::EPERM);
                }
            }
            let recursive = flags & (1 << 14) != 0;
            let from_pseudo = target
                .and_then(|t| t.source.as_ref())
                .is_some_and(|s| s.pseudo);
            if flags & MS_BIND != 0 && !recursive && from_pseudo {
                return Action::Deny(libc::EPERM);
            }
            if flags & MS_BIND != 0 {
                // Made on the resolved source and target, for the same
                // reason as a move.
                if target.and_then(|t| t.source.as_ref()).is_none() {
                    return Action::Deny(libc::ENOENT);
                }
                return if facts.caller_admin {
                    Action::Bind { recursive }
                } else {
                    Action::Deny(libc::EPERM)
                };
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
            root: known(&[(1, "8:1", "/rootfs")]),
            same_ns: true,
            caller_admin: true,
        }
    }

    fn at(mid: u64, dev: &str, root: &str, is_root: bool) -> Target {
        Target {
            id: mid,
            identity: id(dev, root),
            is_mount_root: is_root,
            source: None,
        }
    }

    fn from(mid: u64, dev: &str, root: &str, pseudo: bool) -> Option<Source> {
        Some(Source {
            id: mid,
            identity: id(dev, root),
            is_mount_root: true,
            pseudo,
        })
    }

    #[test]
    fn the_magic_number_is_dropped_as_the_kernel_drops_it() {
        assert_eq!(kernel_flags(0xC0ED_0000), 0);
        assert_eq!(kernel_flags(0xC0ED_0000 | MS_BIND), MS_BIND);
        assert_eq!(kernel_flags(1 << 40), 0);
        // Not the magic: kept, so a propagation bit still reads as one.
        assert_eq!(kernel_flags(0xC0EC_0000), 0xC0EC_0000);
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
        let elsewhere = Facts {
            same_ns: false,
            ..facts()
        };
        let cases: Vec<(&str, Call, Option<Target>, &Facts, Action)> = vec![
            (
                "a mask's id reused by a mount of another filesystem",
                umount(0),
                Some(at(3, "0:77", "/", true)),
                &f,
                Action::Unmount { detach: false },
            ),
            (
                "a non-recursive bind out of proc",
                mount(None, MS_BIND),
                Some(Target {
                    source: from(2, "0:50", "/", true),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "a recursive bind out of proc keeps its masks",
                mount(None, MS_BIND | (1 << 14)),
                Some(Target {
                    source: from(2, "0:50", "/", true),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Bind { recursive: true },
            ),
            (
                "a mask moved away",
                mount(None, MS_MOVE),
                Some(Target {
                    source: from(3, "0:5", "/null", false),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "a read-only path moved away",
                mount(None, MS_MOVE),
                Some(Target {
                    source: from(4, "0:60", "/", false),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "a copy of the root moved onto / (systemd's units)",
                mount(None, MS_MOVE),
                Some(Target {
                    source: from(61, "8:1", "/rootfs", false),
                    ..at(62, "8:1", "/rootfs", true)
                }),
                &elsewhere,
                Action::Move,
            ),
            (
                "a tmpfs of the container's moved",
                mount(None, MS_MOVE),
                Some(Target {
                    source: from(70, "0:77", "/", false),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Move,
            ),
            (
                "the old root detached after a pivot in a nested namespace",
                umount(MNT_DETACH),
                Some(at(51, "8:1", "/rootfs", true)),
                &elsewhere,
                Action::Unmount { detach: true },
            ),
            (
                "the old root without MNT_DETACH",
                umount(0),
                Some(at(51, "8:1", "/rootfs", true)),
                &elsewhere,
                Action::Deny(libc::EPERM),
            ),
            (
                "the container's own root, in its first namespace",
                umount(MNT_DETACH),
                Some(at(1, "8:1", "/rootfs", true)),
                &f,
                Action::Deny(libc::EPERM),
            ),
            (
                "a mask's copy, detached, in a nested namespace",
                umount(MNT_DETACH),
                Some(at(53, "0:5", "/null", true)),
                &elsewhere,
                Action::Deny(libc::EPERM),
            ),
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
                "bind over a mask (a runtime inside masking it again)",
                mount(None, MS_BIND),
                Some(Target {
                    source: from(70, "0:77", "/", false),
                    ..at(3, "0:5", "/null", true)
                }),
                &f,
                Action::Bind { recursive: false },
            ),
            (
                "bind elsewhere",
                mount(None, MS_BIND),
                Some(Target {
                    source: from(70, "0:77", "/", false),
                    ..at(1, "8:1", "/rootfs", false)
                }),
                &f,
                Action::Bind { recursive: false },
            ),
            (
                "a move whose source does not resolve",
                mount(None, MS_MOVE),
                Some(at(3, "0:5", "/null", true)),
                &f,
                Action::Deny(libc::ENOENT),
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
