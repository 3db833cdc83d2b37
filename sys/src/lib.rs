//! Thin, typed wrappers over the syscalls warren-runc and warren-interceptor
//! act with. All unsafe code of their mount paths lives here.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

fn last() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Wraps a new fd returned by a syscall.
fn owned(rc: libc::c_long) -> std::io::Result<OwnedFd> {
    if rc < 0 {
        return Err(last());
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// `struct open_how` from <linux/openat2.h>.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` as O_PATH with openat2, resolved with `dirfd` as the root:
/// `..` and absolute symlinks cannot leave it (RESOLVE_IN_ROOT).
pub fn open_in_root(dirfd: BorrowedFd<'_>, path: &str) -> std::io::Result<OwnedFd> {
    openat2_path(
        dirfd,
        path,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// Whether `fd` is on a procfs.
pub fn is_procfs(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fstatfs fills a zeroed struct it is given room for.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open and st outlives the call.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) };
    rc == 0 && st.f_type == libc::PROC_SUPER_MAGIC
}

/// openat(dir, name, O_PATH), following `name` if it is a link: for a
/// plain name in a procfs directory, whose links only the kernel makes.
pub fn open_proc_entry(dir: BorrowedFd<'_>, name: &str) -> std::io::Result<OwnedFd> {
    let n = cstr(name)?;
    // SAFETY: dir is open and n outlives the call.
    owned(
        unsafe { libc::openat(dir.as_raw_fd(), n.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
            as libc::c_long,
    )
}

fn openat2_path(dirfd: BorrowedFd<'_>, path: &str, resolve: u64) -> std::io::Result<OwnedFd> {
    let p = cstr(path)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: p and how outlive the call; the size passed is how's.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            p.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })
}

/// Opens a path in the interceptor's own view (for /proc/PID/... files).
pub fn open_path(path: &str, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: p outlives the call.
    owned(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC) } as libc::c_long)
}

/// The mount id of the mount `fd` is on, and whether `fd` is that mount's
/// root.
pub fn mount_of(fd: BorrowedFd<'_>) -> std::io::Result<(u64, bool)> {
    // SAFETY: statx fills a zeroed struct it is given room for.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: empty and stx outlive the call.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if rc < 0 {
        return Err(last());
    }
    let root = stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    Ok((stx.stx_mnt_id, root))
}

/// Whether `fd` is a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false)
}

pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> std::io::Result<()> {
    // SAFETY: fd is open; setns touches no memory of ours.
    if unsafe { libc::setns(fd.as_raw_fd(), nstype) } < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

/// Gives this thread its own root, cwd and umask, so that it can enter
/// mount namespaces without moving the rest of the process.
pub fn unshare_fs() -> std::io::Result<()> {
    // SAFETY: unshare takes a flag only.
    if unsafe { libc::unshare(libc::CLONE_FS) } < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

pub fn fchdir(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: fd is open.
    if unsafe { libc::fchdir(fd.as_raw_fd()) } < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

/// Who is naming an fd through /proc.
#[derive(Debug, Clone, Copy)]
pub enum FdOwner {
    /// A thread of the threaded daemon: `thread-self/fd/N`.
    Thread,
    /// A single-threaded process: `self/fd/N`.
    Process,
}

/// The path, relative to the host's /proc, of fd `fd`: with the host /proc
/// as the working directory it names the fd's file in any mount namespace
/// the caller has entered.
fn fd_path(fd: BorrowedFd<'_>, owner: FdOwner) -> std::io::Result<CString> {
    let base = match owner {
        FdOwner::Thread => "thread-self",
        FdOwner::Process => "self",
    };
    cstr(&format!("{base}/fd/{}", fd.as_raw_fd()))
}

/// umount2 of the mount at `target`. The working directory must be the
/// host's /proc (see [`fd_path`]), and the root the mount namespace's.
///
/// A lazy unmount goes through the fd. A plain one cannot: the fd holds a
/// reference to the mount, and the kernel refuses to unmount a mount with
/// references beyond the caller's lookup (EBUSY). So the fd gives the
/// mount's path, is closed, and the path is unmounted, not following a
/// final symlink. What could take the mount's place in between is no
/// protected mount: the interceptor refuses to move those, and handles a
/// container's unmounts one at a time.
pub fn umount_fd(target: OwnedFd, flags: libc::c_int) -> std::io::Result<()> {
    let p = fd_path(target.as_fd(), FdOwner::Thread)?;
    let p = if flags & libc::MNT_DETACH != 0 {
        p
    } else {
        let path = std::fs::read_link(std::ffi::OsStr::from_bytes(p.as_bytes()))?;
        drop(target);
        CString::new(path.into_os_string().into_vec())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?
    };
    let flags = if flags & libc::MNT_DETACH != 0 {
        flags
    } else {
        flags | libc::UMOUNT_NOFOLLOW
    };
    // SAFETY: p outlives the call.
    if unsafe { libc::umount2(p.as_ptr(), flags) } < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

/// A remount of the mount at `target`. The working directory must be the
/// host's /proc (see [`fd_path`]).
pub fn remount_fd(
    target: BorrowedFd<'_>,
    owner: FdOwner,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let p = fd_path(target, owner)?;
    let data = data.map(cstr).transpose()?;
    let data_ptr = data
        .as_ref()
        .map_or(std::ptr::null(), |d| d.as_ptr().cast());
    // SAFETY: p and data outlive the call; source and type may be NULL
    // for a remount.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            p.as_ptr(),
            std::ptr::null(),
            flags,
            data_ptr,
        )
    };
    if rc < 0 { Err(last()) } else { Ok(()) }
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// One fsconfig parameter.
pub enum FsParam<'a> {
    Flag(&'a str),
    Str(&'a str, &'a str),
    Fd(&'a str, BorrowedFd<'a>),
}

/// Creates a detached mount of a new `fstype` superblock.
pub fn new_mount(fstype: &str, params: &[FsParam<'_>], attrs: u64) -> std::io::Result<OwnedFd> {
    let t = cstr(fstype)?;
    // SAFETY: t outlives the call.
    let fs = owned(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })?;
    for p in params {
        let (cmd, key, value, aux): (libc::c_uint, CString, Option<CString>, libc::c_int) = match p
        {
            FsParam::Flag(k) => (FSCONFIG_SET_FLAG, cstr(k)?, None, 0),
            FsParam::Str(k, v) => (FSCONFIG_SET_STRING, cstr(k)?, Some(cstr(v)?), 0),
            FsParam::Fd(k, fd) => (FSCONFIG_SET_FD, cstr(k)?, None, fd.as_raw_fd()),
        };
        let vptr = value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
        // SAFETY: key and value outlive the call; fs is an open fs context.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.as_ptr(),
                vptr,
                aux,
            )
        };
        if rc < 0 {
            return Err(last());
        }
    }
    // SAFETY: fs is an open fs context; NULL key and value are allowed for CMD_CREATE.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if rc < 0 {
        return Err(last());
    }
    // SAFETY: fs is a created fs context.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// A detached clone of the mount at `path` under `dirfd` (not recursive);
/// an empty path clones `dirfd` itself.
pub fn clone_tree(dirfd: BorrowedFd<'_>, path: &str) -> std::io::Result<OwnedFd> {
    let p = cstr(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    // SAFETY: p outlives the call.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, dirfd.as_raw_fd(), p.as_ptr(), flags) })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets mount attributes (such as MOUNT_ATTR_RDONLY) on the mount `fd`.
pub fn set_attrs(fd: BorrowedFd<'_>, set: u64) -> std::io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: attr and empty outlive the call; the size passed is attr's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 { Err(last()) } else { Ok(()) }
}

/// Attaches the mount `from` at `to` (an O_PATH fd of the mount point), or
/// at `to_path` under `to` when given.
pub fn move_mount(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    to_path: Option<&str>,
) -> std::io::Result<()> {
    let empty = c"";
    let path = to_path.map(cstr).transpose()?;
    let (tptr, tflags) = match &path {
        Some(p) => (p.as_ptr(), 0),
        None => (empty.as_ptr(), MOVE_MOUNT_T_EMPTY_PATH),
    };
    // SAFETY: both fds are open; the strings outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            tptr,
            MOVE_MOUNT_F_EMPTY_PATH | tflags,
        )
    };
    if rc < 0 { Err(last()) } else { Ok(()) }
}

/// A detached clone of the mount at `source`, with the mounts below it
/// when `recursive`. The thread must be in the source's mount namespace.
pub fn clone_mount(source: BorrowedFd<'_>, recursive: bool) -> std::io::Result<OwnedFd> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let empty = c"";
    // SAFETY: source is open and empty outlives the call.
    owned(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            source.as_raw_fd(),
            empty.as_ptr(),
            flags,
        )
    })
}

