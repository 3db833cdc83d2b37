//! The spec warren hands to libcontainer, derived from the caller's.
//!
//! Pure: a spec and the container's facts in, a spec out. The caller's bundle
//! is never modified; the result is written to a prepared bundle under the
//! state root (see [`crate::prepared`]).
//!
//! Every container is a system container unless its annotations opt out
//! (`io.warren.syscont=false`): it gets user, cgroup, pid, ipc, uts, mount
//! and network namespaces, an exclusive ID mapping, all the capabilities the
//! runtime itself holds, proc, sysfs and cgroup mounts, and, for systemd,
//! tmpfs on /run and /run/lock.

mod mounts;
pub mod procsys;
pub mod seccomp;

pub use mounts::{IdmappedMount, bind_mounts, idmapped_mounts, point_mounts_at};

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCapabilities, LinuxIdMapping, LinuxNamespace, LinuxNamespaceType, Mount, MountBuilder,
    Spec,
};

/// The cgroup parent used when the spec names no cgroup.
pub const CGROUP_PARENT: &str = "/warren";

pub const ANNOTATION_SYSCONT: &str = "io.warren.syscont";
pub const ANNOTATION_HONOR_CAPS: &str = "io.warren.honor-caps";
/// `true`: the container's data directories outlive it.
pub const ANNOTATION_KEEP_DATA: &str = "io.warren.keep-data";
/// Set by warren in a prepared spec: the network namespace warren-runc
/// enters before libcontainer starts the container (see
/// [`move_host_netns`]).
pub const ANNOTATION_HOST_NETNS: &str = "io.warren.host-netns";

/// What warren puts in `listenerMetadata`: the protocol version.
pub const LISTENER_METADATA: &str = "warren/v1";

/// Facts about the container the rewrite needs.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub id: &'a str,
    /// The name of the container's cgroup under [`CGROUP_PARENT`] when the
    /// spec names none: unique per state root and id, since ids are unique
    /// per state root only.
    pub cgroup_name: &'a str,
    /// What `root.path` becomes: the ID-mapped staging mount, or the rootfs
    /// itself for a plain container.
    pub rootfs: &'a Path,
    /// The mappings warren allocated, when the spec brought none.
    pub mappings: Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)>,
    /// The capabilities the runtime holds (its bounding set).
    pub host_caps: &'a [String],
    /// The interceptor's socket, when mount calls are to be intercepted.
    pub listener: Option<&'a Path>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error(
        "the {0} namespace is shared with the host; a system container needs its own (set the annotation io.warren.syscont=false to run a plain container)"
    )]
    SharedNamespace(&'static str),
    #[error("the spec has a user namespace but no uid and gid mappings, and warren allocated none")]
    NoMapping,
}

fn annotation<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Whether the container's data directories are kept after delete.
pub fn keeps_data(spec: &Spec) -> bool {
    annotation(spec, ANNOTATION_KEEP_DATA) == Some("true")
}

/// Whether the container is a system container (the default).
pub fn is_syscont(spec: &Spec) -> bool {
    annotation(spec, ANNOTATION_SYSCONT) != Some("false")
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// Refuses pid, mount and user namespaces that join the host's.
/// `is_host(type, path)` tells whether a namespace path is the host's.
pub fn check_namespaces(
    spec: &Spec,
    is_host: impl Fn(LinuxNamespaceType, &Path) -> bool,
) -> Result<(), SpecError> {
    let Some(namespaces) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return Ok(());
    };
    for ns in namespaces {
        let guarded = matches!(
            ns.typ(),
            LinuxNamespaceType::Pid | LinuxNamespaceType::Mount | LinuxNamespaceType::User
        );
        if let (true, Some(path)) = (guarded, ns.path()) {
            if is_host(ns.typ(), path) {
                return Err(SpecError::SharedNamespace(ns_name(ns.typ())));
            }
        }
    }
    Ok(())
}

