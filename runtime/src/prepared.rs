//! Prepared bundles: the rewritten config.json that libcontainer reads.
//!
//! They live in `<root>/@prepared/<id>/`. `@` is not allowed in container
//! ids, so the directory can never collide with a container's state.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::RuntimeError;

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join("@prepared").join(id)
}

/// Writes the spec as `<dir>/config.json`.
pub fn write(root: &Path, id: &str, spec: &Spec) -> Result<PathBuf, RuntimeError> {
    let dir = dir(root, id);
    std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io("cannot create", &dir, e))?;
    let path = dir.join("config.json");
    let text = serde_json::to_vec(spec)
        .map_err(|e| RuntimeError::io("cannot encode", &path, std::io::Error::other(e)))?;
    // Written whole and renamed into place: the interceptor may read it
    // while create rewrites it.
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| RuntimeError::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io("cannot write", &path, e))?;
    Ok(dir)
}

pub fn remove(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let dir = dir(root, id);
    // Everything mounted under it was unmounted first; a mount left there
    // is an error, and nothing under it is touched.
    warren_sys::remove_tree(&dir).map_err(RuntimeError::from)
}

/// A prepared container's spec.
pub fn load(root: &Path, id: &str) -> Result<Spec, RuntimeError> {
    let path = dir(root, id).join("config.json");
    Spec::load(&path).map_err(|e| RuntimeError::ConfigInvalid {
        path,
        reason: e.to_string(),
    })
}

/// The cgroupsPath of a prepared container's spec.
pub fn cgroups_path(root: &Path, id: &str, spec: &Spec) -> Result<PathBuf, RuntimeError> {
    let path = dir(root, id).join("config.json");
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .ok_or_else(|| RuntimeError::ConfigInvalid {
            path,
            reason: "the prepared spec has no cgroupsPath".to_owned(),
        })
}
