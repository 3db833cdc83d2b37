//! ID-mapped mounts, made outside the container before libcontainer runs.
//!
//! libcontainer 0.7 cannot make ID-mapped mounts. warren clones the source
//! tree detached (`open_tree`), maps it through a user namespace that has
//! the container's mapping (`mount_setattr(MOUNT_ATTR_IDMAP)`) and attaches
//! it at a staging path under the state root (`move_mount`). The spec then
//! points there; libcontainer's bind and pivot_root keep the mapping.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use oci_spec::runtime::LinuxIdMapping;

#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    #[error("cannot create a user namespace for the ID mapping")]
    Userns(#[source] std::io::Error),
    #[error("cannot write the ID mapping {path}")]
    WriteMap {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot clone the mount tree at {path}")]
    OpenTree {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is on {fstype}, which cannot be ID-mapped (set rootfs-fallback = \"chown\" in /etc/warren/config.toml to copy it instead)"
    )]
    Unsupported {
        path: PathBuf,
        fstype: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot attach the ID-mapped mount at {path}")]
    MoveMount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` from <linux/mount.h>.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(path: &Path) -> Result<CString, IdmapError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| IdmapError::Io {
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

fn format_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace with the given mappings, held by its fd. The helper
/// process that created it is gone by the time this returns.
pub fn userns_with(
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<OwnedFd, IdmapError> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| IdmapError::Userns(e.into()))?;
    let (done_r, done_w) = nix::unistd::pipe().map_err(|e| IdmapError::Userns(e.into()))?;
    // SAFETY: warren-runc is single-threaded here, and the child only makes
    // async-signal-safe calls (unshare, write, read, _exit) on fds it owns.
    let fork = unsafe { nix::unistd::fork() }.map_err(|e| IdmapError::Userns(e.into()))?;
    match fork {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            drop(done_w);
            // SAFETY: plain syscalls on fds this process owns; the buffer
            // outlives each call; _exit never returns.
            unsafe {
                let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                    1
                } else {
                    0
                };
                libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
                let mut buf = 0u8;
                libc::read(done_r.as_raw_fd(), (&mut buf as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let result = map_child(child, &ready_r, uids, gids);
            // Closing the pipe lets the helper exit.
            drop(done_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

fn map_child(
    child: Pid,
    ready: &OwnedFd,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<OwnedFd, IdmapError> {
    let mut ok = [0u8; 1];
    let n =
        nix::unistd::read(ready.as_raw_fd(), &mut ok).map_err(|e| IdmapError::Userns(e.into()))?;
    if n != 1 || ok[0] != 1 {
        return Err(IdmapError::Userns(std::io::Error::other(
            "the helper could not unshare its user namespace",
        )));
    }
    for (file, maps) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, format_map(maps))
            .map_err(|source| IdmapError::WriteMap { path, source })?;
    }
    let ns = format!("/proc/{child}/ns/user");
    let file = std::fs::File::open(&ns).map_err(IdmapError::Userns)?;
    Ok(OwnedFd::from(file))
}

/// The filesystem type of `path`, by name where warren knows it.
pub fn fs_type(path: &Path) -> String {
    let Ok(st) = nix::sys::statfs::statfs(path) else {
        return "an unknown filesystem".to_owned();
    };
    let magic = st.filesystem_type().0 as u64;
    match magic {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x8584_58F6 => "ramfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "fuse".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0x9FA0 => "procfs".into(),
        other => format!("filesystem type {other:#x}"),
    }
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Attaches an ID-mapped clone of `source` at `target` (an existing
/// directory or file), mapped through `userns`.
pub fn bind_idmapped(
    source: &Path,
    target: &Path,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<(), IdmapError> {
    bind_clone(source, target, Some(userns), recursive)
}

/// Attaches a clone of the mount tree at `source` at `target`, ID-mapped
/// through `userns` when given.
pub fn bind_clone(
    source: &Path,
    target: &Path,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> Result<(), IdmapError> {
    let src = cstr(source)?;
    let dst = cstr(target)?;
    let rec = if recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: src is a valid NUL-terminated path that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec,
        )
    };
    if fd < 0 {
        return Err(IdmapError::OpenTree {
            path: source.to_owned(),
            source: last_error(),
        });
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let empty = c"";
    if let Some(userns) = userns {
        set_idmap(&tree, source, userns, rec)?;
    }
    // SAFETY: tree is an open detached mount; dst and empty are valid
    // NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(IdmapError::MoveMount {
            path: target.to_owned(),
            source: last_error(),
        });
    }
    Ok(())
}

fn set_idmap(
    tree: &OwnedFd,
    source: &Path,
    userns: BorrowedFd<'_>,
    rec: libc::c_uint,
) -> Result<(), IdmapError> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: tree and userns are open fds; attr and empty outlive the
    // call, and the size passed is attr's.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(IdmapError::Unsupported {
            path: source.to_owned(),
            fstype: fs_type(source),
            source: last_error(),
        });
    }
    Ok(())
}

/// Detaches whatever is mounted at `target`; nothing mounted is fine.
pub fn unmount(target: &Path) -> Result<(), IdmapError> {
    match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(IdmapError::Io {
            path: target.to_owned(),
            source: e.into(),
        }),
    }
}

/// Maps a container ID to the host through `maps`; IDs outside every
/// range map to the range's overflow ID (nobody, 65534) where mapped.
pub fn to_host(id: u32, maps: &[LinuxIdMapping]) -> Option<u32> {
    maps.iter().find_map(|m| {
        let off = id.checked_sub(m.container_id())?;
        (off < m.size()).then(|| m.host_id() + off)
    })
}

/// Copies `src` to `dst` with every owner shifted through the mappings: the
/// rootfs fallback for filesystems that cannot be ID-mapped.
pub fn shifted_copy(
    src: &Path,
    dst: &Path,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), IdmapError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| IdmapError::Io { path, source }
    };
    let meta = std::fs::symlink_metadata(src).map_err(io(src))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dst).map_err(io(dst))?;
        for entry in std::fs::read_dir(src).map_err(io(src))? {
            let entry = entry.map_err(io(src))?;
            shifted_copy(&entry.path(), &dst.join(entry.file_name()), uids, gids)?;
        }
    } else if ft.is_symlink() {
        let to = std::fs::read_link(src).map_err(io(src))?;
        std::os::unix::fs::symlink(to, dst).map_err(io(dst))?;
    } else if ft.is_file() {
        std::fs::copy(src, dst).map_err(io(dst))?;
    } else {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
        let perm = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
        nix::sys::stat::mknod(dst, kind, perm, meta.rdev()).map_err(|e| io(dst)(e.into()))?;
    }
    let overflow_uid = to_host(65534, uids);
    let overflow_gid = to_host(65534, gids);
    let uid = to_host(meta.uid(), uids).or(overflow_uid);
    let gid = to_host(meta.gid(), gids).or(overflow_gid);
    std::os::unix::fs::lchown(dst, uid, gid).map_err(io(dst))?;
    if !ft.is_symlink() {
        // chown clears set-id bits: restore the mode afterwards.
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(dst))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(c)
            .host_id(h)
            .size(s)
            .build()
            .unwrap()
    }

    #[test]
    fn ids_map_through_ranges() {
        let maps = [map(0, 100000, 1000), map(1000, 500000, 10)];
        assert_eq!(to_host(0, &maps), Some(100000));
        assert_eq!(to_host(999, &maps), Some(100999));
        assert_eq!(to_host(1005, &maps), Some(500005));
        assert_eq!(to_host(1010, &maps), None);
    }

    #[test]
    fn map_files_have_one_line_per_range() {
        assert_eq!(format_map(&[map(0, 1, 2), map(5, 6, 7)]), "0 1 2\n5 6 7\n");
    }
}

/// The layers of an overlay mounted at exactly `path`, when it is one.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayLayers {
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
}

pub fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Parses /proc/self/mountinfo text for an overlay mounted at `path`.
pub fn overlay_in(mountinfo: &str, path: &Path) -> Option<OverlayLayers> {
    mountinfo.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = unescape_mountinfo(left.split(' ').nth(4)?);
        let mut r = right.split(' ');
        let fstype = r.next()?;
        let _source = r.next()?;
        let options = r.next().unwrap_or_default();
        if fstype != "overlay" || Path::new(&mount_point) != path {
            return None;
        }
        let mut layers = OverlayLayers {
            lower: Vec::new(),
            upper: None,
            work: None,
        };
        for opt in options.split(',') {
            if let Some(v) = opt.strip_prefix("lowerdir=") {
                layers.lower = v
                    .split(':')
                    .map(|p| PathBuf::from(unescape_mountinfo(p)))
                    .collect();
            } else if let Some(v) = opt.strip_prefix("upperdir=") {
                layers.upper = Some(PathBuf::from(unescape_mountinfo(v)));
            } else if let Some(v) = opt.strip_prefix("workdir=") {
                layers.work = Some(PathBuf::from(unescape_mountinfo(v)));
            }
        }
        Some(layers)
    })
}

pub fn overlay_at(path: &Path) -> Option<OverlayLayers> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    overlay_in(&mountinfo, path)
}

/// Mounts at `target` an overlay equal to `layers`, with ID-mapped clones of
/// its lower layers (staged under `stage`). An overlay cannot itself be
/// ID-mapped; its lower layers can. The upper layer is not: overlay writes
/// it with the mounter's credentials, which an ID-mapped upper would not map.
/// Its root directory is given to the container's root (`root_owner`, host
/// IDs), and what the container writes lands in it under the container's
/// host IDs, as it would without ID mapping.
pub fn idmapped_overlay(
    layers: &OverlayLayers,
    stage: &Path,
    target: &Path,
    userns: BorrowedFd<'_>,
    root_owner: (u32, u32),
) -> Result<(), IdmapError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| IdmapError::Io { path, source }
    };
    let clone = |src: &Path, name: String| -> Result<PathBuf, IdmapError> {
        let dst = stage.join(name);
        std::fs::create_dir_all(&dst).map_err(io(&dst))?;
        bind_idmapped(src, &dst, userns, false)?;
        Ok(dst)
    };
    let mut lowers = Vec::new();
    for (i, l) in layers.lower.iter().enumerate() {
        lowers.push(clone(l, format!("l{i}"))?);
    }
    let mut data = format!(
        "lowerdir={}",
        lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    );
    if let (Some(upper), Some(work)) = (&layers.upper, &layers.work) {
        std::os::unix::fs::chown(upper, Some(root_owner.0), Some(root_owner.1))
            .map_err(io(upper))?;
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| IdmapError::MoveMount {
        path: target.to_owned(),
        source: e.into(),
    })
}

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn finds_the_overlay_at_a_path() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
            99 22 0:55 / /run/c/rootfs rw,relatime - overlay overlay rw,lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/3/fs,workdir=/s/3/work,index=off\n";
        let l = overlay_in(info, Path::new("/run/c/rootfs")).expect("overlay");
        assert_eq!(
            l.lower,
            vec![PathBuf::from("/s/2/fs"), PathBuf::from("/s/1/fs")]
        );
        assert_eq!(l.upper, Some(PathBuf::from("/s/3/fs")));
        assert_eq!(l.work, Some(PathBuf::from("/s/3/work")));
        assert!(overlay_in(info, Path::new("/proc")).is_none());
        assert!(overlay_in(info, Path::new("/run/c")).is_none());
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
