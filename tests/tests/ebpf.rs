//! The eBPF probes: per-container syscall counts, taken in the kernel.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warren_tests::fixtures::{bundle, hostile_bin, shared_busybox};
use warren_tests::runtime::Runtime;
use warren_tests::{scrape, target_dir, unique};

fn syscalls(text: &str, id: &str) -> Option<u64> {
    let series = format!("warren_container_syscalls_total{{container=\"{id}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// A detached container running `script`, with the hostile program at /opt
/// and a tmpfs /tmp.
fn start(rt: &Runtime, name: &str, script: &str) -> String {
    let dir = hostile_bin().parent().unwrap().to_path_buf();
    let b = bundle(
        &rt.bin,
        &target_dir().join("test-bundles").join(unique(name)),
        &shared_busybox(),
        &["sh", "-c", &format!("mount -t tmpfs t /tmp; {script}")],
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/opt", "type": "bind", "source": dir, "options": ["rbind", "ro"]}
            ));
        },
    );
    let id = unique(name);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    id
}

#[test]
fn getppid_calls_are_counted_for_their_container_only() {
    const N: u64 = 100_000;
    // What the shell, mount, exec and the test's own exec add around the
    // loop: measured well under this on this machine.
    const SLACK: u64 = 5_000;
    let rt = Runtime::warren();
    let idle = start(&rt, "idle", "sleep 1000");
    let _gi = rt.cleanup(&idle);
    let busy = start(
        &rt,
        "busy",
        "/opt/warren-hostile getppid 100000 > /tmp/out; sleep 1000",
    );
    let _gb = rt.cleanup(&busy);
    let end = Instant::now() + Duration::from_secs(30);
    while rt
        .run(&["exec", &busy, "grep", "-q", "done", "/tmp/out"])
        .status
        .code()
        != Some(0)
    {
        assert!(Instant::now() < end, "getppid loop never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = scrape("127.0.0.1:9464");
    assert!(
        first.contains("\nwarren_ebpf_enabled 1"),
        "the probes are not loaded:\n{first}"
    );
    let n = syscalls(&first, &busy).unwrap_or_else(|| panic!("no series for {busy}:\n{first}"));
    assert!(
        (N..=N + SLACK).contains(&n),
        "{n} syscalls counted for {N} getppid calls"
    );
    let idle_before = syscalls(&first, &idle).expect("a series for the idle container");
    std::thread::sleep(Duration::from_millis(200));
    let second = scrape("127.0.0.1:9464");
    assert_eq!(
        syscalls(&second, &idle),
        Some(idle_before),
        "the idle container's count moved"
    );

    rt.ok(&["delete", "--force", &busy]);
    // The series and the tracking cgroup go once the interceptor sees the
    // container's last process gone.
    let tracking = PathBuf::from("/sys/fs/cgroup/unified/warren");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape("127.0.0.1:9464");
        let left: Vec<_> = std::fs::read_dir(&tracking)
            .map(|d| {
                d.flatten()
                    .filter(|e| is_tracking_dir_of(&rt, &e.file_name().to_string_lossy(), &busy))
                    .collect()
            })
            .unwrap_or_default();
        if syscalls(&text, &busy).is_none() && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "series or tracking cgroup left: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn series(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn forks_execs_exits_and_families_are_counted_exactly() {
    let rt = Runtime::warren();
    let dir = hostile_bin().parent().unwrap().to_path_buf();
    // No shell: the init is the hostile program, which mounts and unmounts
    // a tmpfs, then forks three children that each exec it again.
    let b = bundle(
        &rt.bin,
        &target_dir().join("test-bundles").join(unique("events")),
        &shared_busybox(),
        &["/opt/warren-hostile", "spawn", "3"],
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/opt", "type": "bind", "source": dir, "options": ["rbind", "ro"]}
            ));
        },
    );
    let id = unique("events");
    let _g = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    let event = |text: &str, e: &str| {
        series(
            text,
            &format!("warren_container_process_events_total{{container=\"{id}\",event=\"{e}\"}} "),
        )
    };
    let end = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape("127.0.0.1:9464");
        if event(&text, "exit") == Some(3) {
            break text;
        }
        assert!(Instant::now() < end, "the children never exited:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(event(&text, "fork"), Some(3), "{text}");
    // The init's own exec, then one per child.
    assert_eq!(event(&text, "exec"), Some(4), "{text}");
    let family = |f: &str| {
        series(
            &text,
            &format!(
                "warren_container_syscalls_by_family_total{{container=\"{id}\",family=\"{f}\"}} "
            ),
        )
    };
    // The tmpfs mount is continued to the kernel and enters the syscall; the
    // umount2 is done by the interceptor, so the task never reaches
    // sys_enter for it (seccomp runs first). warren_notifications_total
    // counts that one.
    assert_eq!(family("mount"), Some(1), "{text}");
    // Both are timed through seccomp, though.
    assert_eq!(
        series(
            &text,
            &format!("warren_intercepted_syscall_kernel_seconds_count{{container=\"{id}\"}} ")
        ),
        Some(2),
        "{text}"
    );
    assert!(family("file").unwrap_or(0) > 0, "{text}");
    assert!(family("process").unwrap_or(0) >= 3 + 4 + 3, "{text}");
}

