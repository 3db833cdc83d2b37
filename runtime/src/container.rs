//! Finding containers in the state root, and the state JSON runc prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcgroups::common::{AnyCgroupManager, CgroupConfig};
use libcontainer::container::{Container, ContainerStatus};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// Warren's own record of a container, kept beside libcontainer's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WarrenMeta {
    /// The caller's bundle directory.
    pub bundle: PathBuf,
    /// The rootfs the container runs on, as the caller's config named it.
    pub rootfs: PathBuf,
}

const META_FILE: &str = "warren.json";

impl WarrenMeta {
    pub fn save(&self, container_dir: &Path) -> Result<(), RuntimeError> {
        let path = container_dir.join(META_FILE);
        let text = serde_json::to_vec(self)
            .map_err(|e| RuntimeError::io("cannot encode", &path, std::io::Error::other(e)))?;
        std::fs::write(&path, text).map_err(|e| RuntimeError::io("cannot write", &path, e))
    }

    pub fn load(container_dir: &Path) -> Option<WarrenMeta> {
        let text = std::fs::read(container_dir.join(META_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// Checks a container id the way libcontainer does, before anything touches
/// the state root, so that an id can never name a path outside it.
pub fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_owned()))
    }
}

pub fn container_dir(root: &Path, id: &str) -> Result<PathBuf, RuntimeError> {
    validate_id(id)?;
    Ok(root.join(id))
}

/// Loads a container, with `does not exist` when there is none.
pub fn load(root: &Path, id: &str) -> Result<Container, RuntimeError> {
    let dir = container_dir(root, id)?;
    if !dir.join("state.json").exists() {
        return Err(RuntimeError::NotExist(id.to_owned()));
    }
    // libcontainer rewrites state.json in place (truncate, then write): a
    // reader can catch it empty or half written. Such a read is retried
    // briefly; a state file that stays unreadable is an error.
    let mut tries = 0;
    loop {
        match Container::load(dir.clone()) {
            Err(libcontainer::error::LibcontainerError::State(_)) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            other => return Ok(other?),
        }
    }
}

pub fn cgroup_manager(container: &Container) -> Result<AnyCgroupManager, RuntimeError> {
    let config = container.spec()?;
    Ok(libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: container.id().to_owned(),
    })
    .map_err(libcontainer::error::LibcontainerError::from)?)
}

pub fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The state document, with runc's field names and conventions (pid 0 once
/// the container has stopped).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuncState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

pub fn runc_state(container: &Container) -> RuncState {
    let status = container.status();
    let pid = match status {
        ContainerStatus::Stopped => 0,
        _ => container.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let owner = container
        .creator()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A container whose create was interrupted has no record yet.
    let meta = WarrenMeta::load(&container.root).unwrap_or_else(|| WarrenMeta {
        bundle: container.bundle().clone(),
        rootfs: PathBuf::new(),
    });
    RuncState {
        oci_version: oci_spec::runtime::VERSION.to_owned(),
        id: container.id().to_owned(),
        pid,
        status: status_name(status).to_owned(),
        bundle: meta.bundle,
        rootfs: meta.rootfs,
        created: container
            .created()
            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner,
        annotations: container.state.annotations.clone().unwrap_or_default(),
    }
}

/// Every container in the state root, in id order. Entries that cannot be
/// read are skipped: one broken container must not hide the others.
pub fn list(root: &Path) -> Vec<Container> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut containers: Vec<Container> = entries
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| load(root, &e.file_name().to_string_lossy()).ok())
        .collect();
    containers.sort_by(|a, b| a.id().cmp(b.id()));
    containers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_escape_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "A-1", "x_y+z.w", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn state_serializes_with_runc_names() {
        let state = RuncState {
            oci_version: "1.0.2".into(),
            id: "c".into(),
            pid: 0,
            status: "stopped".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: "root".into(),
            annotations: HashMap::new(),
        };
        let v = serde_json::to_value(&state).expect("serializable");
        for key in [
            "ociVersion",
            "id",
            "pid",
            "status",
            "bundle",
            "rootfs",
            "created",
            "owner",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v.get("annotations").is_none());
    }
}
