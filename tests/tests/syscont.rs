//! System containers: root inside, an exclusive unprivileged ID range on
//! the host, an ID-mapped rootfs that is never chowned.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use warren_tests::fixtures::{bundle, private_busybox, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

fn bundle_dir(name: &str) -> PathBuf {
    target_dir().join("test-bundles").join(unique(name))
}

fn rootfs_dir(name: &str) -> PathBuf {
    target_dir().join("test-rootfs").join(unique(name))
}

/// Parses the first line of a uid_map: (inside, outside, count).
fn first_map(text: &str) -> (u64, u64, u64) {
    let v: Vec<u64> = text
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().expect("number"))
        .collect();
    (v[0], v[1], v[2])
}

fn host_uid_of(pid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(1)
        .expect("real uid")
        .parse()
        .expect("number")
}

fn running(
    rt: &Runtime,
    name: &str,
    rootfs: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let b = bundle(&rt.bin, &bundle_dir(name), rootfs, &["sleep", "1000"], edit);
    let id = unique(name);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    id
}

#[test]
fn root_inside_unprivileged_range_outside() {
    let rt = Runtime::warren_private("");
    let id = running(&rt, "ident", &shared_busybox(), |_| {});
    let _g = rt.cleanup(&id);
    let out = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"));
    let (inside, base, count) = first_map(lines.next().expect("uid_map"));
    assert_eq!((inside, count), (0, 65536));
    assert!(base >= 100_000, "host base {base} is not a subordinate id");
    let capeff = lines
        .next()
        .expect("CapEff")
        .split_whitespace()
        .nth(1)
        .expect("mask");
    let capeff = u64::from_str_radix(capeff, 16).expect("hex");
    assert!(
        capeff & (1 << 21) != 0,
        "CAP_SYS_ADMIN is not effective: {capeff:x}"
    );
    // On the host, the container's init runs as the allocated uid.
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    assert_eq!(host_uid_of(pid), base);
    // The range came from warren's entry, which warren added to the file.
    let subuid = std::fs::read_to_string(rt.node_dir().join("subuid")).expect("subuid");
    let start: u64 = subuid
        .lines()
        .find_map(|l| l.strip_prefix("warren:"))
        .and_then(|r| r.split(':').next())
        .expect("warren entry")
        .parse()
        .expect("number");
    assert_eq!(base, start);
}

#[test]
fn idmapped_rootfs_writes_land_as_root_and_nothing_is_chowned() {
    let rt = Runtime::warren_private("");
    let rootfs = private_busybox(&rootfs_dir("idmap"));
    let before = owners(&rootfs);
    let b = bundle(
        &rt.bin,
        &bundle_dir("idmap"),
        &rootfs,
        &[
            "sh",
            "-c",
            "touch /newfile && touch /newfile2 && chown 1000:1000 /newfile2 && stat -c '%u:%g' /bin/busybox /newfile2",
        ],
        |spec| spec["root"]["readonly"] = false.into(),
    );
    let id = unique("idmap");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0:0\n1000:1000\n", "owners as seen inside");
    let meta = std::fs::metadata(rootfs.join("newfile")).expect("newfile on disk");
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    let meta = std::fs::metadata(rootfs.join("newfile2")).expect("newfile2 on disk");
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    let mut after = owners(&rootfs);
    after.retain(|(p, _, _)| !p.ends_with("newfile") && !p.ends_with("newfile2"));
    assert_eq!(before, after, "an image file changed owner");
    let _ = std::fs::remove_dir_all(&rootfs);
}

