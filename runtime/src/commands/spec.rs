use std::path::PathBuf;

use oci_spec::runtime::Spec;

use crate::error::RuntimeError;

/// Writes runc's default config.json (or its rootless variant) into the
/// bundle, refusing to overwrite one that exists.
pub fn spec(args: liboci_cli::Spec) -> Result<(), RuntimeError> {
    let dir = args.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(RuntimeError::ConfigInvalid {
            path,
            reason: "already exists; remove it first".into(),
        });
    }
    let mut spec = if args.rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("warren".to_owned()));
    let text = serde_json::to_string_pretty(&spec)
        .map_err(|e| RuntimeError::io("cannot encode", &path, std::io::Error::other(e)))?;
    std::fs::write(&path, text + "\n").map_err(|e| RuntimeError::io("cannot write", &path, e))
}