/// The user namespace the spec asks for: its path (joining) and mappings.
pub fn user_namespace(spec: &Spec) -> (Option<PathBuf>, Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
    let Some(linux) = spec.linux().as_ref() else {
        return (None, Vec::new(), Vec::new());
    };
    let path = linux
        .namespaces()
        .as_ref()
        .and_then(|n| n.iter().find(|n| n.typ() == LinuxNamespaceType::User))
        .and_then(|n| n.path().clone());
    (
        path,
        linux.uid_mappings().clone().unwrap_or_default(),
        linux.gid_mappings().clone().unwrap_or_default(),
    )
}

/// The process an exec runs in a system container: a root process gets the
/// capabilities the container's init got (all of them, in its user
/// namespace), not the plain-container set the client copied into it, so
/// that root inside is the same root in `exec` as in the init. A non-root
/// process, and a container that honours its spec's capabilities, keep what
/// was given.
pub fn exec_process(
    container: &Spec,
    mut process: oci_spec::runtime::Process,
) -> oci_spec::runtime::Process {
    if !is_syscont(container)
        || annotation(container, ANNOTATION_HONOR_CAPS) == Some("true")
        || process.user().uid() != 0
    {
        return process;
    }
    let Some(init) = container
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
    else {
        return process;
    };
    let mut caps = process.capabilities().clone().unwrap_or_default();
    caps.set_bounding(init.bounding().clone());
    caps.set_effective(init.effective().clone());
    caps.set_permitted(init.permitted().clone());
    process.set_capabilities(Some(caps));
    process.set_apparmor_profile(None);
    process
}

/// The pod sandbox a CRI container belongs to, from the annotations
/// containerd (`io.kubernetes.cri.*`) or CRI-O (`io.kubernetes.cri-o.*`)
/// set; None for a sandbox itself or a container outside a pod.
pub fn pod_sandbox(spec: &Spec) -> Option<&str> {
    for (kind, sandbox) in [
        (
            "io.kubernetes.cri.container-type",
            "io.kubernetes.cri.sandbox-id",
        ),
        (
            "io.kubernetes.cri-o.ContainerType",
            "io.kubernetes.cri-o.SandboxID",
        ),
    ] {
        if annotation(spec, kind) == Some("container") {
            return annotation(spec, sandbox).filter(|s| !s.is_empty());
        }
    }
    None
}

/// Points the spec's user namespace at `path`, with the mappings it has.
pub fn join_user_namespace(
    spec: &mut Spec,
    path: &Path,
    uids: Vec<LinuxIdMapping>,
    gids: Vec<LinuxIdMapping>,
) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != LinuxNamespaceType::User);
    let mut ns = oci_spec::runtime::LinuxNamespace::default();
    ns.set_typ(LinuxNamespaceType::User);
    ns.set_path(Some(path.to_path_buf()));
    namespaces.push(ns);
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(Some(uids));
    linux.set_gid_mappings(Some(gids));
    spec.set_linux(Some(linux));
}

/// A network namespace given by path and owned by the host's user
/// namespace (one a CRI runtime made for a pod and wired with CNI) cannot
/// be joined once the container is in a user namespace of its own, and
/// libcontainer joins it only after that. So warren-runc enters it itself
/// before it starts the container, which then inherits it: the entry leaves
/// the spec and its path goes in an annotation. The container's root has
/// no privilege over it, as with a runtime that joins it first.
pub fn move_host_netns(spec: &mut Spec, owned_by_host: impl Fn(&Path) -> bool) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let Some(namespaces) = linux.namespaces_mut() else {
        return;
    };
    let Some(i) = namespaces.iter().position(|n| {
        n.typ() == LinuxNamespaceType::Network && n.path().as_deref().is_some_and(&owned_by_host)
    }) else {
        return;
    };
    let ns = namespaces.remove(i);
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    if let Some(path) = ns.path() {
        annotations.insert(ANNOTATION_HOST_NETNS.to_owned(), path.display().to_string());
    }
    spec.set_annotations(Some(annotations));
}

