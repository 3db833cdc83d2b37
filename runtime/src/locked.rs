//! A system container's proc and sysfs, masks and read-only paths, built on
//! the host side so that the kernel itself refuses to undo them.
//!
//! The kernel locks the mounts a mount namespace receives from one owned by
//! a more privileged user namespace, by copy or by propagation: umount of a
//! locked mount gives EINVAL, clearing a locked read-only flag gives EPERM,
//! a non-recursive bind or open_tree of a tree with locked children gives
//! EINVAL, an rbind copy keeps the locks, and a fresh proc or sysfs is
//! refused while locked masks hide parts of every one left. libcontainer
//! makes every mount inside the container's own user namespace, where
//! nothing is locked. So warren-runc, as host root:
//! 1. points the container at the user namespace warren made for its
//!    ID-mapped rootfs, and creates the container's network namespace in it
//!    (unless the spec names one), both held by fds;
//! 2. moves itself into a mount namespace of its own (owned by the host's
//!    user namespace), where the rootfs is a shared mount, and attaches
//!    there, at `<rootfs>/sys`, a sysfs of the container's network
//!    namespace with the masks and read-only paths under /sys already on
//!    it. libcontainer starts the container from this namespace: the
//!    container's mount namespace is a copy of it, and everything in it is
//!    locked;
//! 3. adds itself as the first createRuntime hook: once the container's pid
//!    namespace exists, before pivot_root, the hook builds a detached proc
//!    for that pid namespace with the masks and read-only paths under
//!    /proc (and the spec's binds under /proc, such as warren's emulated
//!    sysctls) and attaches it at `<rootfs>/proc` in warren-runc's
//!    namespace, from where it propagates into the container's, locked
//!    below its root.
//!
//! What is not locked: the container's root, its /proc and /sys
//! themselves (unmounting one reveals only the empty directory under it;
//! the interceptor refuses it anyway), and the spec's other mounts
//! (/dev, /sys/fs/cgroup, binds), which libcontainer makes inside.
//!
//! The full masked and read-only lists move to annotations, where the
//! interceptor reads them for its second line of defence.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{Hook, LinuxNamespace, LinuxNamespaceType, Spec};

/// The spec's full masked and read-only paths (JSON arrays of strings).
pub const ANNOTATION_MASKED: &str = "io.warren.masked-paths";
pub const ANNOTATION_READONLY: &str = "io.warren.readonly-paths";
/// The spec's binds under /proc, which the hook puts on the proc it
/// builds (JSON array of [destination, source]).
pub const ANNOTATION_PROC_BINDS: &str = "io.warren.proc-binds";
/// The hook's argument.
pub const HOOK: &str = "lock-proc";

