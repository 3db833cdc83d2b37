//! Spec mounts that ask for an ID mapping (OCI `uidMappings`/`gidMappings`,
//! or the `idmap`/`ridmap` option). warren makes them itself, so that
//! libcontainer only sees plain binds of already mapped sources.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, Spec};

/// One mount to prepare: its index in `mounts`, its source, and the mapping
/// to use (empty when the container's own applies).
#[derive(Debug, Clone, PartialEq)]
pub struct IdmappedMount {
    pub index: usize,
    pub source: PathBuf,
    pub uids: Vec<LinuxIdMapping>,
    pub gids: Vec<LinuxIdMapping>,
    pub recursive: bool,
}

fn is_idmap_option(o: &str) -> bool {
    o == "idmap" || o == "ridmap"
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"))
}

/// Bind mounts to stage: every bind whose source the container's root may
/// not be able to reach (runtimes keep them in 0700 directories), as
/// (index, source, recursive), except those that want an ID mapping.
pub fn bind_mounts(spec: &Spec) -> Vec<(usize, PathBuf, bool)> {
    let Some(mounts) = spec.mounts() else {
        return Vec::new();
    };
    let idmapped: Vec<usize> = idmapped_mounts(spec).iter().map(|m| m.index).collect();
    mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| is_bind(m) && !idmapped.contains(i))
        .filter_map(|(i, m)| {
            let recursive = m
                .options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o == "rbind"));
            Some((i, m.source().clone()?, recursive))
        })
        .collect()
}

pub fn idmapped_mounts(spec: &Spec) -> Vec<IdmappedMount> {
    let Some(mounts) = spec.mounts() else {
        return Vec::new();
    };
    mounts
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            let options = m.options().clone().unwrap_or_default();
            let uids = m.uid_mappings().clone().unwrap_or_default();
            let gids = m.gid_mappings().clone().unwrap_or_default();
            let wants = options.iter().any(|o| is_idmap_option(o)) || !uids.is_empty();
            let source = m.source().clone()?;
            wants.then(|| IdmappedMount {
                index,
                source,
                uids,
                gids,
                recursive: options.iter().any(|o| o == "ridmap" || o == "rbind"),
            })
        })
        .collect()
}

/// Points each prepared mount at its staging path, as a plain bind.
pub fn point_mounts_at(spec: &mut Spec, staged: &[(usize, &Path)]) {
    let Some(mounts) = spec.mounts_mut() else {
        return;
    };
    for (index, path) in staged {
        let Some(m) = mounts.get_mut(*index) else {
            continue;
        };
        m.set_source(Some(path.to_path_buf()));
        m.set_typ(Some("bind".to_owned()));
        let mut options: Vec<String> = m
            .options()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !is_idmap_option(o) && o != "bind" && o != "rbind")
            .collect();
        options.push("rbind".to_owned());
        m.set_options(Some(options));
        m.set_uid_mappings(None);
        m.set_gid_mappings(None);
    }
}
