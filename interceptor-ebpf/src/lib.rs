//! Types shared by warren's eBPF probes and the interceptor that reads their
//! maps. `no_std`, `#[repr(C)]` and free of implicit padding, so that both
//! sides agree on every byte.
#![no_std]

/// The most containers the probes track at once; every map is bounded by it.
pub const MAX_CONTAINERS: u32 = 4096;

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

// SAFETY: both keys are repr(C), Copy, and have no implicit padding (the
// padding is an explicit field), so any bytes are a valid value.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FamilyKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for EventKey {}

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
    fn family_names_are_distinct() {
        for (i, a) in Family::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &Family::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