fn owners(dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            out.push((e.path(), m.uid(), m.gid()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn two_containers_get_disjoint_ranges_and_cycles_leave_nothing() {
    let rt = Runtime::warren_private("");
    let a = running(&rt, "pair", &shared_busybox(), |_| {});
    let _ga = rt.cleanup(&a);
    let b = running(&rt, "pair", &shared_busybox(), |_| {});
    let _gb = rt.cleanup(&b);
    let (_, base_a, n_a) = first_map(&rt.ok(&["exec", &a, "cat", "/proc/self/uid_map"]));
    let (_, base_b, n_b) = first_map(&rt.ok(&["exec", &b, "cat", "/proc/self/uid_map"]));
    assert!(
        base_a + n_a <= base_b || base_b + n_b <= base_a,
        "{base_a}+{n_a} and {base_b}+{n_b} overlap"
    );
    let (_, gbase_a, _) = first_map(&rt.ok(&["exec", &a, "cat", "/proc/self/gid_map"]));
    let (_, gbase_b, _) = first_map(&rt.ok(&["exec", &b, "cat", "/proc/self/gid_map"]));
    assert_ne!(gbase_a, gbase_b);
    assert_eq!(rt.allocations().len(), 2);
    rt.ok(&["delete", "--force", &a]);
    rt.ok(&["delete", "--force", &b]);
    assert!(rt.allocations().is_empty(), "{:?}", rt.allocations());

    let bdir = bundle(
        &rt.bin,
        &bundle_dir("cycle"),
        &shared_busybox(),
        &["true"],
        |_| {},
    );
    for _ in 0..50 {
        let id = unique("cycle");
        rt.ok(&["create", "--bundle", bdir.to_str().unwrap(), &id]);
        rt.ok(&["delete", &id]);
    }
    assert!(rt.allocations().is_empty(), "{:?}", rt.allocations());
    let prepared = rt.root.join("@prepared");
    let left: Vec<_> = std::fs::read_dir(&prepared)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "prepared bundles left: {left:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!("{}/", rt.root.display())),
        "mounts left under the state root"
    );
}

#[test]
fn a_create_killed_midway_leaks_nothing_once_the_next_create_runs() {
    let rt = Runtime::warren_private("");
    // A createRuntime hook that never returns holds create in the middle:
    // namespaces, cgroup, ID range and ID-mapped rootfs all exist.
    // A sleep no other test runs: 1000000 seconds plus this process's id.
    let marker = format!("sleep {}", 1_000_000 + std::process::id());
    let b = bundle(
        &rt.bin,
        &bundle_dir("killed"),
        &shared_busybox(),
        &["true"],
        |spec| {
            spec["hooks"] = serde_json::json!({
                "createRuntime": [{"path": "/bin/sleep", "args": marker.split(' ').collect::<Vec<_>>()}]
            });
        },
    );
    let id = unique("killed");
    let mut child = rt
        .command()
        .args(["create", "--bundle", b.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn create");
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !Command::new("pgrep")
        .args(["-f", &marker])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("pgrep")
        .success()
    {
        assert!(std::time::Instant::now() < end, "the hook never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        rt.allocations().len(),
        1,
        "the range is reserved during create"
    );
    let staged = rt.root.join("@prepared").join(&id).join("rootfs");
    assert!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(staged.to_str().unwrap())
    );
    child.kill().expect("kill -9 create");
    child.wait().expect("reap create");
    let _ = Command::new("pkill").args(["-9", "-f", &marker]).status();

    // The next create, of another container, reaps the leftovers.
    let other = unique("after");
    let _g = rt.cleanup(&other);
    let b2 = bundle(
        &rt.bin,
        &bundle_dir("after"),
        &shared_busybox(),
        &["true"],
        |_| {},
    );
    rt.ok(&["create", "--bundle", b2.to_str().unwrap(), &other]);
    let ids: Vec<_> = rt
        .allocations()
        .iter()
        .map(|a| a["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, vec![other.clone()]);
    assert!(
        !rt.root.join(&id).exists(),
        "state of the killed create left"
    );
    assert!(
        !rt.root.join("@prepared").join(&id).exists(),
        "prepared bundle left"
    );
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(staged.to_str().unwrap()),
        "staging mount left"
    );
    for c in ["memory", "pids", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(c)
            .join("warren")
            .join(rt.cgroup_name(&id));
        assert!(!dir.exists(), "cgroup {} left", dir.display());
    }
    rt.ok(&["delete", "--force", &other]);
}

fn mapping(c: u32, h: u32, s: u32) -> serde_json::Value {
    serde_json::json!({"containerID": c, "hostID": h, "size": s})
}

#[test]
fn the_specs_own_mappings_are_honoured_and_protected() {
    let rt = Runtime::warren_private("");
    let id = running(&rt, "given", &shared_busybox(), |spec| {
        spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        spec["linux"]["uidMappings"] = serde_json::json!([mapping(0, 3_000_000, 65536)]);
        spec["linux"]["gidMappings"] = serde_json::json!([mapping(0, 3_100_000, 65536)]);
    });
    let _g = rt.cleanup(&id);
    let maps = rt.ok(&[
        "exec",
        &id,
        "cat",
        "/proc/self/uid_map",
        "/proc/self/gid_map",
    ]);
    let lines: Vec<_> = maps.lines().collect();
    assert_eq!(first_map(lines[0]), (0, 3_000_000, 65536));
    assert_eq!(first_map(lines[1]), (0, 3_100_000, 65536));

    // A second container whose mapping overlaps the first is refused.
    let b = bundle(
        &rt.bin,
        &bundle_dir("clash"),
        &shared_busybox(),
        &["true"],
        |spec| {
            spec["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            spec["linux"]["uidMappings"] = serde_json::json!([mapping(0, 3_000_100, 1000)]);
            spec["linux"]["gidMappings"] = serde_json::json!([mapping(0, 5_000_000, 1000)]);
        },
    );
    let clash = unique("clash");
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &clash]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("overlaps the range of live container \"{id}\"")),
        "{}",
        stderr(&out)
    );
    assert!(!rt.root.join(&clash).exists());
    assert_eq!(rt.allocations().len(), 1);
}

#[test]
fn the_kernel_grants_what_a_user_namespace_allows() {
    let rt = Runtime::warren_private("");
    let b = bundle(
        &rt.bin,
        &bundle_dir("userns"),
        &shared_busybox(),
        &[
            "sh",
            "-c",
            "set -e; mount -t tmpfs t /mnt && echo tmpfs; mkdir /mnt/p /mnt/q; \
            mount -t devpts -o newinstance d /mnt/p && echo devpts; \
            mount -t mqueue m /mnt/q && echo mqueue; \
            unshare -Urm sh -c 'cat /proc/self/uid_map' | awk '{print \"nested\", $1, $2, $3}'",
        ],
        |_| {},
    );
    let id = unique("userns");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "tmpfs\ndevpts\nmqueue\nnested 0 0 1\n");
}

#[test]
fn a_full_subuid_file_is_a_clear_error() {
    let rt = Runtime::warren_private("");
    let node = rt.node_dir();
    // No entry for warren, and no room above the existing one.
    std::fs::write(node.join("subuid"), "hog:100000:4294000000\n").unwrap();
    std::fs::write(node.join("subgid"), "hog:100000:4294000000\n").unwrap();
    let b = bundle(
        &rt.bin,
        &bundle_dir("full"),
        &shared_busybox(),
        &["true"],
        |_| {},
    );
    let id = unique("full");
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no room for a range"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.root.join(&id).exists());

    // An entry too small for one container: the pool is exhausted.
    std::fs::write(node.join("subuid"), "warren:200000:1000\n").unwrap();
    std::fs::write(node.join("subgid"), "warren:200000:1000\n").unwrap();
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no free id range"),
        "{}",
        stderr(&out)
    );
    assert!(rt.allocations().is_empty());
}

/// A rootfs on ramfs, which cannot be ID-mapped.
struct Ramfs(PathBuf);

impl Ramfs {
    fn new() -> Ramfs {
        let dir = rootfs_dir("ramfs");
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount ramfs");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", shared_busybox().display()))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "copy busybox into ramfs");
        Ramfs(dir)
    }
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_rootfs_that_cannot_be_idmapped_fails_unless_the_fallback_is_set() {
    let ramfs = Ramfs::new();
    let rt = Runtime::warren_private("");
    let b = bundle(
        &rt.bin,
        &bundle_dir("ramfs"),
        &ramfs.0,
        &["sh", "-c", "id -u; stat -c %u /bin/busybox"],
        |_| {},
    );
    let id = unique("ramfs");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is on ramfs, which cannot be ID-mapped"),
        "{}",
        stderr(&out)
    );
    assert!(rt.allocations().is_empty());
    assert!(!rt.root.join("@prepared").join(&id).exists());

    let rt = Runtime::warren_private("rootfs-fallback = \"chown\"");
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0\n0\n");
    // The original stays owned by host root; the copy is gone after delete.
    assert_eq!(
        std::fs::metadata(ramfs.0.join("bin/busybox"))
            .unwrap()
            .uid(),
        0
    );
    let copies = rt.node_dir().join("state/rootfs");
    let left: Vec<_> = std::fs::read_dir(&copies)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "rootfs copies left: {left:?}");
}

