use crate::cli::Globals;
use crate::container::load;
use crate::error::RuntimeError;

pub fn events(args: liboci_cli::Events, globals: &Globals) -> Result<(), RuntimeError> {
    let mut container = load(&globals.root, &args.container_id)?;
    container.events(args.interval, args.stats)?;
    Ok(())
}