#[derive(Debug, thiserror::Error)]
pub enum LockedError {
    #[error("cannot create the container's network namespace")]
    Netns(#[source] std::io::Error),
    #[error("cannot {what}")]
    Step {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the hook's state")]
    State(#[source] std::io::Error),
}

fn step(what: &'static str) -> impl FnOnce(std::io::Error) -> LockedError {
    move |source| LockedError::Step { what, source }
}

fn nix_step(what: &'static str) -> impl FnOnce(nix::Error) -> LockedError {
    move |e| LockedError::Step {
        what,
        source: e.into(),
    }
}

fn ns_entry(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == typ)
        .map(|n| n.path().clone())
}

/// Whether warren builds the locked mounts for `spec`: a system container
/// with a mount namespace of its own.
pub fn applies(spec: &Spec) -> bool {
    crate::spec::is_syscont(spec) && matches!(ns_entry(spec, LinuxNamespaceType::Mount), Some(None))
}

fn set_ns_path(spec: &mut Spec, typ: LinuxNamespaceType, path: PathBuf) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.retain(|n| n.typ() != typ);
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(Some(path));
    namespaces.push(ns);
    linux.set_namespaces(Some(namespaces));
}

fn self_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn open(path: &Path) -> Result<OwnedFd, LockedError> {
    std::fs::File::open(path)
        .map(OwnedFd::from)
        .map_err(step("open a namespace"))
}

/// A network namespace owned by `userns`, made by a short-lived helper.
fn new_netns(userns: BorrowedFd<'_>) -> Result<OwnedFd, LockedError> {
    let err = |e: nix::Error| LockedError::Netns(e.into());
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(err)?;
    let (done_r, done_w) = nix::unistd::pipe().map_err(err)?;
    let raw = userns.as_raw_fd();
    // SAFETY: warren-runc is single-threaded here; the child makes plain
    // syscalls on fds it inherited and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(err)? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(done_w);
            // SAFETY: raw is open in the child (inherited).
            let userns = unsafe { BorrowedFd::borrow_raw(raw) };
            let ok = nix::sched::setns(userns, nix::sched::CloneFlags::CLONE_NEWUSER)
                .and_then(|()| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET))
                .is_ok();
            let _ = nix::unistd::write(&ready_w, &[u8::from(ok)]);
            let mut buf = [0u8; 1];
            let _ = nix::unistd::read(done_r.as_raw_fd(), &mut buf);
            // SAFETY: ends the helper without running the parent's code.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let mut ok = [0u8; 1];
            let got = nix::unistd::read(ready_r.as_raw_fd(), &mut ok);
            let fd = match got {
                Ok(1) if ok[0] == 1 => open(Path::new(&format!("/proc/{child}/ns/net"))),
                _ => Err(LockedError::Netns(std::io::Error::other(
                    "the helper could not unshare a network namespace in the container's user namespace",
                ))),
            };
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            fd
        }
    }
}

fn attrs_of(spec: &Spec, dest: &str, typ: &str, default: u64) -> u64 {
    let Some(m) = spec.mounts().as_ref().and_then(|ms| {
        ms.iter()
            .find(|m| m.destination() == Path::new(dest) && m.typ().as_deref() == Some(typ))
    }) else {
        return default;
    };
    m.options()
        .iter()
        .flatten()
        .map(|o| match o.as_str() {
            "ro" => warren_sys::MOUNT_ATTR_RDONLY,
            "nosuid" => warren_sys::MOUNT_ATTR_NOSUID,
            "nodev" => warren_sys::MOUNT_ATTR_NODEV,
            "noexec" => warren_sys::MOUNT_ATTR_NOEXEC,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

const PROC_DEFAULT: u64 =
    warren_sys::MOUNT_ATTR_NOSUID | warren_sys::MOUNT_ATTR_NODEV | warren_sys::MOUNT_ATTR_NOEXEC;
const SYS_DEFAULT: u64 = PROC_DEFAULT | warren_sys::MOUNT_ATTR_RDONLY;
/// The annotation that carries the proc mount's attributes for the hook.
const ANNOTATION_PROC_ATTRS: &str = "io.warren.proc-attrs";

/// Relative paths of `list` under `prefix` ("/proc" or "/sys").
fn under<'a>(list: &'a [String], prefix: &str) -> Vec<&'a str> {
    let prefix = format!("{prefix}/");
    list.iter()
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .collect()
}

fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// Makes `dir` (a mount point the image lacks) as the container's root, so
/// that it belongs to the container through the ID-mapped rootfs.
fn mount_point(dir: &Path, ids: (u32, u32)) -> Result<(), LockedError> {
    if dir.is_dir() {
        return Ok(());
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| step("create a mount point")(std::io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: integer syscalls on this single-threaded process's own
    // credentials, put back right after; c outlives mkdir.
    let rc = unsafe {
        libc::setfsgid(ids.1);
        libc::setfsuid(ids.0);
        let rc = libc::mkdir(c.as_ptr(), 0o555);
        libc::setfsuid(0);
        libc::setfsgid(0);
        rc
    };
    if rc != 0 {
        return Err(step("create a mount point")(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// warren-runc's stay in the mount namespace the container starts from;
/// dropping it returns to the host's. Holds the namespaces the container
/// joins until libcontainer has joined them.
pub struct Stay {
    host_mnt: OwnedFd,
    _held: Vec<OwnedFd>,
}

impl Drop for Stay {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.host_mnt, nix::sched::CloneFlags::CLONE_NEWNS) {
            // Every later step (teardown above all) must act on the host's
            // mounts; going on from here could leave them behind.
            tracing::error!(error = %e, "cannot return to the host's mount namespace");
            std::process::abort();
        }
    }
}

/// Where a container's prepared bundle is seen from inside warren-runc's
/// mount namespace: a path every user may traverse. Container root must
/// reach the rootfs and the staged mounts while libcontainer sets them up,
/// and a client's state root may be root's alone (Docker's /run/docker is
/// 0700). The directory is an empty mount point on the host.
pub const VIEW_BASE: &str = "/run/warren/prepared";

/// The view of `prepared` (see [`VIEW_BASE`]) for container `name`.
pub fn view_dir(name: &str) -> PathBuf {
    Path::new(VIEW_BASE).join(name)
}

/// Makes `dir` and its missing parents, each searchable by everyone.
fn traversable_dir(dir: &Path) -> Result<(), LockedError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(step("create the prepared bundle's view"))?;
    for d in dir.ancestors().take_while(|d| d.starts_with("/run/warren")) {
        let meta = std::fs::metadata(d).map_err(step("create the prepared bundle's view"))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o011 != 0o011 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o011))
                .map_err(step("create the prepared bundle's view"))?;
        }
    }
    Ok(())
}

/// Rewrites `path` from under `from` to under `to`.
fn moved(path: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    path.strip_prefix(from).ok().map(|rest| to.join(rest))
}

/// Points the spec's rootfs and staged mounts back from the view to the
/// prepared bundle, for what reads the spec after create (exec, delete):
/// the view exists only in warren-runc's mount namespace, during create.
pub fn unview(spec: &mut Spec, prepared: &Path, view: &Path) {
    if let Some(root) = spec.root_mut() {
        if let Some(p) = moved(root.path(), view, prepared) {
            root.set_path(p);
        }
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            if let Some(src) = m.source().as_deref().and_then(|s| moved(s, view, prepared)) {
                m.set_source(Some(src));
            }
        }
    }
}

