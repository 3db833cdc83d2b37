use std::process::Command;

use libcgroups::common::CgroupManager;

use crate::cli::Globals;
use crate::container::{cgroup_manager, load};
use crate::error::RuntimeError;

pub fn ps(args: liboci_cli::Ps, globals: &Globals) -> Result<(), RuntimeError> {
    let container = load(&globals.root, &args.container_id)?;
    let manager = cgroup_manager(&container)?;
    let mut pids: Vec<i32> = manager
        .get_all_pids()
        .map_err(libcontainer::error::LibcontainerError::from)?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    pids.sort_unstable();
    match args.format.as_str() {
        "json" => {
            println!("{}", serde_json::Value::from(pids));
            Ok(())
        }
        "table" => table(&pids, &args.ps_options),
        other => Err(RuntimeError::ConfigInvalid {
            path: "--format".into(),
            reason: format!("{other:?} is not a format: use table or json"),
        }),
    }
}

/// Runs ps(1) on the host and keeps the header and the container's rows.
fn table(pids: &[i32], options: &[String]) -> Result<(), RuntimeError> {
    let options: Vec<&str> = if options.is_empty() {
        vec!["-ef"]
    } else {
        options.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&options)
        .output()
        .map_err(|e| RuntimeError::io("cannot run", "ps", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| RuntimeError::ConfigInvalid {
            path: "ps".into(),
            reason: "its output has no PID column".into(),
        })?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}