/// The network namespace warren-runc enters for a prepared spec.
pub fn host_netns(spec: &Spec) -> Option<PathBuf> {
    annotation(spec, ANNOTATION_HOST_NETNS).map(PathBuf::from)
}

/// `net.ipv4.ping_group_range` names gids as the container sees them, and
/// the kernel refuses a range that reaches past the container's gid map.
/// containerd asks for `0 2147483647` (every gid) for a pod sandbox in the
/// host's user namespace; in a system container that means every gid the
/// container has, so the upper bound is cut to the top of its map.
fn clamp_ping_group_range(linux: &mut oci_spec::runtime::Linux) {
    const KEY: &str = "net.ipv4.ping_group_range";
    let top = linux
        .gid_mappings()
        .as_ref()
        .and_then(|maps| {
            maps.iter()
                .map(|m| u64::from(m.container_id()) + u64::from(m.size()))
                .max()
        })
        .map(|end| end.saturating_sub(1));
    let Some(top) = top else { return };
    let Some(sysctl) = linux.sysctl_mut() else {
        return;
    };
    let Some(value) = sysctl.get(KEY) else { return };
    let parts: Vec<u64> = value
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if let [low, high] = parts[..] {
        if high > top && low <= top {
            sysctl.insert(KEY.to_owned(), format!("{low} {top}"));
        }
    }
}

/// Character devices engines inside need beyond the runtime's defaults
/// (libcgroups allows null, zero, full, random, urandom, tty, the console
/// pty, ptmx, /dev/pts and /dev/net/tun): /dev/fuse, for fuse-overlayfs and
/// buildkit.
pub const ENGINE_DEVICES: &[(i64, i64)] = &[(10, 229)];

/// A system container's devices cgroup: deny everything, then the spec's
/// own rules for named devices (`docker run --device`), then what engines
/// inside need; libcgroups adds runc's default allow-list after these. A
/// rule that allows a whole type or major (a privileged spec's `a *:*
/// rwm`) is dropped: root inside must not reach the host's devices.
fn confine_devices(linux: &mut oci_spec::runtime::Linux) {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let rule = |allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some("rwm".to_owned()));
        r
    };
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = vec![rule(false, LinuxDeviceType::A, None, None)];
    rules.extend(
        resources
            .devices()
            .iter()
            .flatten()
            .filter(|r| {
                r.allow()
                    && matches!(r.typ(), Some(LinuxDeviceType::C | LinuxDeviceType::B))
                    && r.major().is_some_and(|m| m >= 0)
                    && r.minor().is_some_and(|m| m >= 0)
            })
            .cloned(),
    );
    for &(major, minor) in ENGINE_DEVICES {
        rules.push(rule(true, LinuxDeviceType::C, Some(major), Some(minor)));
    }
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
}

