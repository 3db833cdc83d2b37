//! Nested workloads in a warren system container with no privileged mode:
//! systemd boots as PID 1, dockerd runs containers (port publishing and
//! memory limits included), containerd's ctr runs one, and the container's
//! processes are its unprivileged ID range on the host. The image is the
//! Debian one `cargo xtask images` builds (systemd, docker.io, containerd).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use warren_tests::debian::debian_rootfs;
use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

/// Units that fail in a system container, each for a reason that is not a
/// gap in warren:
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    (
        "sys-kernel-debug.mount",
        "debugfs is the host kernel's; no user namespace may mount it",
    ),
    (
        "sys-kernel-tracing.mount",
        "tracefs likewise: tracing is host-global",
    ),
];

/// A writable overlay of the Debian image for one container, unmounted
/// and removed on drop.
struct Rootfs {
    dir: PathBuf,
}

impl Rootfs {
    fn new(name: &str) -> Rootfs {
        let lower = debian_rootfs().expect("the Debian test image (cargo xtask images)");
        let dir = target_dir().join("test-bundles").join(unique(name));
        for d in ["up", "wk", "rootfs"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let status = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                dir.join("up").display(),
                dir.join("wk").display()
            ))
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(status.success(), "overlay mount of the Debian image");
        Rootfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        warren_tests::host::unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The busybox rootfs as a tarball, for `docker import` inside.
fn busybox_tar() -> PathBuf {
    let dir = target_dir().join("test-images").join(unique("bbtar"));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("tar")
        .args(["--numeric-owner", "--exclude=./.complete", "-C"])
        .arg(shared_busybox())
        .arg("-cf")
        .arg(dir.join("busybox.tar"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn sh(rt: &Runtime, id: &str, script: &str) -> (bool, String) {
    let out = rt.run(&["exec", id, "sh", "-c", script]);
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn ok(rt: &Runtime, id: &str, script: &str) -> String {
    let (good, text) = sh(rt, id, script);
    assert!(good, "{script}: {text}");
    text
}

/// Every process in the container's memory cgroup (and below), on the host.
fn container_pids(id: &str) -> Vec<i32> {
    let top = Path::new("/sys/fs/cgroup/memory/warren").join(id);
    let out = Command::new("find")
        .arg(&top)
        .args(["-name", "cgroup.procs"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<String>) -> String {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn systemd_dockerd_and_containerd_run_inside_without_privileges() {
    let rt = Runtime::warren_private("");
    let rootfs = Rootfs::new("debian");
    let images = busybox_tar();
    let b = bundle(
        &rt.bin,
        &rootfs.dir.join("bundle"),
        &rootfs.path(),
        &["/sbin/init"],
        |spec| {
            // A machine's root is writable.
            spec["root"]["readonly"] = false.into();
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/images", "type": "bind", "source": images, "options": ["rbind", "ro"]}
            ));
        },
    );
    let id = unique("nested");
    let _g = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);

    // systemd boots: running, or degraded with only the expected failures.
    let state = wait_until("systemd to finish booting", Duration::from_secs(90), || {
        let (_, s) = sh(&rt, &id, "systemctl is-system-running");
        let s = s.trim().to_owned();
        (s == "running" || s == "degraded").then_some(s)
    });
    if state == "degraded" {
        let failed = ok(&rt, &id, "systemctl --failed --plain --no-legend");
        for line in failed.lines().filter(|l| !l.trim().is_empty()) {
            let unit = line.split_whitespace().next().unwrap_or_default();
            if !EXPECTED_FAILURES.iter().any(|(u, _)| *u == unit) {
                let (_, status) = sh(&rt, &id, &format!("systemctl status --no-pager {unit}"));
                let (_, log) = sh(&rt, &id, &format!("journalctl -b --no-pager -u {unit}"));
                panic!("unexpected failed unit {unit}:\n{failed}\n{status}\n{log}");
            }
        }
    }
    assert_eq!(ok(&rt, &id, "cat /proc/1/comm").trim(), "systemd");
    // The machine ID is the container's own (from container_uuid, since the
    // image's /etc/machine-id is empty), and /dev/kmsg is a null device.
    let ids = ok(
        &rt,
        &id,
        "cat /etc/machine-id; tr '\\0' '\\n' < /proc/1/environ | sed -n 's/^container_uuid=//p' | tr -d -; \
         stat -c %t:%T /dev/kmsg",
    );
    let lines: Vec<&str> = ids.lines().collect();
    assert_eq!(lines.len(), 3, "{ids}");
    assert_eq!(lines[0].len(), 32, "{ids}");
    assert_eq!(lines[0], lines[1], "{ids}");
    assert_eq!(lines[2], "1:3", "{ids}");

    // No privilege on the host: every process of the container (systemd,
    // dockerd, containerd and what they run) is the container's range.
    let init = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    let range_root = std::fs::metadata(format!("/proc/{init}")).unwrap().uid();
    assert_ne!(range_root, 0, "the container's root is host root");
    let subuid = std::fs::read_to_string(rt.node_dir().join("subuid")).unwrap();
    let (base, size) = subuid
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"warren"))
                .then(|| (f[1].parse::<u32>().ok(), f[2].parse::<u32>().ok()))
        })
        .and_then(|(b, s)| Some((b?, s?)))
        .expect("warren's subuid entry");
    assert!(
        (base..base + size).contains(&range_root),
        "{range_root} outside {base}+{size}"
    );

    // dockerd (started by systemd) runs a nested container.
    wait_until("docker.service", Duration::from_secs(60), || {
        sh(&rt, &id, "systemctl is-active docker")
            .0
            .then_some(String::new())
    });
    ok(&rt, &id, "docker import /images/busybox.tar busybox:latest");
    let out = ok(&rt, &id, "docker run --rm busybox echo hello-from-nested");
    assert!(out.contains("hello-from-nested"), "{out}");
    // Port publishing.
    let out = ok(
        &rt,
        &id,
        "docker run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /etc >/dev/null && \
         bash -c 'for i in $(seq 20); do exec 3<>/dev/tcp/127.0.0.1/8080 && break; sleep 0.5; done; \
         printf \"GET /hostname HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'; docker rm -f web >/dev/null",
    );
    assert!(out.contains("200 OK"), "{out}");
    // A memory limit, below warren's.
    let out = ok(
        &rt,
        &id,
        "docker run --rm --memory 32m busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    );
    assert_eq!(out.trim(), "33554432");
    for pid in container_pids(&id) {
        if let Ok(m) = std::fs::metadata(format!("/proc/{pid}")) {
            assert!(
                (base..base + size).contains(&m.uid()),
                "process {pid} runs as host uid {}",
                m.uid()
            );
        }
    }

    // containerd, through ctr.
    let out = ok(
        &rt,
        &id,
        "docker save busybox:latest -o /tmp/bb.tar && ctr -n t images import /tmp/bb.tar >/dev/null && \
         ctr -n t run --rm docker.io/library/busybox:latest t1 echo hello-from-ctr",
    );
    assert!(out.contains("hello-from-ctr"), "{out}");

    // The inner engines' mounts went through the interceptor.
    let metrics = warren_tests::scrape("127.0.0.1:9464");
    assert!(
        metrics.contains("\nwarren_ebpf_enabled 1"),
        "the probes are not loaded:\n{metrics}"
    );
    let series = format!("warren_intercepted_syscall_kernel_seconds_count{{container=\"{id}\"}} ");
    let timed = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    // systemd's units, dockerd's and containerd's mounts: hundreds.
    assert!(timed > 50, "{timed} intercepted calls counted for {id}");

    // SIGRTMIN+3 is systemd's halt: it shuts down and the container stops.
    rt.ok(&["kill", &id, "RTMIN+3"]);
    rt.wait_status(&id, "stopped", Duration::from_secs(90));
    rt.ok(&["delete", &id]);

    // Nothing left: mounts, cgroups, data directories, ID ranges.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mountinfo.lines().filter(|l| l.contains(&id)).collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = h.path().join("warren").join(rt.cgroup_name(&id));
        assert!(!dir.exists(), "cgroup left: {}", dir.display());
    }
    let data = rt.node_dir().join("state/data");
    let data_left: Vec<_> = std::fs::read_dir(&data)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(data_left.is_empty(), "data left: {data_left:?}");
    assert!(rt.allocations().is_empty(), "{:?}", rt.allocations());
    let _ = std::fs::remove_dir_all(&images);
}
