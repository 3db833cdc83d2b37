//! warren's eBPF probes: per-container syscall counting, in the kernel.
//!
//! Every program first looks the task's cgroup (v2) id up in TRACKED, the
//! map of containers the interceptor fills; a task outside warren's
//! containers costs that one lookup and nothing more.
#![no_std]
#![no_main]

use aya_ebpf::EbpfContext;
use aya_ebpf::helpers::bpf_get_current_cgroup_id;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{HashMap, PerCpuHashMap};
use aya_ebpf::programs::RawTracePointContext;
use interceptor_ebpf::{Event, EventKey, FAMILIES, FamilyKey, MAX_CONTAINERS, family_of};

/// cgroup id -> 1, for every container being tracked.
#[map]
static TRACKED: HashMap<u64, u32> = HashMap::with_max_entries(MAX_CONTAINERS, 0);

/// cgroup id -> syscalls entered, per CPU.
#[map]
static SYSCALLS: PerCpuHashMap<u64, u64> = PerCpuHashMap::with_max_entries(MAX_CONTAINERS, 0);

/// (cgroup id, family) -> syscalls entered, per CPU.
#[map]
static FAMILY_CALLS: PerCpuHashMap<FamilyKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_CONTAINERS * FAMILIES as u32, 0);

/// (cgroup id, event) -> forks, execs and exits, per CPU.
#[map]
static PROCESS_EVENTS: PerCpuHashMap<EventKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_CONTAINERS * 3, 0);

/// The tracked cgroup of the current task, if it is in one.
fn tracked_cgroup() -> Option<u64> {
    // SAFETY: the helper takes no arguments and reads the current task.
    let cg = unsafe { bpf_get_current_cgroup_id() };
    // SAFETY: the value is only read for its presence.
    unsafe { TRACKED.get(&cg) }.map(|_| cg)
}

fn bump<K>(map: &PerCpuHashMap<K, u64>, key: &K) {
    match map.get_ptr_mut(key) {
        // SAFETY: the per-CPU slot belongs to this CPU while the program runs.
        Some(n) => unsafe { *n += 1 },
        None => {
            let _ = map.insert(key, &1, 0);
        }
    }
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let Some(cg) = tracked_cgroup() else { return 0 };
    bump(&SYSCALLS, &cg);
    // SAFETY: sys_enter's raw arguments are (struct pt_regs *, long id);
    // reading args[1] of the context is what the verifier allows.
    let nr = unsafe { *(ctx.as_ptr() as *const u64).add(1) };
    if let Some(family) = family_of(nr) {
        bump(
            &FAMILY_CALLS,
            &FamilyKey {
                cgroup: cg,
                family: family as u32,
                _pad: 0,
            },
        );
    }
    0
}

fn process_event(event: Event) -> i32 {
    if let Some(cg) = tracked_cgroup() {
        bump(
            &PROCESS_EVENTS,
            &EventKey {
                cgroup: cg,
                event: event as u32,
                _pad: 0,
            },
        );
    }
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(_ctx: RawTracePointContext) -> i32 {
    process_event(Event::Fork)
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(_ctx: RawTracePointContext) -> i32 {
    process_event(Event::Exec)
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    process_event(Event::Exit)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program that could reach here.
    unsafe { core::hint::unreachable_unchecked() }
}