/// The keys of the probes' map of tracked cgroups, read with bpftool.
fn tracked_cgroups() -> Vec<u64> {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "name", "TRACKED"])
        .output()
        .expect("bpftool (cargo xtask deps installs it)");
    assert!(
        out.status.success(),
        "bpftool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("bpftool's JSON");
    entries
        .iter()
        .map(|e| match &e["key"] {
            serde_json::Value::Number(n) => n.as_u64().expect("a u64 key"),
            serde_json::Value::Array(bytes) => {
                let b: Vec<u8> = bytes
                    .iter()
                    .map(|x| {
                        let x = x.as_str().expect("a hex byte");
                        u8::from_str_radix(x.trim_start_matches("0x"), 16).expect("a hex byte")
                    })
                    .collect();
                u64::from_le_bytes(b.try_into().expect("an 8-byte key"))
            }
            other => panic!("unexpected key {other}"),
        })
        .collect()
}

/// Whether a cgroup2 directory name is container `id`'s: its cgroup name
/// (the container's own cgroup that warren-runc makes on a hybrid host), or
/// `<id>.<pid>`, the tracking directory the interceptor makes for a
/// container that has none.
fn is_tracking_dir_of(rt: &Runtime, name: &str, id: &str) -> bool {
    name == rt.cgroup_name(id) || name.starts_with(&format!("{id}."))
}

/// The container's cgroup2 tracking directory.
fn tracking_dir(rt: &Runtime, id: &str) -> Option<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup/unified/warren")
        .ok()?
        .flatten()
        .find(|e| is_tracking_dir_of(rt, &e.file_name().to_string_lossy(), id))
        .map(|e| e.path())
}

#[test]
fn intercepted_calls_are_timed_and_exec_is_counted_and_all_goes_on_delete() {
    use std::os::unix::fs::MetadataExt;
    const N: u64 = 5;
    const GETPPID: u64 = 20_000;
    let rt = Runtime::warren();
    let dir = hostile_bin().parent().unwrap().to_path_buf();
    let b = bundle(
        &rt.bin,
        &target_dir().join("test-bundles").join(unique("timed")),
        &shared_busybox(),
        &["/opt/warren-hostile", "mounts", &N.to_string()],
        |spec| {
            spec["mounts"].as_array_mut().unwrap().push(serde_json::json!(
                {"destination": "/opt", "type": "bind", "source": dir, "options": ["rbind", "ro"]}
            ));
        },
    );
    let id = unique("timed");
    let _g = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    let count = |text: &str| {
        series(
            text,
            &format!("warren_intercepted_syscall_kernel_seconds_count{{container=\"{id}\"}} "),
        )
    };
    let end = Instant::now() + Duration::from_secs(20);
    while count(&scrape("127.0.0.1:9464")) != Some(2 * N) {
        assert!(
            Instant::now() < end,
            "never saw {} timed calls:\n{}",
            2 * N,
            scrape("127.0.0.1:9464")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The init makes no more calls: the count stays exact.
    std::thread::sleep(Duration::from_millis(300));
    let text = scrape("127.0.0.1:9464");
    assert_eq!(count(&text), Some(2 * N), "{text}");
    let sum = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "warren_intercepted_syscall_kernel_seconds_sum{{container=\"{id}\"}} "
            ))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no sum:\n{text}"));
    assert!(sum > 0.0, "{text}");
    let inf = format!(
        "warren_intercepted_syscall_kernel_seconds_bucket{{le=\"+Inf\",container=\"{id}\"}} {}",
        2 * N
    );
    assert!(text.lines().any(|l| l == inf), "no {inf}:\n{text}");

    // An exec'd process is counted under its container too.
    let before = syscalls(&text, &id).expect("a syscall series");
    let out = rt.ok(&[
        "exec",
        &id,
        "/opt/warren-hostile",
        "getppid",
        &GETPPID.to_string(),
    ]);
    assert!(out.contains("done"), "{out}");
    let after = syscalls(&scrape("127.0.0.1:9464"), &id).expect("a syscall series");
    assert!(
        after >= before + GETPPID,
        "{before} -> {after} for {GETPPID} getppid calls in an exec'd process"
    );

    let tracking = tracking_dir(&rt, &id).expect("a tracking cgroup");
    let cgroup_id = std::fs::metadata(&tracking).unwrap().ino();
    assert!(
        tracked_cgroups().contains(&cgroup_id),
        "cgroup {cgroup_id} not in the tracked map"
    );
    rt.ok(&["delete", "--force", &id]);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape("127.0.0.1:9464");
        let left = text.lines().any(|l| l.contains(&format!("\"{id}\"")));
        let in_map = tracked_cgroups().contains(&cgroup_id);
        if !left && !in_map && !tracking.exists() {
            break;
        }
        assert!(
            Instant::now() < end,
            "left after delete: series {left}, map entry {in_map}, dir {}",
            tracking.exists()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts an interceptor with `args` on a private socket and metrics port;
/// returns its metrics text and its log.
fn interceptor_with(args: &[&str], port: u16) -> (String, String) {
    let bin = warren_tests::runtime::bin_dir().join("warren-interceptor");
    let dir = PathBuf::from("/run/warren-test").join(unique("noebpf"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log");
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(&bin)
        .arg("--socket")
        .arg(dir.join("i.sock"))
        .args(["--metrics-addr", &addr])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start interceptor");
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < end, "the interceptor did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = scrape(&addr);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (text, log)
}

#[test]
fn without_probes_the_interceptor_runs_and_says_so() {
    let (text, log) = interceptor_with(&["--ebpf-object", "/nonexistent/warren-probes"], 9467);
    assert!(text.contains("\nwarren_ebpf_enabled 0"), "{text}");
    assert!(
        log.contains("eBPF accounting is off") && log.contains("/nonexistent/warren-probes"),
        "{log}"
    );
    let (text, log) = interceptor_with(&["--no-ebpf"], 9467);
    assert!(text.contains("\nwarren_ebpf_enabled 0"), "{text}");
    assert!(
        log.contains("eBPF accounting is off") && log.contains("--no-ebpf was given"),
        "{log}"
    );
}