/// pidfd_open: pins the caller so its pid cannot be reused while a
/// notification is handled.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// A pidfd that pins task `tid`, which may be any thread of its process (a
/// seccomp notification names the calling thread). PIDFD_THREAD (6.9) pins
/// the thread itself; before it, only a thread-group leader has a pidfd,
/// so the leader, read from the thread's status, is pinned instead.
pub fn pidfd_open_task(tid: i32) -> std::io::Result<OwnedFd> {
    const PIDFD_THREAD: libc::c_long = libc::O_EXCL as libc::c_long;
    // SAFETY: integer arguments only.
    match owned(unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) }) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        other => return other,
    }
    match pidfd_open(tid) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        other => return other,
    }
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    let tgid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    pidfd_open(tgid)
}

/// Becomes uid and gid 0 of the user namespace just entered, keeping the
/// full capability set that entering it gave.
pub fn become_root() -> std::io::Result<()> {
    // SAFETY: integer syscalls only.
    unsafe {
        if libc::setresgid(0, 0, 0) < 0 || libc::setresuid(0, 0, 0) < 0 {
            return Err(last());
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// capget(2) of `pid` (0: this thread): the header to pass back to capset
/// and the two halves of the sets.
fn capget(pid: i32) -> std::io::Result<(CapHeader, [CapData; 2])> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and the two data structs have the kernel's layout for
    // _LINUX_CAPABILITY_VERSION_3 and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(last());
    }
    Ok((header, data))
}

/// The effective capability set of process `pid`, by capget(2): cheaper
/// than reading /proc/PID/status.
pub fn effective_caps(pid: i32) -> std::io::Result<u64> {
    let (_, data) = capget(pid)?;
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

/// Sets this thread's effective capability set to `effective` (a subset of
/// its permitted set).
fn set_effective_caps(effective: u64) -> std::io::Result<()> {
    let (mut header, mut data) = capget(0)?;
    data[0].effective = effective as u32;
    data[1].effective = (effective >> 32) as u32;
    // SAFETY: the kernel's layout, as for capget; capset only changes this
    // thread's sets.
    if unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    } < 0
    {
        return Err(last());
    }
    Ok(())
}

/// mknodat(dir, name) as filesystem IDs `fsuid`/`fsgid` (host IDs), so
/// that the node is the caller's, also on an ID-mapped mount. Changing the
/// filesystem uid from 0 drops CAP_MKNOD from the effective set; it is
/// raised again for the call. The thread's IDs are restored before this
/// returns, or the process aborts rather than serve on with them.
pub fn mknod_as(
    dir: BorrowedFd<'_>,
    name: &str,
    mode: u32,
    dev: libc::dev_t,
    fsuid: u32,
    fsgid: u32,
) -> std::io::Result<()> {
    const CAP_MKNOD: u64 = 1 << 27;
    let name = cstr(name)?;
    let own = effective_caps(0)?;
    // SAFETY: setfsgid and setfsuid only change this thread's filesystem
    // IDs (the raw syscalls; glibc's wrappers are per thread too).
    unsafe {
        libc::setfsgid(fsgid);
        libc::setfsuid(fsuid);
    }
    let result = set_effective_caps(own | CAP_MKNOD).and_then(|()| {
        // SAFETY: dir is a valid fd and name outlives the call.
        if unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) } < 0 {
            Err(last())
        } else {
            Ok(())
        }
    });
    // SAFETY: as above; back to root's filesystem IDs.
    let (uid_now, gid_now) = unsafe {
        libc::setfsuid(0);
        libc::setfsgid(0);
        // Called with an invalid ID, they change nothing and return the
        // current one.
        (libc::setfsuid(u32::MAX), libc::setfsgid(u32::MAX))
    };
    if uid_now != 0 || gid_now != 0 || set_effective_caps(own).is_err() {
        tracing::error!("cannot restore the thread's filesystem IDs");
        std::process::abort();
    }
    result
}

/// Covers `rel` inside the detached mount `tree`: a file with a clone of
/// /dev/null (found under `host_root`), a directory with an empty
/// read-only tmpfs. Returns the mask's mount, or None where `rel` does not
/// exist (as runc skips a masked path that is absent).
pub fn mask_in(
    tree: BorrowedFd<'_>,
    host_root: BorrowedFd<'_>,
    rel: &str,
) -> std::io::Result<Option<OwnedFd>> {
    let at = match open_in_root(tree, rel) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let cover = if is_dir(at.as_fd()) {
        new_mount("tmpfs", &[FsParam::Str("size", "4k")], MOUNT_ATTR_RDONLY)?
    } else {
        clone_tree(host_root, "dev/null")?
    };
    move_mount(cover.as_fd(), at.as_fd(), None)?;
    Ok(Some(cover))
}

