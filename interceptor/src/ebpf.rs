//! Loading the eBPF probes and reading what they counted.

use std::sync::Mutex;

use aya::maps::{HashMap, MapData, PerCpuHashMap};
use aya::programs::RawTracePoint;
use interceptor_ebpf::{Event, EventKey, Family, FamilyKey, LATENCY_BUCKETS, Latency};

/// The probes' object, embedded at build time (empty when not built).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/warren-probes.o"));

pub struct Probes {
    // Holds the attached program.
    _ebpf: aya::Ebpf,
    tracked: Mutex<HashMap<MapData, u64, u32>>,
    syscalls: Mutex<PerCpuHashMap<MapData, u64, u64>>,
    families: Mutex<PerCpuHashMap<MapData, FamilyKey, u64>>,
    events: Mutex<PerCpuHashMap<MapData, EventKey, u64>>,
    latency: Mutex<HashMap<MapData, u64, Latency>>,
    levels: Mutex<aya::maps::Array<MapData, u32>>,
}

/// An error and its causes on one line: aya's load errors keep the errno
/// in their source.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Sums a per-CPU counter; absent is zero.
fn sum<K: aya::Pod>(map: &Mutex<PerCpuHashMap<MapData, K, u64>>, key: &K) -> u64 {
    let m = map.lock().unwrap_or_else(|p| p.into_inner());
    m.get(key, 0).map(|v| v.iter().sum()).unwrap_or(0)
}

