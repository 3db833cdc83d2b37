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

#[cfg(test)]
mod tests {
    use super::*;

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
