use crate::cli::{COMMIT, VERSION};
use crate::error::RuntimeError;
use crate::features::{Capabilities, document};

pub fn features() -> Result<(), RuntimeError> {
    let doc = document(&Capabilities::of_this_build(), VERSION, COMMIT);
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| RuntimeError::io("cannot encode", "features", std::io::Error::other(e)))?;
    println!("{text}");
    Ok(())
}
