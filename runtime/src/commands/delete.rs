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
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| RuntimeError::io("cannot remove", &dir, e))?;
            }
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
    container.delete(force)?;
    syscont::teardown(globals, &globals.root, id)
}
