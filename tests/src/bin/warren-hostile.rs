//! A hostile program run inside warren containers: each mode tries one
//! attack on the interceptor and prints what happened, one word per line.
//! Built statically by `cargo xtask test`, so that it runs in any rootfs.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn name(e: i32) -> &'static str {
    match e {
        0 => "ok",
        libc::EPERM => "EPERM",
        libc::EFAULT => "EFAULT",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::ENOTDIR => "ENOTDIR",
        libc::EBUSY => "EBUSY",
        _ => "other",
    }
}

/// A path buffer another thread rewrites while the main thread passes it
/// to the kernel.
struct Flipper {
    buf: *mut u8,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct SendPtr(*mut u8);
// SAFETY: the buffer is leaked and lives for the whole process; the race on
// its bytes is the attack.
unsafe impl Send for SendPtr {}

impl Flipper {
    fn new(a: &str, b: &str) -> Flipper {
        let len = a.len().max(b.len()) + 1;
        let buf: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
        buf[..a.len()].copy_from_slice(a.as_bytes());
        let ptr = SendPtr(buf.as_mut_ptr());
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b) = (a.to_owned(), b.to_owned());
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let p = ptr;
            let mut flip = false;
            while !s.load(Ordering::Relaxed) {
                let src = if flip { &a } else { &b };
                // SAFETY: p points at `len` leaked bytes; both strings and
                // their NUL fit.
                unsafe {
                    std::ptr::write_bytes(p.0, 0, len);
                    std::ptr::copy_nonoverlapping(src.as_ptr(), p.0, src.len());
                }
                flip = !flip;
            }
        });
        Flipper {
            buf: buf.as_mut_ptr(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn mount(src: &str, target: *const u8, fstype: &str, flags: libc::c_ulong) -> i32 {
    let s = CString::new(src).unwrap_or_default();
    let t = CString::new(fstype).unwrap_or_default();
    // SAFETY: the strings outlive the call; target may be hostile on
    // purpose, which the kernel and the interceptor must survive.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            target.cast(),
            t.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 { 0 } else { errno() }
}

/// mount(2) of an existing path (a bind or a move); 0 or the errno.
fn mount_from(source: &str, target: &std::ffi::CStr, flags: libc::c_ulong) -> i32 {
    let s = CString::new(source).unwrap_or_default();
    // SAFETY: the strings outlive the call; no type or data.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 { 0 } else { errno() }
}

fn umount(path: &str, flags: libc::c_int) -> i32 {
    let p = CString::new(path).unwrap_or_default();
    // SAFETY: p outlives the call.
    if unsafe { libc::umount2(p.as_ptr(), flags) } == 0 {
        0
    } else {
        errno()
    }
}

fn mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    match mode {
        // Flip the mount target between an allowed directory and a symlink
        // to a masked one.
        "toctou-mount" => {
            let _ = std::fs::create_dir_all("/tmp/ok");
            let _ = std::os::unix::fs::symlink("/proc/acpi", "/tmp/no");
            let f = Flipper::new("/tmp/ok", "/tmp/no");
            let (mut ok, mut denied, mut other) = (0, 0, 0);
            for _ in 0..n {
                match mount("proc", f.buf, "proc", 0) {
                    0 => {
                        ok += 1;
                        umount("/tmp/ok", libc::MNT_DETACH);
                    }
                    libc::EPERM => denied += 1,
                    _ => other += 1,
                }
            }
            drop(f);
            let acpi_proc = mountinfo()
                .lines()
                .any(|l| l.contains(" /proc/acpi ") && l.contains(" - proc "));
            println!("tries {}", ok + denied + other);
            println!(
                "{}",
                if ok > 0 && denied > 0 {
                    "both-raced"
                } else {
                    "one-sided"
                }
            );
            println!(
                "{}",
                if acpi_proc {
                    "acpi-unmasked"
                } else {
                    "acpi-masked"
                }
            );
        }
        // Flip the umount target between the caller's own tmpfs and /proc.
        "toctou-umount" => {
            let _ = std::fs::create_dir_all("/tmp/ok");
            let f = Flipper::new("/tmp/ok", "/proc");
            let mut lost_proc = false;
            for _ in 0..n {
                if mount("t", c"/tmp/ok".as_ptr().cast(), "tmpfs", 0) != 0 {
                    continue;
                }
                let p = f.buf;
                // SAFETY: p is the flipper's NUL-terminated buffer.
                let rc = unsafe { libc::umount2(p.cast(), 0) };
                let _ = rc;
                umount("/tmp/ok", libc::MNT_DETACH);
                if !std::path::Path::new("/proc/1/status").exists() {
                    lost_proc = true;
                    break;
                }
            }
            drop(f);
            println!("{}", if lost_proc { "proc-lost" } else { "proc-kept" });
        }
        // Flip mount(2)'s fstype between "tmpfs" and `fs` (proc or sysfs)
        // while the call is in flight; count the mounts that came out as
        // `fs` without its masks.
        "flip-fstype" => {
            let fs = args.get(3).map(String::as_str).unwrap_or("proc");
            let _ = std::fs::create_dir_all("/tmp/f");
            let f = Flipper::new("tmpfs", fs);
            let (mut tries, mut unmasked) = (0, 0);
            for _ in 0..n {
                let src = c"none";
                // SAFETY: the strings outlive the call; the fstype buffer is
                // the flipper's, raced on purpose.
                let rc = unsafe {
                    libc::mount(
                        src.as_ptr(),
                        c"/tmp/f".as_ptr(),
                        f.buf.cast(),
                        0,
                        std::ptr::null(),
                    )
                };
                tries += 1;
                if rc != 0 {
                    continue;
                }
                let revealed = match fs {
                    "sysfs" => std::fs::read_dir("/tmp/f/firmware").is_ok_and(|d| d.count() > 0),
                    _ => std::fs::read("/tmp/f/timer_list").is_ok_and(|b| !b.is_empty()),
                };
                if revealed {
                    unmasked += 1;
                }
                umount("/tmp/f", libc::MNT_DETACH);
            }
            drop(f);
            println!("tries {tries}");
            println!("unmasked {unmasked}");
        }
        // A thread swaps a directory and a symlink to /sys (RENAME_EXCHANGE)
        // while the main thread unmounts its own tmpfs at d/firmware, by an
        // absolute or a relative path.
        "swap-umount" => {
            let relative = args.get(3).map(String::as_str) == Some("relative");
            let _ = std::fs::create_dir_all("/tmp/r/d/firmware");
            let _ = std::os::unix::fs::symlink("/sys", "/tmp/r/l");
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let swapper = std::thread::spawn(move || {
                while !s2.load(Ordering::Relaxed) {
                    // SAFETY: both names are NUL-terminated literals.
                    unsafe {
                        libc::syscall(
                            libc::SYS_renameat2,
                            libc::AT_FDCWD,
                            c"/tmp/r/d".as_ptr(),
                            libc::AT_FDCWD,
                            c"/tmp/r/l".as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                }
            });
            let _ = std::env::set_current_dir("/tmp/r");
            let target: &std::ffi::CStr = if relative {
                c"d/firmware"
            } else {
                c"/tmp/r/d/firmware"
            };
            for _ in 0..n {
                // Our own tmpfs where d/firmware is a directory of ours.
                let _ = mount("t", target.as_ptr().cast(), "tmpfs", 0);
                // SAFETY: target is a NUL-terminated literal.
                unsafe { libc::umount2(target.as_ptr(), 0) };
            }
            stop.store(true, Ordering::Relaxed);
            let _ = swapper.join();
            let masked = std::fs::read_dir("/sys/firmware").is_ok_and(|d| d.count() == 0);
            let mounted = mountinfo().lines().any(|l| l.contains(" /sys/firmware "));
            println!(
                "{}",
                if masked && mounted {
                    "firmware-kept"
                } else {
                    "firmware-lost"
                }
            );
        }
        "efault" => {
            println!(
                "{}",
                name(mount("proc", std::ptr::dangling::<u8>(), "proc", 0))
            );
            println!(
                "{}",
                name(mount("proc", 0x7fff_ffff_0000 as *const u8, "proc", 0))
            );
            // SAFETY: a NULL target on purpose.
            let rc = unsafe { libc::umount2(std::ptr::null(), 0) };
            println!("{}", name(if rc == 0 { 0 } else { errno() }));
        }
        "too-long" => {
            let long = CString::new(format!("/tmp/{}", "a".repeat(5000))).unwrap_or_default();
            println!("{}", name(mount("proc", long.as_ptr().cast(), "proc", 0)));
        }
        "fsopen" => {
            let t = c"tmpfs";
            // SAFETY: t outlives the call.
            let rc = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), 0) };
            println!("{}", name(if rc >= 0 { 0 } else { errno() }));
        }
        "new-listener" => {
            // A filter that allows everything, asking for a listener.
            let filter = [libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            }];
            let prog = libc::sock_fprog {
                len: 1,
                filter: filter.as_ptr() as *mut _,
            };
            // SAFETY: prog and filter outlive the call.
            let rc = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                libc::syscall(
                    libc::SYS_seccomp,
                    1,
                    1 << 3,
                    &prog as *const libc::sock_fprog,
                )
            };
            println!("{}", name(if rc >= 0 { 0 } else { errno() }));
        }
        // A thread blocks in a trapped mount while the process exits.
        "exit-mid" => {
            std::thread::spawn(|| {
                mount("proc", c"/mnt".as_ptr().cast(), "proc", 0);
            });
            // SAFETY: exits the whole process at once, on purpose.
            unsafe { libc::syscall(libc::SYS_exit_group, 0) };
        }
        // mount(2) with MS_MGC_VAL in the flags, which the kernel strips:
        // a new proc or sysfs at `/tmp/magic` (args: proc|sysfs, and the
        // target), printed as `magic-<fs> result`.
        "magic" => {
            let fs = args.get(2).map(String::as_str).unwrap_or("proc");
            let target = args.get(3).map(String::as_str).unwrap_or("/tmp/magic");
            let _ = std::fs::create_dir_all(target);
            let t = CString::new(target).unwrap_or_default();
            let rc = mount(fs, t.as_ptr().cast(), fs, 0xC0ED_0000);
            println!("magic-{fs} {}", name(rc));
        }
        // open_tree_attr (467): a detached, non-recursive copy of a path.
        "open-tree-attr" => {
            let path = args.get(2).map(String::as_str).unwrap_or("/sys");
            let p = CString::new(path).unwrap_or_default();
            // SAFETY: p outlives the call; a null attr with size 0 is valid.
            let rc = unsafe {
                libc::syscall(
                    467,
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    libc::OPEN_TREE_CLONE,
                    std::ptr::null::<u8>(),
                    0usize,
                )
            };
            println!("open-tree-attr {}", name(if rc >= 0 { 0 } else { errno() }));
        }
        // open_tree(OPEN_TREE_CLONE), non-recursive: a detached copy of a
        // path without what is mounted below it.
        "open-tree" => {
            let path = args.get(2).map(String::as_str).unwrap_or("/sys");
            let p = CString::new(path).unwrap_or_default();
            // SAFETY: p outlives the call.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_open_tree,
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    libc::OPEN_TREE_CLONE,
                )
            };
            println!("open-tree {}", name(if rc >= 0 { 0 } else { errno() }));
        }
        // mount_setattr clearing MOUNT_ATTR_RDONLY on a path.
        "setattr-rw" => {
            let path = args.get(2).map(String::as_str).unwrap_or("/");
            let p = CString::new(path).unwrap_or_default();
            #[repr(C)]
            struct MountAttr {
                attr_set: u64,
                attr_clr: u64,
                propagation: u64,
                userns_fd: u64,
            }
            let attr = MountAttr {
                attr_set: 0,
                attr_clr: 1, // MOUNT_ATTR_RDONLY
                propagation: 0,
                userns_fd: 0,
            };
            // SAFETY: p and attr outlive the call; size is attr's.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    0,
                    &attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                )
            };
            println!("setattr-rw {}", name(if rc >= 0 { 0 } else { errno() }));
        }
        "noop" => {}
        // What engines inside do, each printed as `name result`:
        // a mount and a plain umount from a thread that is not the
        // process's first, a mount onto an O_PATH fd through
        // /proc/self/fd, a move of a mask away, and binds out of proc.
        "engines" => {
            let r = std::thread::spawn(|| {
                let m = mount("t", c"/mnt".as_ptr().cast(), "tmpfs", 0);
                let u = umount("/mnt", 0);
                (m, u)
            })
            .join()
            .unwrap_or((-1, -1));
            println!("thread-mount {}", name(r.0));
            println!("thread-umount {}", name(r.1));
            // SAFETY: a plain open of a NUL-terminated path.
            let fd = unsafe { libc::open(c"/mnt".as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
            let target = CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default();
            println!(
                "fd-mount {}",
                name(mount("proc", target.as_ptr().cast(), "proc", 0))
            );
            println!("fd-umount {}", name(umount("/mnt", libc::MNT_DETACH)));
            let _ = std::fs::File::create("/tmp/moved");
            println!(
                "move-mask {}",
                name(mount_from("/proc/timer_list", c"/tmp/moved", libc::MS_MOVE))
            );
            println!(
                "bind-proc {}",
                name(mount_from("/proc", c"/mnt", libc::MS_BIND))
            );
            println!(
                "bind-proc-magic {}",
                name(mount_from("/proc/self/root/proc", c"/mnt", libc::MS_BIND))
            );
            println!(
                "rbind-proc {}",
                name(mount_from("/proc", c"/mnt", libc::MS_BIND | libc::MS_REC))
            );
            println!("rbind-umount {}", name(umount("/mnt", libc::MNT_DETACH)));
        }
        // One mount and one umount2, then N children that each exec this
        // program (noop); then wait forever.
        "spawn" => {
            mount("t", c"/tmp".as_ptr().cast(), "tmpfs", 0);
            umount("/tmp", 0);
            let exe = c"/opt/warren-hostile";
            let argv = [exe.as_ptr(), c"noop".as_ptr(), std::ptr::null()];
            for _ in 0..n {
                // SAFETY: the child only calls execv and _exit.
                match unsafe { libc::fork() } {
                    // SAFETY: in the child: exec, or exit at once.
                    0 => unsafe {
                        libc::execv(exe.as_ptr(), argv.as_ptr());
                        libc::_exit(127);
                    },
                    pid if pid > 0 => {
                        let mut status = 0;
                        // SAFETY: waits for the child just forked.
                        unsafe { libc::waitpid(pid, &mut status, 0) };
                    }
                    _ => {}
                }
            }
            println!("spawned");
            loop {
                // SAFETY: pause only sleeps.
                unsafe { libc::pause() };
            }
        }
        // Exactly N proc mounts on /mnt, each unmounted: 2N trapped calls.
        // Then print done and wait forever.
        "mounts" => {
            let mut failed = 0;
            for _ in 0..n {
                failed += i32::from(mount("proc", c"/mnt".as_ptr().cast(), "proc", 0) != 0);
                failed += i32::from(umount("/mnt", 0) != 0);
            }
            println!("done {failed} failed");
            loop {
                // SAFETY: pause only sleeps.
                unsafe { libc::pause() };
            }
        }
        // Exactly N getppid calls, then print done.
        "getppid" => {
            for _ in 0..n {
                // SAFETY: getppid has no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            println!("done");
        }
        _ => {
            eprintln!("usage: warren-hostile MODE [N]");
            std::process::exit(2);
        }
    }
}