/// Steps 1 and 2 of the module doc, and the spec rewrite for step 3.
/// `userns` is the container's user namespace; `bin` is warren-runc itself;
/// `prepared` is the prepared bundle, seen at `view` from here on.
pub fn enter(
    spec: &mut Spec,
    userns: BorrowedFd<'_>,
    bin: &Path,
    prepared: &Path,
    view: &Path,
) -> Result<Stay, LockedError> {
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let linux = spec.linux().clone().unwrap_or_default();
    let masked = linux.masked_paths().clone().unwrap_or_default();
    let readonly = linux.readonly_paths().clone().unwrap_or_default();
    let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        crate::idmap::to_host(0, m.as_deref().unwrap_or_default()).unwrap_or(0)
    };
    let root_ids = (maps(linux.uid_mappings()), maps(linux.gid_mappings()));

    // 1. The user namespace, and the network namespace sysfs belongs to.
    let userns = open(&self_path(userns))?;
    let net_entry = ns_entry(spec, LinuxNamespaceType::Network);
    let netns = match &net_entry {
        Some(None) => Some(new_netns(userns.as_fd())?),
        Some(Some(path)) => Some(open(path)?),
        // Not in the spec: warren-runc entered the pod's network namespace
        // already (spec::move_host_netns), and it is the current one.
        None => None,
    };

    // 2. A mount namespace of warren-runc's own, the rootfs shared in it.
    let host_mnt = open(Path::new("/proc/self/ns/mnt"))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(nix_step("unshare a mount namespace"))?;
    let mut stay = Stay {
        host_mnt,
        _held: Vec::new(),
    };
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(nix_step("make the mount namespace a slave of the host's"))?;
    // The prepared bundle, reachable by the container's root whatever the
    // modes of the client's state root.
    traversable_dir(view)?;
    nix::mount::mount(
        Some(prepared),
        view,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_step("bind the prepared bundle to its view"))?;
    let rootfs = moved(&rootfs, prepared, view).unwrap_or(rootfs);
    if let Some(root) = spec.root_mut() {
        root.set_path(rootfs.clone());
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            if let Some(src) = m.source().as_deref().and_then(|s| moved(s, prepared, view)) {
                m.set_source(Some(src));
            }
        }
    }
    // The rootfs must be a mount to be shared (a copied rootfs is a plain
    // directory).
    nix::mount::mount(
        Some(&rootfs),
        &rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(nix_step("bind the rootfs"))?;
    nix::mount::mount(
        None::<&str>,
        &rootfs,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(nix_step("share the rootfs"))?;

    let sys_dir = rootfs.join("sys");
    mount_point(&sys_dir, root_ids)?;
    mount_point(&rootfs.join("proc"), root_ids)?;
    let sys_attrs = attrs_of(spec, "/sys", "sysfs", SYS_DEFAULT);
    let tree = match &netns {
        Some(ns) => {
            let back = open(Path::new("/proc/thread-self/ns/net"))?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(nix_step("enter the container's network namespace"))?;
            let tree = warren_sys::new_mount("sysfs", &[], sys_attrs);
            nix::sched::setns(&back, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(nix_step("return to warren-runc's network namespace"))?;
            tree
        }
        None => warren_sys::new_mount("sysfs", &[], sys_attrs),
    }
    .map_err(step("mount sysfs"))?;
    let host_root =
        warren_sys::open_path("/", libc::O_PATH | libc::O_DIRECTORY).map_err(step("open /"))?;
    for rel in under(&readonly, "/sys") {
        warren_sys::read_only_in(tree.as_fd(), rel)
            .map_err(step("make a path under /sys read-only"))?;
    }
    for rel in under(&masked, "/sys") {
        warren_sys::mask_in(tree.as_fd(), host_root.as_fd(), rel)
            .map_err(step("mask a path under /sys"))?;
    }
    let at = warren_sys::open_path(
        &sys_dir.display().to_string(),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(step("open the rootfs's /sys"))?;
    warren_sys::move_mount(tree.as_fd(), at.as_fd(), None).map_err(step("attach sysfs"))?;

    // The spec libcontainer runs: the container joins the namespaces made
    // here, and neither mounts proc or sysfs nor masks anything under them.
    set_ns_path(spec, LinuxNamespaceType::User, self_path(userns.as_fd()));
    if let Some(ns) = &netns {
        set_ns_path(spec, LinuxNamespaceType::Network, self_path(ns.as_fd()));
    }
    let proc_attrs = attrs_of(spec, "/proc", "proc", PROC_DEFAULT);
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let mut proc_binds: Vec<(String, String)> = Vec::new();
    mounts.retain(|m| {
        let dest = m.destination().to_string_lossy().into_owned();
        let t = m.typ().as_deref();
        if (dest == "/proc" && t == Some("proc")) || (dest == "/sys" && t == Some("sysfs")) {
            return false;
        }
        let bind = t == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if is_under(&dest, "/proc") && bind {
            if let Some(src) = m.source() {
                proc_binds.push((dest, src.display().to_string()));
                return false;
            }
        }
        true
    });
    spec.set_mounts(Some(mounts));
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(ANNOTATION_MASKED.to_owned(), to_json(&masked));
    annotations.insert(ANNOTATION_READONLY.to_owned(), to_json(&readonly));
    annotations.insert(ANNOTATION_PROC_BINDS.to_owned(), to_json(&proc_binds));
    annotations.insert(ANNOTATION_PROC_ATTRS.to_owned(), proc_attrs.to_string());
    spec.set_annotations(Some(annotations));
    if let Some(linux) = spec.linux_mut() {
        // The hook's proc reaches the container by propagation: a private
        // root would never see it. A slave root is what runc gives by
        // default; the container still sends nothing back to the host.
        if linux.rootfs_propagation().as_deref() == Some("private") {
            linux.set_rootfs_propagation(Some("slave".to_owned()));
        }
        let outside = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter(|p| !is_under(p, "/proc") && !is_under(p, "/sys"))
                .cloned()
                .collect()
        };
        linux.set_masked_paths(Some(outside(&masked)));
        linux.set_readonly_paths(Some(outside(&readonly)));
    }
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let mut create_runtime = hooks.create_runtime().clone().unwrap_or_default();
    let mut hook = Hook::default();
    hook.set_path(bin.to_path_buf());
    hook.set_args(Some(vec!["warren-runc".to_owned(), HOOK.to_owned()]));
    create_runtime.insert(0, hook);
    hooks.set_create_runtime(Some(create_runtime));
    spec.set_hooks(Some(hooks));

    stay._held.push(userns);
    stay._held.extend(netns);
    Ok(stay)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn annotation<T: serde::de::DeserializeOwned>(spec: &Spec, key: &str) -> Option<T> {
    serde_json::from_str(spec.annotations().as_ref()?.get(key)?).ok()
}

/// The createRuntime hook (step 3 of the module doc): runs in warren-runc's
/// mount namespace, with the container's state on stdin.
pub fn hook_main() -> Result<(), LockedError> {
    let state: oci_spec::runtime::State =
        serde_json::from_reader(std::io::stdin()).map_err(|e| LockedError::State(e.into()))?;
    let pid = state
        .pid()
        .ok_or_else(|| LockedError::State(std::io::Error::other("the state names no pid")))?;
    let spec = Spec::load(state.bundle().join("config.json"))
        .map_err(|e| LockedError::State(std::io::Error::other(e)))?;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let masked: Vec<String> = annotation(&spec, ANNOTATION_MASKED).unwrap_or_default();
    let readonly: Vec<String> = annotation(&spec, ANNOTATION_READONLY).unwrap_or_default();
    let binds: Vec<(String, String)> = annotation(&spec, ANNOTATION_PROC_BINDS).unwrap_or_default();
    let attrs: u64 = annotation(&spec, ANNOTATION_PROC_ATTRS).unwrap_or(PROC_DEFAULT);

    let pidns = open(Path::new(&format!("/proc/{pid}/ns/pid")))?;
    let tree = warren_sys::new_mount(
        "proc",
        &[warren_sys::FsParam::Fd("pidns", pidns.as_fd())],
        attrs,
    )
    .map_err(step("mount proc"))?;
    let host_root =
        warren_sys::open_path("/", libc::O_PATH | libc::O_DIRECTORY).map_err(step("open /"))?;
    for rel in under(&readonly, "/proc") {
        warren_sys::read_only_in(tree.as_fd(), rel)
            .map_err(step("make a path under /proc read-only"))?;
    }
    for rel in under(&masked, "/proc") {
        warren_sys::mask_in(tree.as_fd(), host_root.as_fd(), rel)
            .map_err(step("mask a path under /proc"))?;
    }
    for (dest, source) in &binds {
        let rel = dest.trim_start_matches("/proc/");
        let at = match warren_sys::open_in_root(tree.as_fd(), rel) {
            Ok(at) => at,
            // As libcontainer would not create a file in proc either.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(step("find a bind's place under /proc")(e)),
        };
        let src = warren_sys::clone_tree(host_root.as_fd(), source.trim_start_matches('/'))
            .map_err(step("clone a bind's source"))?;
        warren_sys::move_mount(src.as_fd(), at.as_fd(), None).map_err(step("bind under /proc"))?;
    }
    let at = warren_sys::open_path(
        &rootfs.join("proc").display().to_string(),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(step("open the rootfs's /proc"))?;
    warren_sys::move_mount(tree.as_fd(), at.as_fd(), None).map_err(step("attach proc"))
}