#[test]
fn a_host_pid_namespace_is_refused() {
    let rt = Runtime::warren_private("");
    let b = bundle(
        &rt.bin,
        &bundle_dir("hostpid"),
        &shared_busybox(),
        &["true"],
        |spec| {
            for ns in spec["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "pid" {
                    // This test's own pid namespace is the host's.
                    ns["path"] = format!("/proc/{}/ns/pid", std::process::id()).into();
                }
            }
        },
    );
    let id = unique("hostpid");
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pid namespace is shared with the host"),
        "{}",
        stderr(&out)
    );
    assert!(rt.allocations().is_empty());
}

#[test]
fn a_bind_mount_that_asks_for_idmap_is_mapped() {
    let rt = Runtime::warren_private("");
    let data = rootfs_dir("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("owned-by-host-root"), "x").unwrap();
    let plain = rootfs_dir("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("f"), "x").unwrap();
    let b = bundle(
        &rt.bin,
        &bundle_dir("idmount"),
        &shared_busybox(),
        &[
            "sh",
            "-c",
            "stat -c %u /data/owned-by-host-root /plain/f; touch /data/new && echo wrote",
        ],
        |spec| {
            let mounts = spec["mounts"].as_array_mut().unwrap();
            mounts.push(serde_json::json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw", "idmap"]}));
            mounts.push(serde_json::json!({"destination": "/plain", "type": "bind", "source": plain, "options": ["rbind", "ro"]}));
        },
    );
    let id = unique("idmount");
    let _g = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Through the ID mapping the host's root files are root's; without it
    // they belong to an ID the container does not have (the overflow ID).
    assert_eq!(stdout(&out), "0\n65534\nwrote\n");
    assert_eq!(std::fs::metadata(data.join("new")).unwrap().uid(), 0);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn a_container_killed_from_the_host_leaves_nothing_after_delete_force() {
    let rt = Runtime::warren_private("");
    let id = running(&rt, "sigkill", &shared_busybox(), |_| {});
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the init");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.ok(&["delete", "--force", &id]);
    assert!(rt.allocations().is_empty(), "{:?}", rt.allocations());
    assert!(!rt.root.join(&id).exists());
    assert!(!rt.root.join("@prepared").join(&id).exists());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!("{}/", rt.root.display())),
        "mounts left under the state root"
    );
    for c in ["memory", "pids", "freezer"] {
        assert!(
            !Path::new("/sys/fs/cgroup")
                .join(c)
                .join("warren")
                .join(rt.cgroup_name(&id))
                .exists()
        );
    }
}

/// The host directories of a container's cgroups, in every hierarchy.
fn cgroup_dirs(rt: &Runtime, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .expect("list /sys/fs/cgroup")
        .flatten()
        .map(|e| e.path().join("warren").join(rt.cgroup_name(id)))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn engines_inside_make_their_own_cgroups_below_warrens() {
    let rt = Runtime::warren_private("");
    let id = running(&rt, "cgdeleg", &shared_busybox(), |_| {});
    let _g = rt.cleanup(&id);
    let script = "\
        set -e; m=/sys/fs/cgroup/memory; \
        mkdir $m/inner; echo 16777216 > $m/inner/memory.limit_in_bytes; \
        echo limit=$(cat $m/inner/memory.limit_in_bytes); \
        echo $$ > $m/inner/cgroup.procs; grep ':memory:' /proc/self/cgroup; \
        if echo 999999999999 > $m/memory.limit_in_bytes 2>/dev/null; then echo own-limit-raised; \
        else echo own-limit-kept; fi; \
        mkdir /sys/fs/cgroup/systemd/inner; echo systemd-ok; grep name=systemd /proc/self/cgroup";
    let out = rt.run(&["exec", &id, "sh", "-c", script]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("limit=16777216"), "{text}");
    assert!(text.contains(":memory:/inner"), "{text}");
    assert!(text.contains("own-limit-kept"), "{text}");
    assert!(text.contains("systemd-ok"), "{text}");
    // The container sees its own name=systemd cgroup as its root.
    assert!(text.contains("name=systemd:/\n"), "{text}");

    // On the host: the child sits below warren's cgroup, bounded by it, and
    // belongs to the container's root.
    let state = rt.state(&id);
    let host_root = host_uid_of(state["pid"].as_i64().expect("pid"));
    let inner = Path::new("/sys/fs/cgroup/memory/warren")
        .join(rt.cgroup_name(&id))
        .join("inner");
    let limit = std::fs::read_to_string(inner.join("memory.limit_in_bytes")).expect("inner limit");
    assert_eq!(limit.trim(), "16777216");
    assert_eq!(
        u64::from(std::fs::metadata(&inner).expect("inner").uid()),
        host_root
    );
    let own = Path::new("/sys/fs/cgroup/memory/warren").join(rt.cgroup_name(&id));
    assert_eq!(
        std::fs::metadata(own.join("memory.limit_in_bytes"))
            .expect("own limit")
            .uid(),
        0,
        "the container's own limits stay the host's"
    );
    assert!(!cgroup_dirs(&rt, &id).is_empty());

    rt.ok(&["delete", "--force", &id]);
    assert_eq!(
        cgroup_dirs(&rt, &id),
        Vec::<PathBuf>::new(),
        "cgroups left behind"
    );
}

/// The container's data directories on the host, under the private
/// state dir.
fn data_dirs(rt: &Runtime, id: &str) -> Vec<PathBuf> {
    let data = rt.node_dir().join("state/data");
    std::fs::read_dir(&data)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(&format!("-{id}")))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn inner_engines_keep_their_data_in_host_directories_of_the_container() {
    let rt = Runtime::warren_private("");
    let id = running(&rt, "data", &shared_busybox(), |_| {});
    let _g = rt.cleanup(&id);
    let script = "set -e; for d in /var/lib/docker /var/lib/containerd /var/lib/kubelet \
        /var/lib/rancher/k3s /var/lib/buildkit; do \
        echo $d $(stat -c %u:%g $d); touch $d/written; done; \
        grep -E ' /var/lib/docker ' /proc/self/mountinfo | grep -v overlay >/dev/null && echo not-overlay";
    let out = rt.run(&["exec", &id, "sh", "-c", script]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for d in ["docker", "containerd", "kubelet", "rancher/k3s", "buildkit"] {
        assert!(text.contains(&format!("/var/lib/{d} 0:0")), "{text}");
    }
    assert!(text.contains("not-overlay"), "{text}");
    // On the host: one directory per container, owned by its range's root.
    let state = rt.state(&id);
    let host_root = host_uid_of(state["pid"].as_i64().expect("pid"));
    let dirs = data_dirs(&rt, &id);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let docker = dirs[0].join("docker");
    assert_eq!(
        u64::from(std::fs::metadata(&docker).unwrap().uid()),
        host_root
    );
    assert_eq!(
        u64::from(std::fs::metadata(docker.join("written")).unwrap().uid()),
        host_root
    );
    rt.ok(&["delete", "--force", &id]);
    assert!(data_dirs(&rt, &id).is_empty(), "data left after delete");

    // With io.warren.keep-data=true the data outlives the container.
    let id = running(&rt, "keep", &shared_busybox(), |spec| {
        spec["annotations"] = serde_json::json!({"io.warren.keep-data": "true"});
    });
    let _g = rt.cleanup(&id);
    rt.ok(&["exec", &id, "touch", "/var/lib/docker/kept"]);
    rt.ok(&["delete", "--force", &id]);
    let dirs = data_dirs(&rt, &id);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].join("docker/kept").exists());
    std::fs::remove_dir_all(&dirs[0]).unwrap();
}

#[test]
fn proc_sys_is_writable_where_namespaced_and_emulated_where_engines_insist() {
    let rt = Runtime::warren();
    let host_overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap();
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let id = running(&rt, "procsys", &shared_busybox(), |_| {});
    let _g = rt.cleanup(&id);
    let script = "\
        echo 1 > /proc/sys/net/ipv4/ip_forward && echo net=$(cat /proc/sys/net/ipv4/ip_forward); \
        echo 2 > /proc/sys/vm/overcommit_memory && echo vm=$(cat /proc/sys/vm/overcommit_memory); \
        echo 10 > /proc/sys/kernel/panic && echo panic=$(cat /proc/sys/kernel/panic); \
        echo 4194304 > /proc/sys/kernel/pid_max 2>/dev/null || echo pid_max-refused; \
        echo 1 > /proc/sys/fs/protected_regular 2>/dev/null || echo fs-refused";
    let out = rt.run(&["exec", &id, "sh", "-c", script]);
    let text = stdout(&out);
    for line in ["net=1", "vm=2", "panic=10", "pid_max-refused", "fs-refused"] {
        assert!(
            text.lines().any(|l| l == line),
            "no {line:?} in:\n{text}{}",
            stderr(&out)
        );
    }
    // The host's values did not move: the network key is the container's
    // own namespace's, the vm and kernel ones its own copies.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap(),
        host_overcommit
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forward
    );
    // A second container starts from the host's values, not the first's.
    let other = running(&rt, "procsys2", &shared_busybox(), |_| {});
    let _g2 = rt.cleanup(&other);
    let out = rt.ok(&["exec", &other, "cat", "/proc/sys/vm/overcommit_memory"]);
    assert_eq!(out, host_overcommit);
}
