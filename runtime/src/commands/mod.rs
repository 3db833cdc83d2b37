//! One thin function per subcommand. The work is in the library modules.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
mod wait;

use crate::cli::{Command, Globals};
use crate::error::RuntimeError;

/// Runs a subcommand and returns the exit code for the process.
pub fn dispatch(command: Command, globals: &Globals) -> Result<i32, RuntimeError> {
    match command {
        Command::Create(args) => create::create(args, globals).map(|_| 0),
        Command::Start(args) => start::start(&args.container_id, globals).map(|_| 0),
        Command::Run(args) => run::run(args, globals),
        Command::State(args) => state::state(&args.container_id, globals).map(|_| 0),
        Command::Kill(args) => kill::kill(args, globals).map(|_| 0),
        Command::Delete(args) => delete::delete(&args.container_id, args.force, globals).map(|_| 0),
        Command::Exec(args) => exec::exec(args, globals),
        Command::Ps(args) => ps::ps(args, globals).map(|_| 0),
        Command::List(args) => list::list(args, globals).map(|_| 0),
        Command::Pause(args) => pause::pause(&args.container_id, globals).map(|_| 0),
        Command::Resume(args) => pause::resume(&args.container_id, globals).map(|_| 0),
        Command::Events(args) => events::events(args, globals).map(|_| 0),
        Command::Update(args) => update::update(args, globals).map(|_| 0),
        Command::Spec(args) => spec::spec(args).map(|_| 0),
        Command::Features(_) => features::features().map(|_| 0),
    }
}
