//! The spec warren hands to libcontainer, derived from the caller's.
//!
//! Pure: a spec and the container's facts in, a spec out. The caller's bundle
//! is never modified; the result is written to a prepared bundle under the
//! state root (see [`crate::prepared`]).

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The cgroup parent used when the spec names no cgroup.
pub const CGROUP_PARENT: &str = "/warren";

/// Facts about the container the rewrite needs.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub id: &'a str,
    /// The canonical, absolute rootfs.
    pub rootfs: &'a Path,
}

/// Produces the spec to run.
///
/// - `root.path` becomes absolute, since the prepared bundle lives elsewhere.
/// - A spec without `linux.cgroupsPath` gets `/warren/<id>`, so that
///   containers of every caller land under one parent.
pub fn rewrite(mut spec: Spec, target: &Target<'_>) -> Spec {
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(target.rootfs.to_path_buf());
    spec.set_root(Some(root));

    if let Some(linux) = spec.linux_mut() {
        if linux.cgroups_path().is_none() {
            linux.set_cgroups_path(Some(PathBuf::from(CGROUP_PARENT).join(target.id)));
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
                "process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]},"linux":{}}"#,
        )
        .expect("valid spec")
    }

    fn target() -> Target<'static> {
        Target {
            id: "c1",
            rootfs: Path::new("/b/rootfs"),
        }
    }

    #[test]
    fn root_becomes_absolute_and_keeps_readonly() {
        let out = rewrite(base(), &target());
        let root = out.root().as_ref().expect("root");
        assert_eq!(root.path(), Path::new("/b/rootfs"));
        assert_eq!(root.readonly(), Some(true));
    }

    #[test]
    fn missing_cgroup_path_gets_warren_parent() {
        let out = rewrite(base(), &target());
        let linux = out.linux().as_ref().expect("linux");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/warren/c1"))
        );
    }

    #[test]
    fn given_cgroup_path_is_kept() {
        let mut spec = base();
        let mut linux = spec.linux().clone().expect("linux");
        linux.set_cgroups_path(Some("/kubepods/pod1/c1".into()));
        spec.set_linux(Some(linux));
        let out = rewrite(spec, &target());
        assert_eq!(
            out.linux().as_ref().and_then(|l| l.cgroups_path().clone()),
            Some(PathBuf::from("/kubepods/pod1/c1"))
        );
    }

    #[test]
    fn spec_without_linux_section_is_left_for_validation() {
        let mut spec = base();
        spec.set_linux(None);
        let out = rewrite(spec, &target());
        assert!(out.linux().is_none());
    }
}
