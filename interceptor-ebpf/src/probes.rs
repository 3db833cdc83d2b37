//! warren's eBPF probes: per-container syscall counting, in the kernel.
//!
//! Every program first looks the task's cgroup (v2) id up in TRACKED, the
//! map of containers the interceptor fills; a task outside warren's
//! containers costs that one lookup and nothing more.
#![no_std]
#![no_main]
// The BPF target has atomic adds but not compare-and-swap, so core's
// atomic types have no fetch_add there; the intrinsic is the add itself.
#![feature(core_intrinsics)]
#![allow(internal_features)]

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::EbpfContext;
use aya_ebpf::helpers::{
    bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_get_current_task_btf, bpf_ktime_get_ns, bpf_probe_read_kernel,
    bpf_task_pt_regs,
};
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{Array, HashMap, LruHashMap, PerCpuHashMap};
use aya_ebpf::programs::RawTracePointContext;
use interceptor_ebpf::{
    Event, EventKey, FAMILIES, FamilyKey, LATENCY_BUCKETS, Latency, MAX_CONTAINERS, MAX_IN_FLIGHT,
    MAX_LEVELS, Waiting, family_of, intercepted, latency_bucket,
};

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

/// task (its task_struct's address) -> since when it waits inside an
/// intercepted syscall, and its container.
#[map]
static WAITING: LruHashMap<u64, Waiting> = LruHashMap::with_max_entries(MAX_IN_FLIGHT, 0);

/// [0]: the interceptor's tgid, set by the interceptor when it loads the
/// probes. Its wake-ups of waiting tasks are the answers to notifications.
#[map]
static INTERCEPTOR: Array<u32> = Array::with_max_entries(1, 0);

/// cgroup id -> histogram of the time intercepted syscalls spent in seccomp.
/// Not per CPU: these calls already cost a round trip to user space.
#[map]
static LATENCY: HashMap<u64, Latency> = HashMap::with_max_entries(MAX_CONTAINERS, 0);

/// The depths (in the cgroup2 tree) of the tracked containers' cgroups,
/// 0 for a free slot; the interceptor fills it.
#[map]
static LEVELS: Array<u32> = Array::with_max_entries(MAX_LEVELS, 0);

/// The tracked cgroup of the current task, if it is in one or below one.
fn tracked_cgroup() -> Option<u64> {
    // SAFETY: the helper takes no arguments and reads the current task.
    let cg = unsafe { bpf_get_current_cgroup_id() };
    // SAFETY: the value is only read for its presence.
    if unsafe { TRACKED.get(&cg) }.is_some() {
        return Some(cg);
    }
    for i in 0..MAX_LEVELS {
        let level = match LEVELS.get(i) {
            Some(&l) if l != 0 => l,
            _ => continue,
        };
        // SAFETY: the helper reads the current task's cgroup; 0 when the
        // task is not that deep.
        let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
        // SAFETY: the value is only read for its presence.
        if ancestor != 0 && ancestor != cg && unsafe { TRACKED.get(&ancestor) }.is_some() {
            return Some(ancestor);
        }
    }
    None
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

/// Byte offset of `orig_ax` (the syscall number) in x86_64's `struct pt_regs`.
const ORIG_AX: usize = 15 * 8;

/// The number of the syscall the current task is in.
fn current_syscall() -> Option<u64> {
    // SAFETY: both helpers take the current task, which is valid while the
    // program runs; the result is only read through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) };
    if regs == 0 {
        return None;
    }
    // SAFETY: a checked kernel read; a bad address gives an error, not a fault.
    unsafe { bpf_probe_read_kernel((regs as usize + ORIG_AX) as *const u64) }.ok()
}

/// The states of a task that sleeps waiting for something (interruptible or
/// not); and those of one stopped, traced or frozen, which can happen on the
/// way back to user space after a syscall returned.
const SLEEPING: u64 = 0x1 | 0x2;
const STOPPED: u64 = 0x4 | 0x8 | 0x8000;

/// A task of a tracked container goes to sleep inside an intercepted
/// syscall: for a trapped call, that is where it waits for the interceptor.
/// Each such sleep (re)stamps the task, so a stamp never outlives the call
/// it was made in by more than the next sleep. (seccomp runs before the
/// sys_enter tracepoint, and a call it answers never reaches it, so
/// sys_enter cannot be the start.)
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    // SAFETY: sched_switch's raw arguments are (bool preempt, struct
    // task_struct *prev, struct task_struct *next, unsigned int prev_state),
    // each widened to u64; reading args[0] and args[3] is what the verifier
    // allows.
    let (preempt, state) = unsafe {
        let args = ctx.as_ptr() as *const u64;
        (*args, *args.add(3))
    };
    // A preempted task is runnable, possibly already back in user space.
    if preempt != 0 || state & SLEEPING == 0 || state & STOPPED != 0 {
        return 0;
    }
    // prev is the current task here: the switch has not happened yet.
    let Some(cgroup) = tracked_cgroup() else {
        return 0;
    };
    if !current_syscall().is_some_and(intercepted) {
        return 0;
    }
    // SAFETY: the helpers read the current task's address and the clock.
    let (task, now) = unsafe { (bpf_get_current_task(), bpf_ktime_get_ns()) };
    let _ = WAITING.insert(
        &task,
        &Waiting {
            since_ns: now,
            cgroup,
        },
        0,
    );
    0
}

