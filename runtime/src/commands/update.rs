use std::io::Read;

use libcgroups::common::{CgroupManager, ControllerOpt};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use crate::cli::Globals;
use crate::container::{cgroup_manager, load};
use crate::error::RuntimeError;

fn invalid(reason: impl Into<String>) -> RuntimeError {
    RuntimeError::ConfigInvalid {
        path: "update".into(),
        reason: reason.into(),
    }
}

/// Builds the resources to apply: the `--resources` file (`-` for stdin), or
/// the individual flags.
pub fn resources_of(args: &liboci_cli::Update) -> Result<LinuxResources, RuntimeError> {
    if let Some(path) = &args.resources {
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| RuntimeError::io("cannot read resources from", "stdin", e))?;
        } else {
            text = std::fs::read_to_string(path)
                .map_err(|e| RuntimeError::io("cannot read resources from", path, e))?;
        }
        return serde_json::from_str(&text).map_err(|source| RuntimeError::ConfigParse {
            path: path.clone(),
            source,
        });
    }
    let mut builder = LinuxResourcesBuilder::default();
    let mut cpu = LinuxCpuBuilder::default();
    let mut cpu_set = false;
    if let Some(v) = args.cpu_period {
        cpu = cpu.period(v);
        cpu_set = true;
    }
    if let Some(v) = args.cpu_quota {
        cpu = cpu.quota(v as i64);
        cpu_set = true;
    }
    if let Some(v) = args.cpu_share {
        cpu = cpu.shares(v);
        cpu_set = true;
    }
    if let Some(v) = &args.cpuset_cpus {
        cpu = cpu.cpus(v.clone());
        cpu_set = true;
    }
    if let Some(v) = &args.cpuset_mems {
        cpu = cpu.mems(v.clone());
        cpu_set = true;
    }
    if cpu_set {
        builder = builder.cpu(cpu.build().map_err(|e| invalid(e.to_string()))?);
    }
    let mut mem = LinuxMemoryBuilder::default();
    let mut mem_set = false;
    if let Some(v) = args.memory {
        mem = mem.limit(v as i64);
        mem_set = true;
    }
    if let Some(v) = args.memory_reservation {
        mem = mem.reservation(v as i64);
        mem_set = true;
    }
    if let Some(v) = args.memory_swap {
        mem = mem.swap(v);
        mem_set = true;
    }
    if mem_set {
        builder = builder.memory(mem.build().map_err(|e| invalid(e.to_string()))?);
    }
    if let Some(limit) = args.pids_limit {
        builder = builder.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        );
    }
    builder.build().map_err(|e| invalid(e.to_string()))
}

pub fn update(args: liboci_cli::Update, globals: &Globals) -> Result<(), RuntimeError> {
    let container = load(&globals.root, &args.container_id)?;
    let resources = resources_of(&args)?;
    let manager = cgroup_manager(&container)?;
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(libcontainer::error::LibcontainerError::from)?;
    Ok(())
}