fn take<K: aya::Pod>(
    ebpf: &mut aya::Ebpf,
    name: &str,
) -> Result<Mutex<PerCpuHashMap<MapData, K, u64>>, String> {
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| format!("no {name} map"))?;
    PerCpuHashMap::try_from(map)
        .map(Mutex::new)
        .map_err(|e| format!("{name}: {e}"))
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
        let mut ebpf = aya::Ebpf::load(bytes)
            .map_err(|e| format!("the kernel refused the probes: {}", chain(&e)))?;
        for (program, tracepoint) in [
            ("sys_enter", "sys_enter"),
            ("sched_process_fork", "sched_process_fork"),
            ("sched_process_exec", "sched_process_exec"),
            ("sched_process_exit", "sched_process_exit"),
            ("sched_switch", "sched_switch"),
            ("sched_waking", "sched_waking"),
        ] {
            let prog: &mut RawTracePoint = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("the object has no {program} program"))?
                .try_into()
                .map_err(|e| format!("{program} is not a raw tracepoint: {e}"))?;
            prog.load()
                .map_err(|e| format!("cannot load {program}: {}", chain(&e)))?;
            prog.attach(tracepoint)
                .map_err(|e| format!("cannot attach {program}: {}", chain(&e)))?;
        }
        // The probes credit the interceptor's wake-ups of waiting tasks as
        // answers: tell them who that is.
        let mut me: aya::maps::Array<_, u32> =
            aya::maps::Array::try_from(ebpf.map_mut("INTERCEPTOR").ok_or("no INTERCEPTOR map")?)
                .map_err(|e| format!("INTERCEPTOR: {e}"))?;
        me.set(0, std::process::id(), 0)
            .map_err(|e| format!("INTERCEPTOR: {e}"))?;
        let tracked = HashMap::try_from(ebpf.take_map("TRACKED").ok_or("no TRACKED map")?)
            .map_err(|e| format!("TRACKED: {e}"))?;
        let latency = HashMap::try_from(ebpf.take_map("LATENCY").ok_or("no LATENCY map")?)
            .map_err(|e| format!("LATENCY: {e}"))?;
        let levels = aya::maps::Array::try_from(ebpf.take_map("LEVELS").ok_or("no LEVELS map")?)
            .map_err(|e| format!("LEVELS: {e}"))?;
        let syscalls = take(&mut ebpf, "SYSCALLS")?;
        let families = take(&mut ebpf, "FAMILY_CALLS")?;
        let events = take(&mut ebpf, "PROCESS_EVENTS")?;
        // Loading parsed the kernel's BTF (about 15 MB here), freed by now;
        // hand that heap back instead of keeping it resident for good.
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe { libc::malloc_trim(0) };
        Ok(Probes {
            _ebpf: ebpf,
            tracked: Mutex::new(tracked),
            syscalls,
            families,
            events,
            latency: Mutex::new(latency),
            levels: Mutex::new(levels),
        })
    }

    /// Tracks a container's cgroup, at depth `level` of the cgroup2 tree,
    /// with the cgroups below it.
    pub fn track(&self, cgroup_id: u64, level: u32) -> Result<(), String> {
        {
            let mut l = self.levels.lock().unwrap_or_else(|p| p.into_inner());
            let used: Vec<u32> = (0..interceptor_ebpf::MAX_LEVELS)
                .map(|i| l.get(&i, 0).unwrap_or(0))
                .collect();
            if level != 0 && !used.contains(&level) {
                match used.iter().position(|&v| v == 0) {
                    Some(free) => l.set(free as u32, level, 0).map_err(|e| e.to_string())?,
                    None => tracing::warn!(
                        level,
                        "too many cgroup depths: below this container's cgroup nothing is counted"
                    ),
                }
            }
        }
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
        drop(s);
        let mut f = self.families.lock().unwrap_or_else(|p| p.into_inner());
        for family in Family::ALL {
            let _ = f.remove(&FamilyKey {
                cgroup: cgroup_id,
                family: family as u32,
                _pad: 0,
            });
        }
        drop(f);
        let mut e = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for event in Event::ALL {
            let _ = e.remove(&EventKey {
                cgroup: cgroup_id,
                event: event as u32,
                _pad: 0,
            });
        }
        drop(e);
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = l.remove(&cgroup_id);
    }

    /// The histogram of a cgroup's intercepted calls: per log2 bucket from
    /// about 1 µs up, the upper bound in seconds and the count (not
    /// cumulative; the first bucket also holds anything shorter), and the
    /// sum of their durations in seconds.
    pub fn latency(&self, cgroup_id: u64) -> (Vec<(f64, u64)>, f64) {
        const FIRST: usize = 10;
        let l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = l.get(&cgroup_id, 0).unwrap_or(Latency::ZERO);
        let mut buckets: Vec<(f64, u64)> = (FIRST..LATENCY_BUCKETS)
            .map(|i| {
                let bound = if i + 1 == LATENCY_BUCKETS {
                    f64::INFINITY
                } else {
                    (1u64 << i) as f64 / 1e9
                };
                (bound, h.buckets[i])
            })
            .collect();
        buckets[0].1 += h.buckets[..FIRST].iter().sum::<u64>();
        (buckets, h.sum_ns as f64 / 1e9)
    }

    /// How many cgroups the probes' tracked map holds.
    pub fn tracked(&self) -> usize {
        let t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        t.keys().filter(Result::is_ok).count()
    }

    /// Syscalls per family for a cgroup.
    pub fn families(&self, cgroup_id: u64) -> Vec<(&'static str, u64)> {
        Family::ALL
            .iter()
            .map(|f| {
                (
                    f.name(),
                    sum(
                        &self.families,
                        &FamilyKey {
                            cgroup: cgroup_id,
                            family: *f as u32,
                            _pad: 0,
                        },
                    ),
                )
            })
            .collect()
    }

    /// Forks, execs and exits for a cgroup.
    pub fn events(&self, cgroup_id: u64) -> Vec<(&'static str, u64)> {
        Event::ALL
            .iter()
            .map(|e| {
                (
                    e.name(),
                    sum(
                        &self.events,
                        &EventKey {
                            cgroup: cgroup_id,
                            event: *e as u32,
                            _pad: 0,
                        },
                    ),
                )
            })
            .collect()
    }

    /// Syscalls counted for a cgroup, summed over CPUs.
    pub fn syscalls(&self, cgroup_id: u64) -> u64 {
        sum(&self.syscalls, &cgroup_id)
    }
}