/// Produces the spec to run.
pub fn rewrite(mut spec: Spec, target: &Target<'_>) -> Result<Spec, SpecError> {
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(target.rootfs.to_path_buf());
    spec.set_root(Some(root));

    let syscont = is_syscont(&spec);
    let honor_caps = annotation(&spec, ANNOTATION_HONOR_CAPS) == Some("true");
    let systemd = runs_systemd(&spec);

    let Some(linux) = spec.linux_mut() else {
        // libcontainer reports the missing section.
        return Ok(spec);
    };
    if linux.cgroups_path().is_none() {
        linux.set_cgroups_path(Some(PathBuf::from(CGROUP_PARENT).join(target.cgroup_name)));
    }
    if !syscont {
        return Ok(spec);
    }

    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    for typ in [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
    ] {
        if !namespaces.iter().any(|n| n.typ() == typ) {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(typ);
            ns.set_path(None);
            namespaces.push(ns);
        }
    }
    let joins_userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    linux.set_namespaces(Some(namespaces));

    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        && linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if !has_maps && !joins_userns {
        let (uids, gids) = target.mappings.clone().ok_or(SpecError::NoMapping)?;
        linux.set_uid_mappings(Some(uids));
        linux.set_gid_mappings(Some(gids));
    }
    clamp_ping_group_range(linux);
    confine_devices(linux);
    if let Some(ro) = linux.readonly_paths_mut() {
        if ro.iter().any(|p| p == "/proc/sys") {
            ro.retain(|p| p != "/proc/sys");
            ro.extend(procsys::read_only_paths());
        }
    }

    if let Some(process) = spec.process_mut() {
        if !honor_caps {
            let all: Vec<_> = target
                .host_caps
                .iter()
                .filter_map(|c| parse_capability(c))
                .collect();
            let mut caps = process.capabilities().clone().unwrap_or_else(|| {
                let mut c = LinuxCapabilities::default();
                c.set_inheritable(None);
                c.set_ambient(None);
                c
            });
            caps.set_bounding(Some(all.iter().cloned().collect()));
            caps.set_effective(Some(all.iter().cloned().collect()));
            caps.set_permitted(Some(all.into_iter().collect()));
            process.set_capabilities(Some(caps));
        }
        // A system container is confined by its user namespace; host
        // AppArmor profiles written for plain containers break its init.
        process.set_apparmor_profile(None);
        if systemd {
            let mut env = process.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("container=") && !e.starts_with("container_uuid="));
            env.push("container=warren".to_owned());
            // systemd takes the machine ID from here when the image's
            // /etc/machine-id is empty: one per container, the same on
            // every boot of it.
            env.push(format!("container_uuid={}", container_uuid(target.id)));
            process.set_env(Some(env));
        }
    }

    if let (Some(listener), Some(linux)) = (target.listener, spec.linux_mut()) {
        let profile =
            seccomp::with_interception(linux.seccomp().clone(), listener, LISTENER_METADATA);
        linux.set_seccomp(Some(profile));
    }

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let mut ensure = |m: Mount| {
        if !mounts.iter().any(|x| x.destination() == m.destination()) {
            mounts.push(m);
        }
    };
    ensure(mount(
        "/proc",
        "proc",
        "proc",
        &["nosuid", "noexec", "nodev"],
    ));
    ensure(mount(
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    ));
    ensure(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", "rw"],
    ));

    if systemd {
        ensure(mount(
            "/run",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=755"],
        ));
        ensure(mount(
            "/run/lock",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=1777"],
        ));
        // journald reads /dev/kmsg and systemd logs there before it runs:
        // the host kernel's log is neither read nor written, the device is
        // a null one.
        ensure(mount("/dev/kmsg", "bind", "/dev/null", &["bind", "rw"]));
    }
    if syscont {
        // The container's cgroups are delegated to its root (see
        // crate::cgroups): engines inside make child cgroups there. Its cgroup
        // namespace shows it only its own subtree, and the limit files of its
        // own cgroup stay the host's.
        for m in mounts.iter_mut().filter(|m| {
            m.destination() == Path::new("/sys/fs/cgroup") && m.typ().as_deref() == Some("cgroup")
        }) {
            let mut opts = m.options().clone().unwrap_or_default();
            opts.retain(|o| o != "ro" && o != "rw");
            opts.push("rw".to_owned());
            m.set_options(Some(opts));
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("a mount with every field set always builds")
}

/// Parses `CAP_CHOWN` the way config.json spells it.
pub fn parse_capability(name: &str) -> Option<oci_spec::runtime::Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// A UUID for container `id`, stable across its boots.
pub fn container_uuid(id: &str) -> String {
    // FNV-1a, twice with different offsets, for 128 bits.
    let fnv = |offset: u64| {
        id.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Whether the container's init is systemd.
pub fn runs_systemd(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .and_then(|a| a.first())
        .is_some_and(|a0| a0 == "/sbin/init" || a0.ends_with("systemd"))
}

#[cfg(test)]
mod tests;