/// The interceptor wakes a waiting task: that is its answer arriving, and
/// the wait goes in the task's container's histogram. Wake-ups by anyone
/// else (a signal, the kernel's own work in a continued call) cost one
/// comparison.
#[raw_tracepoint(tracepoint = "sched_waking")]
pub fn sched_waking(ctx: RawTracePointContext) -> i32 {
    let Some(interceptor) = INTERCEPTOR.get(0).copied() else {
        return 0;
    };
    if interceptor == 0 || (bpf_get_current_pid_tgid() >> 32) as u32 != interceptor {
        return 0;
    }
    // SAFETY: sched_waking's raw argument is (struct task_struct *p); the
    // pointer is only used as a key.
    let task = unsafe { *(ctx.as_ptr() as *const u64) };
    // SAFETY: the value is copied out at once.
    let Some(w) = (unsafe { WAITING.get(&task) }).copied() else {
        return 0;
    };
    let _ = WAITING.remove(&task);
    // SAFETY: the helper reads the clock.
    let ns = unsafe { bpf_ktime_get_ns() }.saturating_sub(w.since_ns);
    if LATENCY.get_ptr_mut(&w.cgroup).is_none() {
        // BPF_NOEXIST: a racing insert from another CPU wins, and is used.
        let _ = LATENCY.insert(&w.cgroup, &Latency::ZERO, 1);
    }
    let Some(h) = LATENCY.get_ptr_mut(&w.cgroup) else {
        return 0;
    };
    // The mask changes nothing (the bucket is already below the count, a
    // power of two) but lets the verifier see the index is in bounds.
    const _: () = assert!(LATENCY_BUCKETS.is_power_of_two());
    let b = latency_bucket(ns) & (LATENCY_BUCKETS - 1);
    // SAFETY: the map value lives as long as the entry, which only user
    // space removes, after the container is gone; other CPUs update it too,
    // hence the atomic adds.
    unsafe {
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*h).buckets[b], 1);
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*h).sum_ns, ns);
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
    // A task that dies inside an intercepted call leaves no stamp for the
    // next task with its id.
    if tracked_cgroup().is_some() {
        // SAFETY: the helper reads the current task's address.
        let _ = WAITING.remove(&unsafe { bpf_get_current_task() });
    }
    process_event(Event::Exit)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program that could reach here.
    unsafe { core::hint::unreachable_unchecked() }
}
