//! warren-interceptor: what root inside a system container may mount and
//! unmount, through seccomp user notification.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

fn bundle_dir(name: &str) -> PathBuf {
    target_dir().join("test-bundles").join(unique(name))
}

/// Runs `script` in a new system container and returns its stdout.
fn run_script(
    rt: &Runtime,
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let b = bundle(
        &rt.bin,
        &bundle_dir(name),
        &shared_busybox(),
        &["sh", "-c", script],
        edit,
    );
    let id = unique(name);
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{name}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn a_new_proc_is_mounted_with_the_masks() {
    let rt = Runtime::warren();
    // /proc/kcore does not exist on every kernel; keys, timer_list and acpi
    // are masked by the default spec too.
    let out = run_script(
        &rt,
        "proc",
        "mount -t proc proc /mnt && echo mounted; \
         wc -c < /mnt/keys; wc -c < /mnt/timer_list; ls /mnt/acpi | wc -l; \
         grep -c ' /mnt/keys ' /proc/self/mountinfo; \
         touch /mnt/sys/kernel/x 2>/dev/null || echo sys-read-only; \
         test -d /mnt/1 && echo own-pid-ns; \
         umount /mnt && echo unmounted; grep -c ' /mnt' /proc/self/mountinfo; true",
        |_| {},
    );
    assert_eq!(
        out,
        "mounted\n0\n0\n0\n1\nsys-read-only\nown-pid-ns\nunmounted\n0\n"
    );
}

#[test]
fn unshare_mount_proc_sees_only_its_own_pid_namespace() {
    let rt = Runtime::warren();
    // echo is a builtin: the new namespace's only process is its sh, pid 1.
    let out = run_script(
        &rt,
        "unshare",
        "unshare -pfm --mount-proc sh -c 'echo /proc/[0-9]*'",
        |_| {},
    );
    assert_eq!(out, "/proc/1\n");
}

#[test]
fn a_new_sysfs_is_mounted_read_only_and_masked_like_sys() {
    let rt = Runtime::warren();
    let out = run_script(
        &rt,
        "sysfs",
        "mount -t sysfs sysfs /mnt && echo mounted; ls /mnt/class/net; \
         umount /mnt && echo unmounted",
        |_| {},
    );
    // The container's own network namespace: loopback only.
    assert_eq!(out, "mounted\nlo\nunmounted\n");
}

#[test]
fn the_runtimes_mounts_cannot_be_unmounted_or_made_writable() {
    let rt = Runtime::warren();
    let hostname = bundle_dir("hostname-file");
    std::fs::create_dir_all(&hostname).unwrap();
    std::fs::write(hostname.join("hostname"), "warren-test\n").unwrap();
    let src = hostname.join("hostname");
    let out = run_script(
        &rt,
        "protect",
        "before=$(cat /proc/self/mountinfo | wc -l); \
         umount /proc 2>&1; umount /etc/hostname 2>&1; umount /proc/keys 2>&1; umount /sys 2>&1; \
         mount -o remount,rw / 2>&1; mount -o remount,rw /sys 2>&1; mount -o remount,bind,rw /proc/sys/kernel 2>&1; \
         after=$(cat /proc/self/mountinfo | wc -l); test $before = $after && echo table-unchanged; \
         touch /etc/x 2>/dev/null || echo root-still-read-only",
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/etc/hostname", "type": "bind", "source": src, "options": ["rbind", "ro"]}
            ));
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Operation not permitted"))
            .count(),
        4,
        "{out}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("permission denied"))
            .count(),
        3,
        "{out}"
    );
    assert!(out.contains("table-unchanged"), "{out}");
    assert!(out.contains("root-still-read-only"), "{out}");
}

