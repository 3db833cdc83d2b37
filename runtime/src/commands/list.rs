use crate::cli::Globals;
use crate::container::{list as all_containers, runc_state};
use crate::error::RuntimeError;

pub fn list(args: liboci_cli::List, globals: &Globals) -> Result<(), RuntimeError> {
    let states: Vec<_> = all_containers(&globals.root)
        .iter()
        .map(runc_state)
        .collect();
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            // runc prints `null` for no containers.
            let doc = if states.is_empty() {
                "null".to_owned()
            } else {
                serde_json::to_string(&states).map_err(|e| {
                    RuntimeError::io("cannot encode", "list", std::io::Error::other(e))
                })?
            };
            println!("{doc}");
        }
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &states {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                    s.id,
                    s.pid,
                    s.status,
                    s.bundle.display(),
                    s.created,
                    s.owner
                );
            }
        }
        other => {
            return Err(RuntimeError::ConfigInvalid {
                path: "--format".into(),
                reason: format!("{other:?} is not a format: use table or json"),
            });
        }
    }
    Ok(())
}
