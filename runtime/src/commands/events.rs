//! `events`: runc's event stream. With `--stats`, one stats event; without,
//! a stats event every `--interval` seconds until the container stops.

use libcgroups::common::CgroupManager;
use libcgroups::stats::{MemoryData, Stats};
use libcontainer::container::ContainerStatus;
use serde_json::{Value, json};

use crate::cli::Globals;
use crate::container::{cgroup_manager, load};
use crate::error::RuntimeError;

fn memory_data(m: &MemoryData) -> Value {
    json!({"usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count, "limit": m.limit})
}

/// Converts libcgroups' stats to runc's `types.Stats` field names.
pub fn runc_stats(s: &Stats) -> Value {
    json!({
        "cpu": {
            "usage": {
                "total": s.cpu.usage.usage_total,
                "percpu": s.cpu.usage.per_core_usage_total,
                "kernel": s.cpu.usage.usage_kernel,
                "user": s.cpu.usage.usage_user,
            },
            "throttling": {
                "periods": s.cpu.throttling.periods,
                "throttledPeriods": s.cpu.throttling.throttled_periods,
                "throttledTime": s.cpu.throttling.throttled_time,
            },
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": memory_data(&s.memory.memory),
            "swap": memory_data(&s.memory.memswap),
            "kernel": memory_data(&s.memory.kernel),
            "kernelTCP": memory_data(&s.memory.kernel_tcp),
            "raw": s.memory.stats,
        },
        "pids": { "current": s.pids.current, "limit": s.pids.limit },
    })
}

pub fn events(args: liboci_cli::Events, globals: &Globals) -> Result<(), RuntimeError> {
    let id = args.container_id;
    loop {
        let container = load(&globals.root, &id)?;
        if container.status() == ContainerStatus::Stopped {
            return Err(RuntimeError::NotRunning(id));
        }
        let stats = cgroup_manager(&container)?
            .stats()
            .map_err(libcontainer::error::LibcontainerError::from)?;
        let event = json!({"type": "stats", "id": id, "data": runc_stats(&stats)});
        println!("{event}");
        if args.stats {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(u64::from(
            args.interval.max(1),
        )));
    }
}
