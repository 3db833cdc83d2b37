use crate::cli::Globals;
use crate::container::{load, status_name};
use crate::error::RuntimeError;

pub fn pause(id: &str, globals: &Globals) -> Result<(), RuntimeError> {
    let mut container = load(&globals.root, id)?;
    if !container.can_pause() {
        return Err(RuntimeError::WrongState {
            id: id.to_owned(),
            status: status_name(container.status()).to_owned(),
            action: "pause",
            wanted: "running",
        });
    }
    container.pause()?;
    Ok(())
}

pub fn resume(id: &str, globals: &Globals) -> Result<(), RuntimeError> {
    let mut container = load(&globals.root, id)?;
    if !container.can_resume() {
        return Err(RuntimeError::WrongState {
            id: id.to_owned(),
            status: status_name(container.status()).to_owned(),
            action: "resume",
            wanted: "paused",
        });
    }
    container.resume()?;
    Ok(())
}
