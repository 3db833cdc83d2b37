//! What warren's seccomp filter does with the calls it owns in a system
//! container: the one table that the runtime's rules, the probes'
//! [`crate::intercepted`] and the README's interceptor section are built
//! from or tested against.

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sent to the interceptor, which emulates or refuses it.
    Notify,
    /// Refused with ENOSYS, so that callers fall back to mount(2).
    Enosys,
    /// Refused with EINVAL.
    Einval,
}

/// Which calls of a syscall a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every call.
    Always,
    /// mount(2): every call but a pure propagation change (see
    /// [`PROPAGATION`]), whatever else its flags hold (MS_MGC_VAL too).
    NotPropagationOnly,
    /// mknod/mknodat: a character device (the mode is argument `arg`).
    CharDevice { arg: u32 },
    /// seccomp(2) with SECCOMP_FILTER_FLAG_NEW_LISTENER in its flags.
    NewListener,
}

impl Action {
    /// The README's word for it.
    pub const fn word(self) -> &'static str {
        match self {
            Action::Notify => "notify",
            Action::Enosys => "ENOSYS",
            Action::Einval => "EINVAL",
        }
    }
}

impl When {
    /// The README's words for it.
    pub const fn describe(self) -> &'static str {
        match self {
            When::Always => "every call",
            When::NotPropagationOnly => {
                "every call but a pure propagation change (exactly one of MS_SHARED, MS_PRIVATE, MS_SLAVE or MS_UNBINDABLE, with MS_REC and MS_SILENT at most), which is allowed; MS_MGC_VAL and any other bit trap"
            }
            When::CharDevice { .. } => "a character device",
            When::NewListener => "with SECCOMP_FILTER_FLAG_NEW_LISTENER",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The name libseccomp and config.json use.
    pub name: &'static str,
    /// The x86_64 number (the same on i386 from 424 on); None where x86_64
    /// has no such call.
    pub nr: Option<u64>,
    pub when: When,
    pub action: Action,
    /// Why, in a few words (the README's third column).
    pub why: &'static str,
}

pub const MS_REC: u64 = 0x4000;
pub const MS_SILENT: u64 = 0x8000;
pub const MS_UNBINDABLE: u64 = 1 << 17;
pub const MS_PRIVATE: u64 = 1 << 18;
pub const MS_SLAVE: u64 = 1 << 19;
pub const MS_SHARED: u64 = 1 << 20;
/// The propagation changes mount(2) may make without the interceptor:
/// exactly one of these, with MS_REC and MS_SILENT allowed beside it.
pub const PROPAGATION: [u64; 4] = [MS_UNBINDABLE, MS_PRIVATE, MS_SLAVE, MS_SHARED];
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 1 << 3;

/// The table. Every syscall not named here is left to the spec's profile.
pub const RULES: &[Rule] = &[
    Rule {
        name: "mount",
        nr: Some(165),
        when: When::NotPropagationOnly,
        action: Action::Notify,
        why: "new superblocks are emulated (proc and sysfs with the masks), binds, moves and remounts are made on resolved fds or refused",
    },
    Rule {
        name: "umount2",
        nr: Some(166),
        when: When::Always,
        action: Action::Notify,
        why: "the runtime's mounts and masks are never unmounted",
    },
    Rule {
        name: "umount",
        nr: None,
        when: When::Always,
        action: Action::Notify,
        why: "as umount2 (i386)",
    },
    Rule {
        name: "mknod",
        nr: Some(133),
        when: When::CharDevice { arg: 1 },
        action: Action::Notify,
        why: "the safe character devices are made for the caller, others refused",
    },
    Rule {
        name: "mknodat",
        nr: Some(259),
        when: When::CharDevice { arg: 2 },
        action: Action::Notify,
        why: "as mknod",
    },
    Rule {
        name: "open_tree",
        nr: Some(428),
        when: When::Always,
        action: Action::Enosys,
        why: "the fd-based mount API is refused: callers fall back to mount(2)",
    },
    Rule {
        name: "move_mount",
        nr: Some(429),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "fsopen",
        nr: Some(430),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "fsconfig",
        nr: Some(431),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "fsmount",
        nr: Some(432),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "fspick",
        nr: Some(433),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "mount_setattr",
        nr: Some(442),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree: it could clear a read-only flag",
    },
    Rule {
        name: "open_tree_attr",
        nr: Some(467),
        when: When::Always,
        action: Action::Enosys,
        why: "as open_tree",
    },
    Rule {
        name: "seccomp",
        nr: Some(317),
        when: When::NewListener,
        action: Action::Einval,
        why: "no listener inside can race warren's",
    },
];

/// Whether mount(2) flags are a pure propagation change, which the filter
/// lets through.
pub const fn is_propagation_only(flags: u64) -> bool {
    let rest = flags & !(MS_REC | MS_SILENT);
    let mut i = 0;
    while i < PROPAGATION.len() {
        if rest == PROPAGATION[i] {
            return true;
        }
        i += 1;
    }
    false
}