#[test]
fn binds_inside_work_and_escapes_stay_inside() {
    let rt = Runtime::warren();
    // A file only the host has; no bind inside may reach it.
    let marker = format!("warren-escape-marker-{}", unique("m"));
    std::fs::write(PathBuf::from("/").join(&marker), "host").unwrap();
    // Each escape either binds the container's own root (no marker) or is
    // refused.
    let escape = |src: &str| {
        format!(
            "if mount --bind {src} /mnt 2>/dev/null; then ls /mnt | grep -c {marker}; umount /mnt; \
             else echo 0; fi; "
        )
    };
    let script = format!(
        "mount -t tmpfs t /tmp && mkdir /tmp/a /tmp/b && echo data > /tmp/a/f; \
         mount --bind /tmp/a /tmp/b && cat /tmp/b/f; umount /tmp/b; \
         mount --bind /tmp/a /tmp/a && echo self-bind; umount /tmp/a; \
         cd /tmp && {}ln -s /../../../.. /tmp/up && {}{}{}\
         mount --bind /tmp/a/f /proc/keys 2>&1; wc -c < /proc/keys; umount /proc/keys; wc -c < /proc/keys; true",
        escape("../../.."),
        escape("/tmp/up"),
        escape("/proc/1/root"),
        escape("/proc/self/root/.."),
    );
    let out = run_script(&rt, "escape", &script, |_| {});
    let _ = std::fs::remove_file(PathBuf::from("/").join(&marker));
    // Covering the /proc/keys mask with the container's own file (as a
    // runtime inside masks paths) shows that file, and taking it off shows
    // the mask again: the host's keys are never reached.
    assert_eq!(out, "data\nself-bind\n0\n0\n0\n0\n5\n0\n", "{out}");
}

/// Scrapes the node interceptor's metrics.
fn scrape() -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect("127.0.0.1:9464").expect("metrics endpoint");
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text
}

fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn metrics_count_what_happened() {
    let rt = Runtime::warren();
    let denied = r#"warren_notifications_total{syscall="umount2",action="denied"}"#;
    let emulated = r#"warren_notifications_total{syscall="mount",action="emulated"}"#;
    // Make sure the node interceptor runs, then take the baseline.
    run_script(&rt, "metrics0", "true", |_| {});
    let before = scrape();
    run_script(
        &rt,
        "metrics",
        "umount /proc; umount /sys; mount -t proc p /mnt; umount /mnt; true",
        |_| {},
    );
    let after = scrape();
    assert!(after.starts_with("HTTP/1.1 200 OK"), "{after}");
    assert!(
        counter(&after, denied) >= counter(&before, denied) + 2.0,
        "{after}"
    );
    assert!(
        counter(&after, emulated) >= counter(&before, emulated) + 1.0,
        "{after}"
    );
    assert!(
        after.contains("warren_notification_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(after.contains("\nwarren_ebpf_enabled "), "{after}");
    assert!(after.contains("# TYPE warren_containers gauge"), "{after}");
}

/// The pids of interceptors serving `socket`.
fn interceptors(socket: &std::path::Path) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args([
            "-f",
            &format!("warren-interceptor --socket {}", socket.display()),
        ])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn concurrent_creates_start_one_interceptor_and_a_killed_one_is_replaced() {
    let dir = PathBuf::from("/run/warren-test").join(unique("spawn"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("i.sock");
    let log = dir.join("interceptor.log");
    let rt = Runtime::warren_private(&format!(
        "interceptor-socket = \"{}\"\ninterceptor-log = \"{}\"\ninterceptor-metrics = \"off\"",
        socket.display(),
        log.display()
    ));
    let b = bundle(
        &rt.bin,
        &bundle_dir("spawn"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let ids = [unique("spawn"), unique("spawn")];
    let _g: Vec<_> = ids.iter().map(|id| rt.cleanup(id)).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            rt.command()
                .args(["create", "--bundle", b.to_str().unwrap(), id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn create")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "create failed");
    }
    let pids = interceptors(&socket);
    assert_eq!(pids.len(), 1, "interceptors: {pids:?}");

    // kill -9; the next container starts a fresh one on the stale socket.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(interceptors(&socket).is_empty());
    let id = unique("spawn");
    let _g2 = rt.cleanup(&id);
    rt.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let fresh = interceptors(&socket);
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0], pids[0]);
    for id in ids.iter().chain([&id]) {
        rt.ok(&["delete", "--force", id]);
    }
    for pid in fresh {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn garbage_and_fdless_connections_do_not_hurt_the_interceptor() {
    use std::io::Write;
    let rt = Runtime::warren();
    run_script(&rt, "garbage0", "true", |_| {});
    let socket = "/run/warren/interceptor.sock";
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("interceptor answers");
    s.write_all(b"\x00\xffnot json at all").unwrap();
    drop(s);
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let state = serde_json::json!({"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": 1,
        "state": {"ociVersion": "1.0.2", "id": "x", "status": "creating", "pid": 1, "bundle": "/"}});
    s.write_all(state.to_string().as_bytes()).unwrap();
    drop(s);
    let big = vec![b'{'; 200_000];
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let _ = s.write_all(&big);
    drop(s);
    // Still serving: a container's proc mount is emulated.
    let out = run_script(&rt, "garbage", "mount -t proc p /mnt && echo ok", |_| {});
    assert_eq!(out, "ok\n");
}

/// Runs the hostile program in a container (bound read-only at /opt) with
/// a writable tmpfs /tmp.
fn hostile(rt: &Runtime, args: &str) -> String {
    let bin = warren_tests::fixtures::hostile_bin();
    let dir = bin.parent().unwrap().to_path_buf();
    run_script(
        rt,
        "hostile",
        &format!("mount -t tmpfs t /tmp && /opt/warren-hostile {args}"),
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/opt", "type": "bind", "source": dir, "options": ["rbind", "ro"]}
            ));
        },
    )
}

#[test]
fn the_safe_devices_are_made_for_the_caller_and_no_others() {
    let rt = Runtime::warren();
    let rootfs = warren_tests::fixtures::private_busybox(&bundle_dir("mknod-rootfs"));
    let b = bundle(
        &rt.bin,
        &bundle_dir("mknod"),
        &rootfs,
        &[
            "sh",
            "-c",
            // /var/lib/docker is a plain host directory, /root is on the
            // ID-mapped rootfs.
            "for d in /var/lib/docker /root; do cd $d; \
               mknod null c 1 3 && echo hi > null && stat -c \"$d null %u %t:%T\" null; \
               mknod zero c 1 5 && echo \"$d zero $(head -c 5 zero | wc -c)\"; done; \
             mknod /root/mem c 1 1 2>/dev/null || echo mem refused; \
             mknod /root/kmsg c 1 11 2>/dev/null || echo kmsg refused; \
             mknod /root/wh c 0 0 && echo whiteout made; \
             mknod /root/../../etc/../root/tty c 5 0 && ls /root/tty >/dev/null && echo tty made; \
             test ! -e /root/mem && echo no mem",
        ],
        |spec| {
            spec["root"]["readonly"] = false.into();
        },
    );
    let id = unique("mknod");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for line in [
        "/var/lib/docker null 0 1:3",
        "/var/lib/docker zero 5",
        "/root null 0 1:3",
        "/root zero 5",
        "mem refused",
        "kmsg refused",
        "whiteout made",
        "tty made",
        "no mem",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    let _ = std::fs::remove_dir_all(rootfs);
}

#[test]
fn what_engines_inside_do_works_and_unmasking_does_not() {
    let rt = Runtime::warren();
    let out = hostile(&rt, "engines");
    for line in [
        // A Go daemon's mounts come from any of its threads.
        "thread-mount ok",
        // A plain umount of the container's own tmpfs.
        "thread-umount ok",
        // systemd mounts onto O_PATH fds.
        "fd-mount ok",
        "fd-umount ok",
        // A mask moved off /proc/timer_list would uncover it.
        "move-mask EPERM",
        // A non-recursive copy of /proc would leave its masks behind.
        "bind-proc EPERM",
        // Nor may a path through a magic link slip it past the check.
        "bind-proc-magic ENOENT",
        "rbind-proc ok",
        "rbind-umount ok",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn a_racing_mount_target_never_lands_on_a_mask() {
    let rt = Runtime::warren();
    let out = hostile(&rt, "toctou-mount 10000");
    assert!(out.contains("tries 10000"), "{out}");
    assert!(out.contains("acpi-masked"), "{out}");
}

#[test]
fn a_racing_umount_target_never_unmounts_proc() {
    let rt = Runtime::warren();
    let out = hostile(&rt, "toctou-umount 10000");
    assert_eq!(out, "proc-kept\n");
}

#[test]
fn bad_pointers_and_long_paths_get_the_kernels_errors() {
    let rt = Runtime::warren();
    assert_eq!(hostile(&rt, "efault"), "EFAULT\nEFAULT\nEFAULT\n");
    assert_eq!(hostile(&rt, "too-long"), "ENAMETOOLONG\n");
}

#[test]
fn the_fd_mount_api_and_nested_listeners_are_refused_by_the_filter() {
    let rt = Runtime::warren();
    assert_eq!(hostile(&rt, "fsopen"), "ENOSYS\n");
    assert_eq!(hostile(&rt, "new-listener"), "EINVAL\n");
}

#[test]
fn a_container_that_exits_mid_notification_does_not_wedge_the_interceptor() {
    let rt = Runtime::warren();
    for _ in 0..20 {
        hostile(&rt, "exit-mid");
    }
    let out = run_script(&rt, "after-exit", "mount -t proc p /mnt && echo ok", |_| {});
    assert_eq!(out, "ok\n");
}

#[test]
fn an_interceptor_that_cannot_start_fails_create_cleanly() {
    // A socket path that is a directory: the interceptor cannot bind it
    // and exits at once.
    let dir = PathBuf::from("/run/warren-test").join(unique("nostart"));
    let socket = dir.join("i.sock");
    std::fs::create_dir_all(&socket).unwrap();
    let rt = Runtime::warren_private(&format!(
        "interceptor-socket = \"{}\"\ninterceptor-log = \"{}\"\ninterceptor-metrics = \"off\"",
        socket.display(),
        dir.join("log").display()
    ));
    let b = bundle(
        &rt.bin,
        &bundle_dir("nostart"),
        &shared_busybox(),
        &["true"],
        |_| {},
    );
    let id = unique("nostart");
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("warren-interceptor"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!rt.root.join(&id).exists());
    assert!(!rt.root.join("@prepared").join(&id).exists());
    assert!(rt.allocations().is_empty(), "{:?}", rt.allocations());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&format!("{}/", rt.root.display())));
    assert!(err.contains("exited"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_superblock_remount_is_made_with_the_containers_credentials() {
    let rt = Runtime::warren();
    let data = bundle_dir("sbdata");
    std::fs::create_dir_all(&data).unwrap();
    let out = run_script(
        &rt,
        "sbremount",
        "mount -t proc p /mnt && mount -o remount,ro /mnt && grep ' /mnt ' /proc/self/mountinfo | grep -c ' ro,'; \
         mount -o remount,rw /mnt && grep ' /mnt ' /proc/self/mountinfo | grep -c ' rw,'; umount /mnt; \
         mount -o remount,ro /data 2>&1; true",
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]}
            ));
        },
    );
    // The container's own proc can be reconfigured; the host filesystem
    // under /data belongs to the host, and only host root could.
    assert_eq!(
        out, "1\n1\nmount: permission denied (are you root?)\n",
        "{out}"
    );
    std::fs::write(data.join("still-writable"), "x").expect("the host filesystem stayed writable");
}
