//! warren's eBPF probes: per-container syscall counting, in the kernel.
//!
//! Every program first looks the task's cgroup (v2) id up in TRACKED, the
//! map of containers the interceptor fills; a task outside warren's
//! containers costs that one lookup and nothing more.
#![no_std]
#![no_main]

use aya_ebpf::helpers::bpf_get_current_cgroup_id;
use aya_ebpf::macros::{map, raw_tracepoint};
use aya_ebpf::maps::{HashMap, PerCpuHashMap};
use aya_ebpf::programs::RawTracePointContext;
use interceptor_ebpf::MAX_CONTAINERS;

/// cgroup id -> 1, for every container being tracked.
#[map]
static TRACKED: HashMap<u64, u32> = HashMap::with_max_entries(MAX_CONTAINERS, 0);

/// cgroup id -> syscalls entered, per CPU.
#[map]
static SYSCALLS: PerCpuHashMap<u64, u64> = PerCpuHashMap::with_max_entries(MAX_CONTAINERS, 0);

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(_ctx: RawTracePointContext) -> i32 {
    match try_sys_enter() {
        Ok(r) | Err(r) => r,
    }
}

fn try_sys_enter() -> Result<i32, i32> {
    // SAFETY: the helper takes no arguments and reads the current task.
    let cg = unsafe { bpf_get_current_cgroup_id() };
    // SAFETY: the value is only read for its presence.
    if unsafe { TRACKED.get(&cg) }.is_none() {
        return Ok(0);
    }
    match SYSCALLS.get_ptr_mut(&cg) {
        // SAFETY: the per-CPU slot belongs to this CPU while the program runs.
        Some(n) => unsafe { *n += 1 },
        None => {
            let _ = SYSCALLS.insert(&cg, &1, 0);
        }
    }
    Ok(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program that could reach here.
    unsafe { core::hint::unreachable_unchecked() }
}
