use libcontainer::container::ContainerStatus;

use crate::cli::Globals;
use crate::container::{container_dir, load, status_name};
use crate::error::RuntimeError;
use crate::syscont;

pub fn delete(id: &str, force: bool, globals: &Globals) -> Result<(), RuntimeError> {
    let mut container = match load(&globals.root, id) {
        Ok(c) => c,
        // runc: `delete --force` of a container that is not there succeeds;
        // shims rely on it to make their own clean-up idempotent.
        Err(RuntimeError::NotExist(_)) if force => {
            let dir = container_dir(&globals.root, id)?;
            warren_sys::remove_tree(&dir)?;
            return syscont::teardown(globals, &globals.root, id);
        }
        Err(e) => return Err(e),
    };
    let status = container.status();
    if !force && !matches!(status, ContainerStatus::Stopped | ContainerStatus::Created) {
        return Err(RuntimeError::WrongState {
            id: id.to_owned(),
            status: status_name(status).to_owned(),
            action: "delete without --force",
            wanted: "stopped or created",
        });
    }
    // Child cgroups the container made (it owns its cgroups) would keep
    // libcontainer from removing the container's own: their processes go
    // first, then the children.
    if let Ok(config) = container.spec() {
        if !matches!(status, ContainerStatus::Stopped) {
            let _ = container.kill(nix::sys::signal::Signal::SIGKILL, true);
            wait_stopped(&mut container);
        }
        crate::cgroups::remove_children(&config.cgroup_path);
        container.delete(force)?;
        crate::cgroups::remove_own_cgroups(&config.cgroup_path);
    } else {
        container.delete(force)?;
    }
    syscont::teardown(globals, &globals.root, id)
}

/// Waits, briefly, for a killed container's init to be gone.
fn wait_stopped(container: &mut libcontainer::container::Container) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if container.refresh_status().is_ok() && container.status() == ContainerStatus::Stopped {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
