use crate::cli::Globals;
use crate::container::{load, runc_state};
use crate::error::RuntimeError;

pub fn state(id: &str, globals: &Globals) -> Result<(), RuntimeError> {
    let container = load(&globals.root, id)?;
    let doc = serde_json::to_string_pretty(&runc_state(&container))
        .map_err(|e| RuntimeError::io("cannot encode state of", id, std::io::Error::other(e)))?;
    println!("{doc}");
    Ok(())
}
