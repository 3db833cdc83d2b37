//! Preparing a container before libcontainer runs it, and undoing that.
//!
//! For a system container: reserve an ID range, make the ID-mapped rootfs
//! and spec mounts under `<root>/@prepared/<id>/`, and write the rewritten
//! spec there. Everything made here is undone by [`teardown`], which is
//! also what reclaims the leftovers of a create that was killed midway.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use libcontainer::container::Container;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceType};

use crate::bundle::Bundle;
use crate::cli::Globals;
use crate::error::RuntimeError;
use crate::features::KNOWN_CAPABILITIES;
use crate::idmap::{self, IdmapError};
use crate::prepared;
use crate::settings::{RootfsFallback, Settings};
use crate::spec::{self, Target};
use crate::subid::{Allocation, Allocator, Creator, HostRange, Request};

/// The capabilities in this process's bounding set, by name.
pub fn host_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    KNOWN_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

fn ns_file(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

/// Whether `path` is the same namespace as this process's own of `typ`.
fn is_host_namespace(typ: LinuxNamespaceType, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let own = Path::new("/proc/self/ns").join(ns_file(typ));
    match (std::fs::metadata(path), std::fs::metadata(own)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether the namespace at `path` is owned by this process's user
/// namespace (the host's, for warren-runc).
fn owned_by_host_userns(path: &Path) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::MetadataExt;
    // NS_GET_USERNS, _IO(0xb7, 0x1): an fd for the owning user namespace.
    const NS_GET_USERNS: libc::c_ulong = 0xb701;
    let Ok(ns) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: the ioctl takes no argument and returns a new fd or -1; ns is
    // a valid open fd for the call's duration.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was just returned by the kernel and nothing else owns it.
    let owner = unsafe { std::fs::File::from_raw_fd(fd) };
    match (owner.metadata(), std::fs::metadata("/proc/self/ns/user")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn mapping(base: u32, size: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(base)
        .size(size)
        .build()
        .expect("a mapping with every field set always builds")
}

fn ranges(maps: &[LinuxIdMapping]) -> Vec<HostRange> {
    maps.iter()
        .map(|m| HostRange {
            host: m.host_id(),
            size: m.size(),
        })
        .collect()
}

/// A uid_map or gid_map as mappings; None if unreadable or malformed.
fn read_id_map(path: &Path) -> Option<Vec<LinuxIdMapping>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let [inside, host, size] = v[..] else {
                return None;
            };
            LinuxIdMappingBuilder::default()
                .container_id(inside)
                .host_id(host)
                .size(size)
                .build()
                .ok()
        })
        .collect()
}

/// For a container of a pod whose spec brings no user namespace of its
/// own (a pod without `hostUsers: false`): the user namespace of its pod's
/// sandbox, when that is a warren system container here, with its
/// mappings. The pod's containers then share one user namespace and one ID
/// range, as they share the network and IPC namespaces the sandbox holds.
fn pod_user_namespace(
    root: &Path,
    spec: &oci_spec::runtime::Spec,
) -> Option<(PathBuf, Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)> {
    let (path, uids, gids) = spec::user_namespace(spec);
    if path.is_some() || !uids.is_empty() || !gids.is_empty() {
        return None;
    }
    let sandbox = spec::pod_sandbox(spec)?;
    let container = match crate::container::load(root, sandbox) {
        Ok(c) => c,
        Err(err) => {
            tracing::info!(sandbox, %err, "the pod's sandbox is not warren's; the container gets a range of its own");
            return None;
        }
    };
    let pid = container.pid()?.as_raw();
    let ns = PathBuf::from(format!("/proc/{pid}/ns/user"));
    if is_host_namespace(LinuxNamespaceType::User, &ns) {
        return None;
    }
    let uids = read_id_map(Path::new(&format!("/proc/{pid}/uid_map")))?;
    let gids = read_id_map(Path::new(&format!("/proc/{pid}/gid_map")))?;
    tracing::debug!(sandbox, pid, "joining the pod sandbox's user namespace");
    Some((ns, uids, gids))
}

/// Where the chowned copy of a rootfs goes when the fallback is used. Derived
/// from the state root and id, so that teardown finds it without a record.
pub fn rootfs_copy_dir(settings: &Settings, root: &Path, id: &str) -> PathBuf {
    settings
        .state_dir
        .join("rootfs")
        .join(per_root_name(root, id))
}

/// `<hash of the state root>-<id>`: ids are unique per root only. Names a
/// container's data directory, rootfs copy and default cgroup.
pub fn per_root_name(root: &Path, id: &str) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}-{id}")
}