/// Makes `rel` inside the detached mount `tree` read-only. Returns the new
/// mount, or None where `rel` does not exist.
pub fn read_only_in(tree: BorrowedFd<'_>, rel: &str) -> std::io::Result<Option<OwnedFd>> {
    let at = match open_in_root(tree, rel) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let clone = clone_tree(at.as_fd(), "")?;
    set_attrs(clone.as_fd(), MOUNT_ATTR_RDONLY)?;
    move_mount(clone.as_fd(), at.as_fd(), None)?;
    Ok(Some(clone))
}

/// Why [`remove_tree`] stopped.
#[derive(Debug)]
pub enum RemoveError {
    /// Something is mounted at this path: nothing under it was touched.
    Mounted(std::path::PathBuf),
    Io(std::path::PathBuf, std::io::Error),
}

impl std::fmt::Display for RemoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoveError::Mounted(p) => write!(
                f,
                "{} is a mount point; nothing under it was removed",
                p.display()
            ),
            RemoveError::Io(p, e) => write!(f, "cannot remove {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for RemoveError {}

/// Removes the directory `path` and everything in it that lies on the same
/// mount, never following a symlink and never crossing into a mount: a
/// mount point anywhere below is an error that names it, and nothing under
/// it is touched. A missing `path` is not an error.
pub fn remove_tree(path: &std::path::Path) -> Result<(), RemoveError> {
    let io = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| RemoveError::Io(p, e)
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        RemoveError::Io(path.to_path_buf(), std::io::ErrorKind::InvalidInput.into())
    })?;
    // SAFETY: c outlives the call.
    let fd = match owned(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    } as libc::c_long)
    {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    let (id, is_root) = mount_of(fd.as_fd()).map_err(io(path))?;
    if is_root {
        return Err(RemoveError::Mounted(path.to_path_buf()));
    }
    empty_dir(fd, id, path)?;
    let parent = path.parent().unwrap_or(std::path::Path::new("/"));
    let name =
        CString::new(path.file_name().map(|n| n.as_bytes()).unwrap_or_default()).map_err(|_| {
            RemoveError::Io(path.to_path_buf(), std::io::ErrorKind::InvalidInput.into())
        })?;
    let pc = CString::new(parent.as_os_str().as_bytes()).map_err(|_| {
        RemoveError::Io(path.to_path_buf(), std::io::ErrorKind::InvalidInput.into())
    })?;
    // SAFETY: pc outlives the call.
    let pfd = owned(unsafe {
        libc::open(
            pc.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ) as libc::c_long
    })
    .map_err(io(parent))?;
    // SAFETY: pfd is open and name outlives the call.
    if unsafe { libc::unlinkat(pfd.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } < 0 {
        return Err(io(path)(last()));
    }
    Ok(())
}

/// Empties the directory `dir` (on mount `mount`), depth first.
fn empty_dir(dir: OwnedFd, mount: u64, path: &std::path::Path) -> Result<(), RemoveError> {
    let io = |p: std::path::PathBuf| move |e: std::io::Error| RemoveError::Io(p, e);
    let dup = dir.try_clone().map_err(io(path.to_path_buf()))?;
    // Dir takes the duplicate over and closes it when dropped.
    let read = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(|e| RemoveError::Io(path.to_path_buf(), e.into()))?;
    let mut names: Vec<CString> = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| RemoveError::Io(path.to_path_buf(), e.into()))?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        names.push(name.to_owned());
    }
    for name in names {
        let child = path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        // SAFETY: dir is open and name outlives the call.
        let sub = owned(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        } as libc::c_long);
        match sub {
            Ok(sub) => {
                let (id, is_root) = mount_of(sub.as_fd()).map_err(io(child.clone()))?;
                if is_root || id != mount {
                    return Err(RemoveError::Mounted(child));
                }
                empty_dir(sub, mount, &child)?;
                // SAFETY: dir is open and name outlives the call.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } < 0
                {
                    return Err(io(child)(last()));
                }
            }
            // Not a directory (or a symlink to one): unlinked as it is.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
                // A file may be a mount point too (a bind of a file).
                // SAFETY: dir is open and name outlives the call.
                let fd = owned(unsafe {
                    libc::openat(
                        dir.as_raw_fd(),
                        name.as_ptr(),
                        libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    )
                } as libc::c_long)
                .map_err(io(child.clone()))?;
                let (id, is_root) = mount_of(fd.as_fd()).map_err(io(child.clone()))?;
                if is_root || id != mount {
                    return Err(RemoveError::Mounted(child));
                }
                // SAFETY: dir is open and name outlives the call.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } < 0 {
                    return Err(io(child)(last()));
                }
            }
            Err(e) => return Err(io(child)(e)),
        }
    }
    Ok(())
}
