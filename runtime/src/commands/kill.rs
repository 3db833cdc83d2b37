use libcgroups::common::CgroupManager;
use libcontainer::container::ContainerStatus;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::cli::{Globals, Kill};
use crate::container::{cgroup_manager, load};
use crate::error::RuntimeError;
use crate::signal;

pub fn kill(args: Kill, globals: &Globals) -> Result<(), RuntimeError> {
    let signo = signal::parse(&args.signal)?;
    let mut container = load(&globals.root, &args.container_id)?;
    let stopped = container.status() == ContainerStatus::Stopped;
    if stopped && !args.all {
        return Err(RuntimeError::NotRunning(args.container_id));
    }
    let result = match Signal::try_from(signo) {
        Ok(sig) => container.kill(sig, args.all).map_err(RuntimeError::from),
        // Real-time signals (systemd halts on SIGRTMIN+3) are outside what
        // libcontainer's Signal can carry: send them directly.
        Err(_) => raw_kill(&container, signo, args.all),
    };
    match result {
        // runc: `kill --all` of a container that has already exited is a
        // success. CRI sends it to every exited container it stops.
        Err(_) if stopped => Ok(()),
        other => other,
    }
}

fn send(pid: Pid, signo: i32) -> Result<(), RuntimeError> {
    // SAFETY: kill(2) takes plain integers and touches no memory.
    let rc = unsafe { libc::kill(pid.as_raw(), signo) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(RuntimeError::io("cannot signal pid", pid.to_string(), err))
}

fn raw_kill(
    container: &libcontainer::container::Container,
    signo: i32,
    all: bool,
) -> Result<(), RuntimeError> {
    if all {
        let manager = cgroup_manager(container)?;
        let pids = manager
            .get_all_pids()
            .map_err(|e| RuntimeError::from(libcontainer::error::LibcontainerError::from(e)))?;
        pids.into_iter().try_for_each(|pid| send(pid, signo))
    } else {
        let pid = container
            .pid()
            .ok_or_else(|| RuntimeError::NotRunning(container.id().to_owned()))?;
        send(pid, signo)
    }
}
