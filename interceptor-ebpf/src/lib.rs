//! Types shared by warren's eBPF probes and the interceptor that reads their
//! maps. `no_std`, `#[repr(C)]` and free of implicit padding, so that both
//! sides agree on every byte.
#![no_std]

pub mod policy;

/// The most containers the probes track at once; every map is bounded by it.
pub const MAX_CONTAINERS: u32 = 4096;

/// How many cgroup2 depths tracked containers may sit at. A task below a
/// container's cgroup (a service of systemd's inside, a nested engine's
/// container) is found through its ancestor at each depth in use.
pub const MAX_LEVELS: u32 = 4;

/// The syscall families that are counted per container.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Mount = 0,
    File = 1,
    Net = 2,
    Process = 3,
}

/// How many families there are; the per-container counter arrays are this long.
pub const FAMILIES: usize = 4;

impl Family {
    pub const ALL: [Family; FAMILIES] = [Family::Mount, Family::File, Family::Net, Family::Process];

    pub const fn name(self) -> &'static str {
        match self {
            Family::Mount => "mount",
            Family::File => "file",
            Family::Net => "net",
            Family::Process => "process",
        }
    }
}

/// The family a syscall number (x86_64) belongs to, if any.
pub const fn family_of(nr: u64) -> Option<Family> {
    match nr {
        // mount, umount2, pivot_root, open_tree, move_mount, fsopen,
        // fsconfig, fsmount, fspick, mount_setattr
        165 | 166 | 155 | 428 | 429 | 430 | 431 | 432 | 433 | 442 => Some(Family::Mount),
        // read, write, open, close, stat, fstat, lstat, lseek, pread64,
        // pwrite64, readv, writev, access, fcntl, fsync, rename, mkdir,
        // rmdir, unlink, readlink, chmod, chown, getdents64, openat,
        // mkdirat, newfstatat, unlinkat, renameat, readlinkat, statx,
        // openat2, faccessat2
        0..=8
        | 17..=21
        | 72
        | 74
        | 82..=84
        | 87
        | 89
        | 90
        | 92
        | 217
        | 257
        | 258
        | 262
        | 263
        | 264
        | 267
        | 332
        | 437
        | 439 => Some(Family::File),
        // socket .. getsockopt, accept4, recvmmsg, sendmmsg
        41..=55 | 288 | 299 | 307 => Some(Family::Net),
        // clone, fork, vfork, execve, exit, wait4, kill, getpid, getppid,
        // exit_group, tgkill, unshare, setns, execveat, clone3
        56..=62 | 39 | 110 | 231 | 234 | 272 | 308 | 322 | 435 => Some(Family::Process),
        _ => None,
    }
}

/// A per-container, per-family counter key.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyKey {
    pub cgroup: u64,
    pub family: u32,
    pub _pad: u32,
}

/// Process events counted per container.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Fork = 0,
    Exec = 1,
    Exit = 2,
}

impl Event {
    pub const ALL: [Event; 3] = [Event::Fork, Event::Exec, Event::Exit];

    pub const fn name(self) -> &'static str {
        match self {
            Event::Fork => "fork",
            Event::Exec => "exec",
            Event::Exit => "exit",
        }
    }
}

/// A per-container, per-event counter key.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKey {
    pub cgroup: u64,
    pub event: u32,
    pub _pad: u32,
}

/// The syscalls warren's seccomp filter hands to the interceptor (x86_64
/// numbers): the `Notify` rows of [`policy::RULES`] (a test holds them
/// equal). The probes time these through seccomp.
pub const fn intercepted(nr: u64) -> bool {
    matches!(nr, 165 | 166 | 133 | 259)
}

/// How many log2 buckets the latency histogram has. Bucket `i` counts the
/// calls that took less than 2^i ns and at least 2^(i-1) ns; the last one
/// also holds everything longer (2^31 ns is about 2.1 s).
pub const LATENCY_BUCKETS: usize = 32;

/// The bucket of a duration in ns.
pub const fn latency_bucket(ns: u64) -> usize {
    let i = (64 - ns.leading_zeros()) as usize;
    if i < LATENCY_BUCKETS {
        i
    } else {
        LATENCY_BUCKETS - 1
    }
}

/// A container's histogram of the time its intercepted syscalls spent in
/// seccomp, that is, waiting for the interceptor's answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub buckets: [u64; LATENCY_BUCKETS],
    pub sum_ns: u64,
}

impl Latency {
    pub const ZERO: Latency = Latency {
        buckets: [0; LATENCY_BUCKETS],
        sum_ns: 0,
    };

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// How many intercepted calls can be in flight at once, node-wide.
pub const MAX_IN_FLIGHT: u32 = 16384;

/// A task waiting inside an intercepted syscall: since when, and the
/// container it belongs to (the wake-up runs in the interceptor's context,
/// so the cgroup is taken when the wait starts).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub since_ns: u64,
    pub cgroup: u64,
}

// SAFETY: both keys are repr(C), Copy, and have no implicit padding (the
// padding is an explicit field), so any bytes are a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FamilyKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for EventKey {}
// SAFETY: repr(C), Copy, only u64 fields, so no padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Latency {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_fall_in_their_families() {
        assert_eq!(family_of(165), Some(Family::Mount));
        assert_eq!(family_of(257), Some(Family::File));
        assert_eq!(family_of(41), Some(Family::Net));
        assert_eq!(family_of(110), Some(Family::Process));
        assert_eq!(family_of(35), None); // nanosleep
        assert_eq!(core::mem::size_of::<FamilyKey>(), 16);
        assert_eq!(core::mem::size_of::<EventKey>(), 16);
    }

    #[test]
    fn durations_fall_in_log2_buckets() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 1);
        assert_eq!(latency_bucket(1023), 10);
        assert_eq!(latency_bucket(1024), 11);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        assert!(intercepted(165) && intercepted(166) && !intercepted(39));
        assert_eq!(core::mem::size_of::<Latency>(), 8 * (LATENCY_BUCKETS + 1));
    }

    #[test]
    fn intercepted_is_the_policy_tables_notify_rows() {
        for nr in 0..1024u64 {
            let in_table = policy::RULES
                .iter()
                .any(|r| r.action == policy::Action::Notify && r.nr == Some(nr));
            assert_eq!(intercepted(nr), in_table, "syscall {nr}");
        }
    }

    #[test]
    fn only_pure_propagation_changes_pass() {
        use policy::*;
        assert!(is_propagation_only(MS_PRIVATE));
        assert!(is_propagation_only(MS_SLAVE | MS_REC));
        assert!(is_propagation_only(MS_SHARED | MS_REC | MS_SILENT));
        assert!(!is_propagation_only(0));
        assert!(!is_propagation_only(MS_PRIVATE | MS_SHARED));
        assert!(!is_propagation_only(0xC0ED_0000 | MS_PRIVATE), "MS_MGC_VAL");
        assert!(!is_propagation_only(0x1000 | MS_PRIVATE), "MS_BIND");
        assert!(!is_propagation_only((1 << 40) | MS_PRIVATE), "high bits");
    }

    #[test]
    fn family_names_are_distinct() {
        for (i, a) in Family::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &Family::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
