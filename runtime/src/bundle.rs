//! Reading a bundle's config.json with errors that name the problem.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::RuntimeError;

/// A bundle whose config parsed and whose rootfs exists.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    pub spec: Spec,
    /// The rootfs, absolute and canonical.
    pub rootfs: PathBuf,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, RuntimeError> {
        let dir = std::path::absolute(dir).map_err(|e| RuntimeError::io("bundle", dir, e))?;
        if !dir.is_dir() {
            return Err(RuntimeError::BundleMissing(dir));
        }
        let config = dir.join("config.json");
        let text = std::fs::read_to_string(&config).map_err(|source| RuntimeError::ConfigRead {
            path: dir.clone(),
            source,
        })?;
        let spec = parse_spec(&config, &text)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| RuntimeError::ConfigInvalid {
                path: config.clone(),
                reason: "root.path is missing".into(),
            })?;
        let rootfs = dir.join(root.path());
        let rootfs = rootfs
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or(RuntimeError::RootfsMissing(rootfs))?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parses config.json text. Checks what libcontainer would otherwise report
/// vaguely: the version and the presence of `process.args`.
pub fn parse_spec(path: &Path, text: &str) -> Result<Spec, RuntimeError> {
    let spec: Spec = serde_json::from_str(text).map_err(|source| RuntimeError::ConfigParse {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| RuntimeError::ConfigInvalid {
        path: path.to_owned(),
        reason,
    };
    if !spec.version().starts_with("1.") {
        return Err(invalid(format!(
            "ociVersion {:?} is not supported, only 1.x",
            spec.version()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is missing".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args must not be empty".into()));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"process":{{"cwd":"/","user":{{"uid":0,"gid":0}},"args":["/bin/true"]{extra}}}}}"#
        )
    }

    #[test]
    fn parses_a_minimal_spec() {
        let spec = parse_spec(Path::new("c.json"), &minimal("")).expect("valid");
        assert_eq!(spec.version(), "1.0.2");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = parse_spec(Path::new("/b/config.json"), "{\n\"ociVersion\": ").unwrap_err();
        let msg = crate::error::one_line(&err);
        assert!(msg.starts_with("/b/config.json: invalid config"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn wrong_types_are_reported() {
        let text = minimal(r#","terminal":"yes""#);
        let err = parse_spec(Path::new("c.json"), &text).unwrap_err();
        let msg = crate::error::one_line(&err);
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn empty_args_are_refused() {
        let text =
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":[]}}"#;
        let msg = parse_spec(Path::new("c.json"), text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("process.args"), "{msg}");
    }

    #[test]
    fn old_versions_are_refused() {
        let text =
            r#"{"ociVersion":"0.9","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["x"]}}"#;
        let msg = parse_spec(Path::new("c.json"), text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not supported"), "{msg}");
    }
}