/// The inner engines' data directories: where each lives in the
/// container, and its name under the container's data directory. An engine
/// inside cannot keep its layers on the container's rootfs (overlay on an
/// ID-mapped mount, or on overlay, fails), so these are plain host
/// directories, owned by the container's root.
pub const DATA_DIRS: &[(&str, &str)] = &[
    ("/var/lib/docker", "docker"),
    ("/var/lib/containerd", "containerd"),
    ("/var/lib/kubelet", "kubelet"),
    ("/var/lib/rancher/k3s", "k3s"),
    ("/var/lib/buildkit", "buildkit"),
];

/// A system container's data directory: `<state-dir>/data/<root hash>-<id>`.
pub fn data_dir(settings: &Settings, root: &Path, id: &str) -> PathBuf {
    settings
        .state_dir
        .join("data")
        .join(per_root_name(root, id))
}

/// Gives `source` to the container's root (`owner`, host IDs) and returns a
/// read-write bind of it at `dest`.
fn owned_bind(
    source: &Path,
    dest: &Path,
    owner: (u32, u32),
    bind: &str,
) -> Result<oci_spec::runtime::Mount, RuntimeError> {
    std::os::unix::fs::chown(source, Some(owner.0), Some(owner.1))
        .map_err(|e| RuntimeError::io("cannot chown", source, e))?;
    oci_spec::runtime::MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(vec![bind.to_owned(), "rw".to_owned()])
        .build()
        .map_err(|e| RuntimeError::ConfigInvalid {
            path: source.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Makes the container's data directories, owned by its root, and mounts
/// each at its place unless the spec already mounts something there.
fn add_data_dirs(
    spec: &mut oci_spec::runtime::Spec,
    dir: &Path,
    owner: (u32, u32),
) -> Result<(), RuntimeError> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (dest, name) in DATA_DIRS {
        if mounts.iter().any(|m| m.destination() == Path::new(dest)) {
            continue;
        }
        let host = dir.join(name);
        mkdir(&host)?;
        mounts.push(owned_bind(&host, Path::new(dest), owner, "rbind")?);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Gives the container its own copy of each emulated /proc/sys key (see
/// spec::procsys): a file under the prepared bundle holding the host's
/// value, owned by the container's root and bound over the key.
fn add_emulated_sysctls(
    spec: &mut oci_spec::runtime::Spec,
    dir: &Path,
    owner: (u32, u32),
) -> Result<(), RuntimeError> {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for key in spec::procsys::emulated_keys() {
        let host = Path::new("/proc/sys").join(key);
        let Ok(value) = std::fs::read_to_string(&host) else {
            continue; // not on this kernel
        };
        let copy = dir.join(key.replace('/', "."));
        std::fs::write(&copy, value).map_err(|e| RuntimeError::io("cannot write", &copy, e))?;
        mounts.push(owned_bind(&copy, &host, owner, "bind")?);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Removes a container's data directories, unless its spec asked to keep
/// them (`io.warren.keep-data=true`).
fn remove_data_dirs(settings: &Settings, root: &Path, id: &str, keep: bool) {
    let dir = data_dir(settings, root, id);
    if keep {
        tracing::info!(%id, dir = %dir.display(), "keeping the container's data");
        return;
    }
    // Never through a mount: an engine inside may have left one there.
    if let Err(e) = warren_sys::remove_tree(&dir) {
        tracing::warn!(%id, dir = %dir.display(), error = %e, "cannot remove the container's data")
    }
}

/// Unmounts everything mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) -> Result<(), RuntimeError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RuntimeError::io("cannot read", "/proc/self/mountinfo", e))?;
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(idmap::unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        idmap::unmount(&p).map_err(|e| RuntimeError::Prepare(Box::new(e)))?;
    }
    Ok(())
}

/// Removes the empty cgroup v2 tracking directories the interceptor made for
/// container `id` (`<cgroup2>/warren/<id>.<pid>`), in case the interceptor
/// that made them is gone. One with processes in it cannot be removed.
fn remove_tracking_cgroups(id: &str) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let Some(mount) = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next()? == "cgroup2").then(|| PathBuf::from(point))
    }) else {
        return;
    };
    let prefix = format!("{id}.");
    if let Ok(entries) = std::fs::read_dir(mount.join("warren")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// Removes everything warren made outside libcontainer for `id`: staging
/// mounts, the prepared bundle, a rootfs copy, tracking cgroups, and the ID
/// range.
pub fn teardown(globals: &Globals, root: &Path, id: &str) -> Result<(), RuntimeError> {
    remove_tracking_cgroups(id);
    let dir = prepared::dir(root, id);
    let keep = prepared::load(root, id).is_ok_and(|s| spec::keeps_data(&s));
    unmount_under(&dir)?;
    remove_data_dirs(&globals.settings, root, id, keep);
    prepared::remove(root, id)?;
    // The view's mount lived in warren-runc's own namespace; on the host it
    // is an empty directory.
    warren_sys::remove_tree(&crate::locked::view_dir(&per_root_name(root, id)))?;
    let copy = rootfs_copy_dir(&globals.settings, root, id);
    warren_sys::remove_tree(&copy)?;
    Allocator::new(&globals.settings)
        .release(root, id)
        .map_err(RuntimeError::from)
}

/// Cleans up after a stale allocation: the container a killed create left,
/// then warren's own leftovers. Returns whether everything is gone.
fn reap(globals: &Globals, a: &Allocation) -> bool {
    let dir = a.root.join(&a.id);
    if dir.join("state.json").exists() {
        if let Ok(mut c) = Container::load(dir.clone()) {
            if let Err(err) = c.delete(true) {
                tracing::warn!(id = %a.id, %err, "cannot delete stale container");
            }
        }
    }
    if let Err(e) = warren_sys::remove_tree(&dir) {
        tracing::warn!(id = %a.id, error = %e, "cannot remove the stale container's state");
    }
    let cleaned = unmount_under(&prepared::dir(&a.root, &a.id)).is_ok()
        && prepared::remove(&a.root, &a.id).is_ok()
        && warren_sys::remove_tree(&crate::locked::view_dir(&per_root_name(&a.root, &a.id)))
            .is_ok();
    let copy = rootfs_copy_dir(&globals.settings, &a.root, &a.id);
    let copy_gone = warren_sys::remove_tree(&copy).is_ok();
    tracing::info!(id = %a.id, root = %a.root.display(), "reclaimed the ID range of a stale container");
    cleaned && copy_gone && !dir.exists()
}

fn is_live(a: &Allocation) -> bool {
    match a.creator {
        Some(c) => c.is_alive(),
        None => a.root.join(&a.id).join("state.json").exists(),
    }
}

/// Prepares the bundle libcontainer runs. Returns the prepared bundle dir.
/// Prepares container `id`; returns the prepared bundle's directory and the
/// spec written there.
/// What prepare made: the prepared bundle, its spec, and for a system
/// container the user namespace it runs in (see [`crate::locked`]).
pub type Prepared = (PathBuf, oci_spec::runtime::Spec, Option<OwnedFd>);

pub fn prepare(globals: &Globals, id: &str, bundle: &Bundle) -> Result<Prepared, RuntimeError> {
    let root = &globals.root;
    // Leftovers of an earlier, interrupted create of this id.
    unmount_under(&prepared::dir(root, id))?;
    prepared::remove(root, id)?;
    let host_caps = host_capabilities();
    tracing::debug!(?host_caps, "capabilities of this runtime");

    if !spec::is_syscont(&bundle.spec) {
        let out = spec::rewrite(
            bundle.spec.clone(),
            &Target {
                id,
                cgroup_name: &per_root_name(root, id),
                rootfs: &bundle.rootfs,
                mappings: None,
                host_caps: &host_caps,
                listener: None,
            },
        )?;
        return prepared::write(root, id, &out).map(|dir| (dir, out, None));
    }

    spec::check_namespaces(&bundle.spec, is_host_namespace)?;
    let in_pod;
    let bundle = match pod_user_namespace(root, &bundle.spec) {
        Some((path, uids, gids)) => {
            let mut b = bundle.clone();
            spec::join_user_namespace(&mut b.spec, &path, uids, gids);
            in_pod = b;
            &in_pod
        }
        None => bundle,
    };
    let (ns_path, spec_uids, spec_gids) = spec::user_namespace(&bundle.spec);
    let request = match &ns_path {
        Some(_) => None,
        None if !spec_uids.is_empty() && !spec_gids.is_empty() => Some(Request::Given {
            uids: ranges(&spec_uids),
            gids: ranges(&spec_gids),
        }),
        None => Some(Request::Allocate),
    };
    let allocator = Allocator::new(&globals.settings);
    let lease = match &request {
        Some(req) => allocator.reserve(root, id, req, Creator::this_process(), is_live, |a| {
            reap(globals, a)
        })?,
        None => None,
    };
    let result = build(globals, id, bundle, ns_path.as_deref(), lease, &host_caps);
    if result.is_err() {
        if let Err(err) = teardown(globals, root, id) {
            tracing::warn!(%id, %err, "cleanup of failed prepare");
        }
    }
    result
}

fn build(
    globals: &Globals,
    id: &str,
    bundle: &Bundle,
    ns_path: Option<&Path>,
    lease: Option<crate::subid::Lease>,
    host_caps: &[String],
) -> Result<Prepared, RuntimeError> {
    let root = &globals.root;
    let dir = prepared::dir(root, id);
    let (_, spec_uids, spec_gids) = spec::user_namespace(&bundle.spec);
    let mappings = lease.map(|l| {
        (
            vec![mapping(l.uid_base, l.size)],
            vec![mapping(l.gid_base, l.size)],
        )
    });
    let (uids, gids) = mappings.clone().unwrap_or((spec_uids, spec_gids));
    let prep = |e: IdmapError| RuntimeError::Prepare(Box::new(e));

    let userns: OwnedFd = match ns_path {
        Some(path) => OwnedFd::from(
            std::fs::File::open(path)
                .map_err(|e| RuntimeError::io("cannot open user namespace", path, e))?,
        ),
        None => idmap::userns_with(&uids, &gids).map_err(prep)?,
    };

    let staging = dir.join("rootfs");
    mkdir(&staging)?;
    // A client that maps the rootfs itself (containerd 2 does for pods with
    // hostUsers: false, through ID-mapped lower layers it unmounts again)
    // hands over a rootfs whose root already belongs to the range's root:
    // it is used as it is. An overlay whose lower layers are all still there
    // is ID-mapped layer by layer, whoever owns its upper layer.
    let layers = idmap::overlay_at(&bundle.rootfs);
    let premapped = {
        use std::os::unix::fs::MetadataExt;
        let root_uid = idmap::to_host(0, &uids);
        let owned = std::fs::metadata(&bundle.rootfs)
            .is_ok_and(|m| root_uid.is_some_and(|u| u != 0 && m.uid() == u));
        owned
            && layers
                .as_ref()
                .is_none_or(|l| l.lower.iter().any(|p| !p.exists()))
    };
    let mapped = match layers {
        _ if premapped => {
            tracing::debug!(%id, "the rootfs is ID-mapped already");
            idmap::bind_clone(&bundle.rootfs, &staging, None, true)
        }
        Some(layers) => {
            let owner = (
                idmap::to_host(0, &uids).unwrap_or(0),
                idmap::to_host(0, &gids).unwrap_or(0),
            );
            idmap::idmapped_overlay(
                &layers,
                &dir.join("layers"),
                &staging,
                userns.as_fd(),
                owner,
            )
        }
        None => {
            // What container root writes lands on disk as uid 0, setuid
            // bits included: no other host user may reach it.
            let read_only = bundle.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true);
            if !read_only && idmap::to_host(0, &uids) != Some(0) {
                check_unreachable(&bundle.rootfs)?;
            }
            idmap::bind_idmapped(&bundle.rootfs, &staging, userns.as_fd(), true)
        }
    };
    let rootfs = match mapped {
        Ok(()) => staging,
        Err(IdmapError::Unsupported { .. })
            if globals.settings.rootfs_fallback == RootfsFallback::Chown =>
        {
            let copy = rootfs_copy_dir(&globals.settings, root, id);
            if let Some(parent) = copy.parent() {
                mkdir(parent)?;
            }
            let _ = std::fs::remove_dir_all(&copy);
            tracing::info!(%id, from = %bundle.rootfs.display(), to = %copy.display(), "rootfs cannot be ID-mapped; copying it with shifted owners");
            idmap::shifted_copy(&bundle.rootfs, &copy, &uids, &gids).map_err(prep)?;
            copy
        }
        Err(e) => return Err(prep(e)),
    };

    let mut spec = bundle.spec.clone();
    let owner = (
        idmap::to_host(0, &uids).unwrap_or(0),
        idmap::to_host(0, &gids).unwrap_or(0),
    );
    add_data_dirs(&mut spec, &data_dir(&globals.settings, root, id), owner)?;
    let sysctls = dir.join("sysctl");
    mkdir(&sysctls)?;
    add_emulated_sysctls(&mut spec, &sysctls, owner)?;
    let wanted = spec::idmapped_mounts(&spec);
    let mut staged = Vec::new();
    for m in &wanted {
        let target = mount_point(&dir, m.index, &m.source)?;
        let own;
        let fd = if m.uids.is_empty() {
            userns.as_fd()
        } else {
            let gids = if m.gids.is_empty() { &m.uids } else { &m.gids };
            own = idmap::userns_with(&m.uids, gids).map_err(prep)?;
            own.as_fd()
        };
        idmap::bind_idmapped(&m.source, &target, fd, m.recursive).map_err(prep)?;
        staged.push((m.index, target));
    }
    for (index, source, recursive) in spec::bind_mounts(&spec) {
        let target = mount_point(&dir, index, &source)?;
        idmap::bind_clone(&source, &target, None, recursive).map_err(prep)?;
        staged.push((index, target));
    }
    let staged_refs: Vec<(usize, &Path)> = staged.iter().map(|(i, p)| (*i, p.as_path())).collect();
    spec::point_mounts_at(&mut spec, &staged_refs);
    spec::move_host_netns(&mut spec, owned_by_host_userns);

    let listener = if globals.settings.intercept {
        crate::interceptor_client::ensure(&globals.settings)?;
        Some(globals.settings.interceptor_socket.as_path())
    } else {
        None
    };
    let out = spec::rewrite(
        spec,
        &Target {
            id,
            cgroup_name: &per_root_name(root, id),
            rootfs: &rootfs,
            mappings,
            host_caps,
            listener,
        },
    )?;
    prepared::write(root, id, &out).map(|dir| (dir, out, Some(userns)))
}

/// Whether a host user other than root can pass directory `meta` (search
/// permission through "other", a non-root group, or a non-root owner).
fn passable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    mode & 0o001 != 0
        || (mode & 0o010 != 0 && meta.gid() != 0)
        || (mode & 0o100 != 0 && meta.uid() != 0)
}

/// Refuses a writable, ID-mapped directory rootfs that host users other
/// than root can reach: a file container root makes setuid there is setuid
/// root on the host. Some directory on the way must be root's alone.
fn check_unreachable(rootfs: &Path) -> Result<(), RuntimeError> {
    let real =
        std::fs::canonicalize(rootfs).map_err(|e| RuntimeError::io("cannot resolve", rootfs, e))?;
    let mut dirs: Vec<&Path> = real.ancestors().collect();
    dirs.reverse();
    for dir in dirs {
        let meta = std::fs::metadata(dir).map_err(|e| RuntimeError::io("cannot stat", dir, e))?;
        if !passable_by_others(&meta) {
            return Ok(());
        }
    }
    Err(RuntimeError::RootfsReachable(real))
}

/// Creates the staging point for spec mount `index`: a directory, or an
/// empty file when the source is a file.
fn mount_point(dir: &Path, index: usize, source: &Path) -> Result<PathBuf, RuntimeError> {
    let mounts = dir.join("mounts");
    mkdir(&mounts)?;
    let target = mounts.join(index.to_string());
    if source.is_dir() {
        mkdir(&target)?;
    } else {
        std::fs::write(&target, b"").map_err(|e| RuntimeError::io("cannot create", &target, e))?;
    }
    Ok(target)
}

fn mkdir(path: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(path).map_err(|e| RuntimeError::io("cannot create", path, e))
}

/// Marks the create of `id` finished, so that its range is no longer
/// reclaimable as a crashed create.
pub fn commit(globals: &Globals, id: &str) -> Result<(), RuntimeError> {
    Allocator::new(&globals.settings)
        .commit(&globals.root, id)
        .map_err(RuntimeError::from)
}
