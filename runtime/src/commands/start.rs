use crate::cli::Globals;
use crate::container::{load, status_name};
use crate::error::RuntimeError;

pub fn start(id: &str, globals: &Globals) -> Result<(), RuntimeError> {
    let mut container = load(&globals.root, id)?;
    if !container.can_start() {
        return Err(RuntimeError::WrongState {
            id: id.to_owned(),
            status: status_name(container.status()).to_owned(),
            action: "start",
            wanted: "created",
        });
    }
    container.start()?;
    Ok(())
}
