//! Root inside a system container attacks warren's protections the way an
//! attacker would, one attack class per test. Each test looks at the
//! protected object afterwards (the mask still hides its file, the host's
//! file is unchanged), not only at the errno.

use std::path::PathBuf;
use std::time::Duration;

use warren_tests::fixtures::{bundle, hostile_bin, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

fn bundle_dir(name: &str) -> PathBuf {
    target_dir().join("test-bundles").join(unique(name))
}

/// A spec edit that binds the hostile program at /opt and gives /tmp a
/// tmpfs of the container's own.
fn with_hostile(spec: &mut serde_json::Value) {
    let dir = hostile_bin().parent().unwrap().to_path_buf();
    let mounts = spec["mounts"].as_array_mut().unwrap();
    mounts.push(serde_json::json!(
        {"destination": "/opt", "type": "bind", "source": dir, "options": ["rbind", "ro"]}
    ));
    mounts.push(serde_json::json!(
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
    ));
}

/// Runs `script` as the init of a new system container; returns stdout.
fn run(
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
        |spec| {
            with_hostile(spec);
            edit(spec);
        },
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

fn has_line(out: &str, line: &str) {
    assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
}

/// A running system container whose init sleeps; deleted when dropped.
struct Running<'a> {
    rt: &'a Runtime,
    id: String,
}

impl<'a> Running<'a> {
    fn start(rt: &'a Runtime, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Self {
        Running::start_as(rt, name, &unique(name), edit)
    }

    fn start_as(
        rt: &'a Runtime,
        name: &str,
        id: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Self {
        let b = bundle(
            &rt.bin,
            &bundle_dir(name),
            &shared_busybox(),
            &["sleep", "1000"],
            |spec| {
                with_hostile(spec);
                edit(spec);
            },
        );
        let id = id.to_owned();
        rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
        rt.wait_status(&id, "running", Duration::from_secs(10));
        Running { rt, id }
    }

    fn exec(&self, extra: &[&str], script: &str) -> String {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&self.id, "sh", "-c", script]);
        self.rt.ok(&args)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

/// What an exec'd shell tries on the masks; the last lines show the masks.
const UNMASK: &str = "grep Seccomp: /proc/self/status; \
     umount /proc/keys 2>/dev/null && echo keys-unmounted; \
     umount /proc/timer_list 2>/dev/null && echo timer-unmounted; \
     umount /sys/firmware 2>/dev/null && echo firmware-unmounted; \
     echo keys $(wc -c < /proc/keys); echo timer $(wc -c < /proc/timer_list); \
     echo firmware $(ls /sys/firmware | wc -l)";

fn masks_held(out: &str) {
    has_line(out, "Seccomp:\t2");
    for line in ["keys 0", "timer 0", "firmware 0"] {
        has_line(out, line);
    }
    assert!(!out.contains("unmounted"), "{out}");
}

#[test]
fn an_execd_root_process_is_under_the_filter_and_cannot_unmask() {
    let rt = Runtime::warren();
    let c = Running::start(&rt, "exec-root", |_| {});
    masks_held(&c.exec(&[], UNMASK));
}

#[test]
fn an_execd_process_of_any_user_joins_the_container_under_the_filter() {
    let rt = Runtime::warren();
    let c = Running::start(&rt, "exec-user", |_| {});
    for (flag, uid) in [("1000", "1000"), ("65534:65534", "65534"), ("4321", "4321")] {
        let out = c.exec(
            &["-u", flag],
            "id -u; grep Seccomp: /proc/self/status; grep CapEff /proc/self/status",
        );
        has_line(&out, uid);
        has_line(&out, "Seccomp:\t2");
    }
}

#[test]
fn a_shims_process_file_exec_is_under_the_filter_too() {
    let rt = Runtime::warren();
    let c = Running::start(&rt, "exec-file", |_| {});
    let dir = bundle_dir("exec-file-process");
    std::fs::create_dir_all(&dir).unwrap();
    let process = dir.join("process.json");
    std::fs::write(
        &process,
        serde_json::to_vec(&serde_json::json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", UNMASK],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]}
        }))
        .unwrap(),
    )
    .unwrap();
    let out = rt.ok(&["exec", "--process", process.to_str().unwrap(), &c.id]);
    masks_held(&out);
}

