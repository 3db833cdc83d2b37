//! Loading the eBPF probes and reading what they counted.

use std::sync::Mutex;

use aya::maps::{HashMap, MapData, PerCpuHashMap};
use aya::programs::RawTracePoint;

/// The probes' object, embedded at build time (empty when not built).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/warren-probes.o"));

pub struct Probes {
    // Holds the attached program.
    _ebpf: aya::Ebpf,
    tracked: Mutex<HashMap<MapData, u64, u32>>,
    syscalls: Mutex<PerCpuHashMap<MapData, u64, u64>>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probes")
    }
}

impl Probes {
    /// Loads and attaches the probes, from `object` when given, else the
    /// embedded ones; the error says why they are off.
    pub fn load(object: Option<&std::path::Path>) -> Result<Probes, String> {
        let owned;
        let bytes: &[u8] = match object {
            Some(path) => {
                owned = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                &owned
            }
            None => OBJECT,
        };
        if bytes.is_empty() {
            return Err(
                "the probes were not built into this binary (cargo xtask build-ebpf)".into(),
            );
        }
        let mut ebpf =
            aya::Ebpf::load(bytes).map_err(|e| format!("the kernel refused the probes: {e}"))?;
        let prog: &mut RawTracePoint = ebpf
            .program_mut("sys_enter")
            .ok_or("the object has no sys_enter program")?
            .try_into()
            .map_err(|e| format!("sys_enter is not a raw tracepoint: {e}"))?;
        prog.load()
            .map_err(|e| format!("cannot load sys_enter: {e}"))?;
        prog.attach("sys_enter")
            .map_err(|e| format!("cannot attach sys_enter: {e}"))?;
        let tracked = HashMap::try_from(ebpf.take_map("TRACKED").ok_or("no TRACKED map")?)
            .map_err(|e| format!("TRACKED: {e}"))?;
        let syscalls = PerCpuHashMap::try_from(ebpf.take_map("SYSCALLS").ok_or("no SYSCALLS map")?)
            .map_err(|e| format!("SYSCALLS: {e}"))?;
        Ok(Probes {
            _ebpf: ebpf,
            tracked: Mutex::new(tracked),
            syscalls: Mutex::new(syscalls),
        })
    }

    pub fn track(&self, cgroup_id: u64) -> Result<(), String> {
        let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        t.insert(cgroup_id, 1, 0).map_err(|e| e.to_string())
    }

    /// Stops tracking a cgroup and drops what was counted for it.
    pub fn untrack(&self, cgroup_id: u64) {
        let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let _ = t.remove(&cgroup_id);
        drop(t);
        let mut s = self.syscalls.lock().unwrap_or_else(|p| p.into_inner());
        let _ = s.remove(&cgroup_id);
    }

    /// Syscalls counted for a cgroup, summed over CPUs.
    pub fn syscalls(&self, cgroup_id: u64) -> u64 {
        let s = self.syscalls.lock().unwrap_or_else(|p| p.into_inner());
        s.get(&cgroup_id, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0)
    }
}
