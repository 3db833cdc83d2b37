use crate::cli::Globals;
use crate::commands::create::{CreateOptions, create_container};
use crate::commands::delete::delete;
use crate::commands::wait::forward_and_wait;
use crate::error::RuntimeError;

pub fn run(args: liboci_cli::Run, globals: &Globals) -> Result<i32, RuntimeError> {
    let mut container = create_container(
        &CreateOptions {
            id: &args.container_id,
            bundle: &args.bundle,
            pid_file: args.pid_file.as_deref(),
            console_socket: args.console_socket.as_deref(),
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            detach: args.detach,
        },
        globals,
    )?;
    if let Err(err) = container.start() {
        if let Err(cleanup) = delete(&args.container_id, true, globals) {
            tracing::warn!(id = %args.container_id, %cleanup, "cannot delete container that failed to start");
        }
        return Err(err.into());
    }
    if args.detach {
        return Ok(0);
    }
    let pid = container
        .pid()
        .ok_or_else(|| RuntimeError::NotRunning(args.container_id.clone()))?;
    let code = forward_and_wait(pid);
    if !args.keep {
        // The workload's status wins over a failed clean-up, as with runc.
        if let Err(err) = delete(&args.container_id, true, globals) {
            tracing::error!(id = %args.container_id, %err, "cannot delete container after run");
        }
    }
    code
}