#[test]
fn the_specs_own_profile_applies_to_init_and_exec() {
    let rt = Runtime::warren();
    let deny_mkdir = |spec: &mut serde_json::Value| {
        spec["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    };
    let c = Running::start(&rt, "exec-profile", deny_mkdir);
    let out = c.exec(
        &[],
        "mkdir /tmp/made 2>/dev/null; test -d /tmp/made && echo made || echo refused; \
         grep Seccomp: /proc/self/status",
    );
    has_line(&out, "refused");
    has_line(&out, "Seccomp:\t2");
    let out = run(
        &rt,
        "init-profile",
        "mkdir /tmp/made 2>/dev/null; test -d /tmp/made && echo made || echo refused",
        deny_mkdir,
    );
    has_line(&out, "refused");
}

#[test]
fn the_flag_magic_does_not_slip_a_fresh_proc_or_sysfs_past_the_masks() {
    let rt = Runtime::warren();
    let out = run(
        &rt,
        "magic",
        "/opt/warren-hostile magic proc /tmp/p; echo timer $(wc -c < /tmp/p/timer_list); \
         echo keys $(wc -c < /tmp/p/keys); \
         /opt/warren-hostile magic sysfs /tmp/s; echo firmware $(ls /tmp/s/firmware | wc -l); \
         /opt/warren-hostile magic proc /proc; echo over-proc-timer $(wc -c < /proc/timer_list)",
        |_| {},
    );
    for line in [
        "magic-proc ok",
        "timer 0",
        "keys 0",
        "magic-sysfs ok",
        "firmware 0",
        "over-proc-timer 0",
    ] {
        has_line(&out, line);
    }
}

#[test]
fn the_whole_fd_mount_api_is_refused_and_read_only_mounts_stay_so() {
    let rt = Runtime::warren();
    let rootfs = warren_tests::fixtures::private_busybox(&bundle_dir("setattr-rootfs"));
    let b = bundle(
        &rt.bin,
        &bundle_dir("setattr"),
        &rootfs,
        &[
            "sh",
            "-c",
            "/opt/warren-hostile open-tree-attr /sys; /opt/warren-hostile open-tree-attr /proc; \
             /opt/warren-hostile setattr-rw /; touch /written-through 2>/dev/null && echo root-written; \
             /opt/warren-hostile setattr-rw /sys; \
             /opt/warren-hostile setattr-rw /proc/sys/kernel; \
             awk '$5 == \"/\" || $5 == \"/sys\" || $5 == \"/proc/sys/kernel\" {print $5, substr($6, 1, 2)}' /proc/self/mountinfo",
        ],
        |spec| {
            with_hostile(spec);
            spec["root"]["readonly"] = true.into();
        },
    );
    let id = unique("setattr");
    let g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for line in [
        "open-tree-attr ENOSYS",
        "setattr-rw ENOSYS",
        "/ ro",
        "/sys ro",
        "/proc/sys/kernel ro",
    ] {
        has_line(&text, line);
    }
    assert!(!text.contains("root-written"), "{text}");
    assert_eq!(text.matches("open-tree-attr ENOSYS").count(), 2, "{text}");
    assert_eq!(text.matches("setattr-rw ENOSYS").count(), 3, "{text}");
    drop(g);
    assert!(
        !rootfs.join("written-through").exists(),
        "a file landed in the host's rootfs"
    );
    let _ = std::fs::remove_dir_all(rootfs);
}

#[test]
fn a_console_node_that_would_open_the_hosts_console_is_refused() {
    let rt = Runtime::warren();
    let out = run(
        &rt,
        "console",
        "mknod /tmp/console c 5 1 2>/dev/null && echo made; \
         test -e /tmp/console && echo exists || echo absent; \
         mknod /tmp/ptmx c 5 2 && echo ptmx-made",
        |_| {},
    );
    has_line(&out, "absent");
    has_line(&out, "ptmx-made");
    assert!(!out.lines().any(|l| l == "made"), "{out}");
}

/// The pids of the children of `pid` (every thread's).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

#[test]
fn the_interceptors_helper_holds_no_fd_it_does_not_need() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = PathBuf::from("/run/warren-test").join(unique("fds"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("i.sock");
    let rt = Runtime::warren_private(&format!(
        "interceptor-socket = \"{}\"\ninterceptor-log = \"{}\"\ninterceptor-metrics = \"off\"",
        socket.display(),
        dir.join("interceptor.log").display()
    ));
    let b = bundle(
        &rt.bin,
        &bundle_dir("fds"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("fds");
    // This test's own daemon goes with it, whatever happens below (after
    // the container, whose guard is dropped first).
    struct Daemon(PathBuf);
    impl Drop for Daemon {
        fn drop(&mut self) {
            if let Some(pid) = warren_tests::try_listener_of(&self.0) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
    let _daemon = Daemon(socket.clone());
    let _g = rt.cleanup(&id);
    // warren-runc, and so the interceptor it starts, inherits an open pipe
    // at fd 100, as from a careless parent.
    let (r, _w) = nix::unistd::pipe().unwrap();
    let raw = r.as_raw_fd();
    let mut cmd = rt.command();
    cmd.args(["create", "--bundle", b.to_str().unwrap(), &id]);
    // SAFETY: dup2 is async-signal-safe; r stays open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 100) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = warren_tests::runtime::output_via_files(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    rt.ok(&["start", &id]);
    // A superblock remount is made by the per-container helper.
    let out = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mount -t proc p /mnt && mount -o remount,ro /mnt && echo remounted",
    ]);
    assert_eq!(out, "remounted\n");
    let daemon = warren_tests::listener_of(&socket);
    let helpers = children_of(daemon);
    assert!(!helpers.is_empty(), "no helper was started");
    for helper in helpers {
        let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{helper}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        fds.sort();
        // stdio (the request socket and the log) and its own handle on the
        // host's /proc; nothing of the daemon's or of whoever started it.
        let extra: Vec<(i32, String)> = fds
            .iter()
            .filter(|&&fd| fd > 2)
            .map(|&fd| {
                let target = std::fs::read_link(format!("/proc/{helper}/fd/{fd}"))
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                (fd, target)
            })
            .filter(|(_, t)| t != "/proc")
            .collect();
        assert!(extra.is_empty(), "helper {helper} holds {extra:?}");
        assert!(!fds.contains(&100), "the inherited pipe reached the helper");
    }
    rt.ok(&["delete", "--force", &id]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What root inside tries on every mask and read-only path; one line per
/// attempt that the kernel let through (none expected), then the state of
/// the protected objects.
const KERNEL_ATTACKS: &str = r#"
for m in /proc/keys /proc/timer_list /proc/kcore /proc/acpi /proc/scsi /sys/firmware; do
  test -e $m || continue
  umount $m 2>/dev/null && echo "umounted $m"
  umount -l $m 2>/dev/null && echo "lazily umounted $m"
  mkdir -p /tmp/to; mount --move $m /tmp/to 2>/dev/null && echo "moved $m"
done
for r in /proc/sys/kernel /proc/sys/vm /proc/bus /proc/sysrq-trigger /proc/irq; do
  test -e $r || continue
  mount -o remount,bind,rw $r 2>/dev/null && echo "remounted $r rw"
  /opt/warren-hostile setattr-rw $r | grep -v EPERM
  umount -l $r 2>/dev/null && echo "umounted $r"
done
/opt/warren-hostile open-tree /proc | grep -v EINVAL
/opt/warren-hostile open-tree /sys | grep -v EINVAL
/opt/warren-hostile open-tree-attr /proc | grep -v EINVAL
/opt/warren-hostile open-tree-attr /sys | grep -v EINVAL
mkdir -p /tmp/p /tmp/rp
mount -t proc proc /tmp/p 2>/dev/null && echo "fresh proc"
mount -t sysfs sysfs /tmp/p 2>/dev/null && echo "fresh sysfs"
/opt/warren-hostile magic proc /tmp/p | grep -v EPERM
mount --bind /proc /tmp/p 2>/dev/null && echo "non-recursive bind of proc"
mount --rbind /proc /tmp/rp && { umount /tmp/rp/keys 2>/dev/null && echo "umounted the copy's mask"; }
unshare -m sh -c 'umount /proc/keys 2>/dev/null && echo "umounted in a nested namespace"; mount -o remount,bind,rw /proc/sys/kernel 2>/dev/null && echo "remounted rw in a nested namespace"'
echo timer $(wc -c < /proc/timer_list)
echo firmware $(ls /sys/firmware | wc -l)
awk '$5 == "/proc/sys/kernel" {print "kernel-sysctl", substr($6, 1, 2)}' /proc/self/mountinfo
echo done
"#;

fn kernel_attacks_fail(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["timer 0", "firmware 0", "kernel-sysctl ro", "done"],
        "the kernel let something through:\n{out}"
    );
}

#[test]
fn the_kernel_alone_refuses_to_undo_masks_and_read_only_paths() {
    // No filter and no interceptor: only the kernel's locks stand.
    let rt = Runtime::warren_private("intercept = false");
    let out = run(&rt, "kernel-locks", KERNEL_ATTACKS, |_| {});
    kernel_attacks_fail(&out);
}

#[test]
fn an_execd_process_meets_the_same_locks() {
    let rt = Runtime::warren_private("intercept = false");
    let c = Running::start(&rt, "kernel-locks-exec", |_| {});
    kernel_attacks_fail(&c.exec(&[], KERNEL_ATTACKS));
}

fn init_pid(rt: &Runtime, id: &str) -> i64 {
    rt.state(id)["pid"].as_i64().expect("a running init")
}

fn memory_cgroup_of(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("the init's cgroups")
        .lines()
        .find(|l| l.contains(":memory:"))
        .expect("a memory cgroup")
        .to_owned()
}

#[test]
fn one_id_under_two_state_roots_is_two_containers() {
    // Two containerd namespaces, say: each has its own state root.
    let (one, two) = (Runtime::warren(), Runtime::warren());
    let id = unique("twin");
    let a = Running::start_as(&one, "twin-a", &id, |_| {});
    let b = Running::start_as(&two, "twin-b", &id, |_| {});
    let (pa, pb) = (init_pid(&one, &id), init_pid(&two, &id));
    assert_ne!(
        memory_cgroup_of(pa),
        memory_cgroup_of(pb),
        "one cgroup for both"
    );
    masks_held(&a.exec(&[], UNMASK));
    masks_held(&b.exec(&[], UNMASK));
    // Deleting one leaves the other running, with its own masks.
    drop(a);
    assert_eq!(two.state(&id)["status"], "running");
    assert!(std::path::Path::new(&format!("/proc/{pb}")).exists());
    masks_held(&b.exec(&[], UNMASK));
}

/// Whether a host user other than root (nobody) can stat `path`.
fn nobody_reaches(path: &std::path::Path) -> bool {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "stat"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("setpriv (util-linux)")
        .success()
}

#[test]
fn a_setuid_file_made_inside_is_never_within_reach_of_host_users() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let rt = Runtime::warren();
    let script = "touch /suid && chmod 4755 /suid && echo made";
    let edit = |spec: &mut serde_json::Value| {
        spec["root"]["readonly"] = false.into();
    };
    // A writable rootfs that every host user can reach: refused, naming it.
    let open_parent = target_dir().join("test-reachable").join(unique("suid"));
    std::fs::create_dir_all(&open_parent).unwrap();
    std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rootfs = warren_tests::fixtures::private_busybox(&open_parent.join("rootfs"));
    assert!(nobody_reaches(&rootfs), "the test's own premise");
    let b = bundle(
        &rt.bin,
        &bundle_dir("suid-open"),
        &rootfs,
        &["sh", "-c", script],
        edit,
    );
    let id = unique("suid-open");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(rootfs.to_str().unwrap()) && err.contains("chmod 0700"),
        "{err}"
    );
    assert!(!rootfs.join("suid").exists());
    assert!(!rt.root.join(&id).exists(), "state left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "mounts left behind");

    // The same rootfs behind a directory that is root's alone: it runs,
    // the file is setuid root on disk, and no other user reaches it.
    std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o700)).unwrap();
    let id = unique("suid-closed");
    let _g2 = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "made\n");
    let meta = std::fs::metadata(rootfs.join("suid")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o4000), (0, 0o4000));
    assert!(!nobody_reaches(&rootfs.join("suid")));
    let _ = std::fs::remove_dir_all(&open_parent);
}

#[test]
fn a_flipped_fstype_never_brings_an_unmasked_proc_or_sysfs() {
    let rt = Runtime::warren();
    for fs in ["proc", "sysfs"] {
        let out = run(
            &rt,
            "flip-fstype",
            &format!(
                "/opt/warren-hostile flip-fstype 5000 {fs}; echo timer $(wc -c < /proc/timer_list)"
            ),
            |_| {},
        );
        has_line(&out, "tries 5000");
        has_line(&out, "unmasked 0");
        has_line(&out, "timer 0");
    }
}

#[test]
fn a_swapped_umount_path_never_unmounts_a_mask() {
    let rt = Runtime::warren();
    for how in ["absolute", "relative"] {
        let out = run(
            &rt,
            "swap-umount",
            &format!(
                "/opt/warren-hostile swap-umount 5000 {how}; echo firmware $(ls /sys/firmware | wc -l)"
            ),
            |_| {},
        );
        has_line(&out, "firmware-kept");
        has_line(&out, "firmware 0");
    }
}

#[test]
fn the_devices_cgroup_is_an_allow_list_even_for_a_privileged_spec() {
    let rt = Runtime::warren();
    // A spec that allows every device, as `--privileged` writes it.
    let out = run(
        &rt,
        "devices",
        "cat /sys/fs/cgroup/devices/devices.list",
        |spec| {
            spec["linux"]["resources"]["devices"] =
                serde_json::json!([{"allow": true, "access": "rwm"}]);
        },
    );
    assert!(
        !out.lines().any(|l| l == "a *:* rwm"),
        "every device allowed:\n{out}"
    );
    for line in ["c 1:3 rwm", "c 1:5 rwm", "c 10:229 rwm", "c 10:200 rwm"] {
        has_line(&out, line);
    }
}

#[test]
fn the_read_only_paths_of_an_emulated_proc_stay_read_only() {
    let rt = Runtime::warren();
    let out = run(
        &rt,
        "emulated-ro",
        "mkdir -p /tmp/p && mount -t proc p /tmp/p && echo mounted; \
         mount -o remount,bind,rw /tmp/p/sys/kernel 2>/dev/null && echo remounted-rw; \
         mount -o remount,bind,rw /tmp/p/bus 2>/dev/null && echo bus-remounted-rw; \
         /opt/warren-hostile setattr-rw /tmp/p/sys/kernel; \
         umount /tmp/p/sys/kernel 2>/dev/null && echo unmounted; \
         awk '$5 == \"/tmp/p/sys/kernel\" {print \"kernel\", substr($6, 1, 2)}' /proc/self/mountinfo",
        |_| {},
    );
    has_line(&out, "mounted");
    has_line(&out, "setattr-rw ENOSYS");
    has_line(&out, "kernel ro");
    for bad in ["remounted-rw", "bus-remounted-rw", "unmounted"] {
        assert!(!out.lines().any(|l| l == bad), "{bad}:\n{out}");
    }
}
