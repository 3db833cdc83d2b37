//! Bad input gets a non-zero exit, one error line that names the problem,
//! and leaves no state, cgroup or mount behind.

use std::path::{Path, PathBuf};

use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::{Runtime, stderr};
use warren_tests::{target_dir, unique};

fn bundle_dir(name: &str) -> PathBuf {
    target_dir().join("test-bundles").join(unique(name))
}

/// Asserts that nothing of container `id` remains on the host.
fn assert_no_leftovers(rt: &Runtime, id: &str, bundle: Option<&Path>) {
    assert!(!rt.root.join(id).exists(), "state dir of {id} left behind");
    assert!(
        !rt.root.join("@prepared").join(id).exists(),
        "prepared bundle of {id} left behind"
    );
    for controller in [
        "memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset",
    ] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join("warren")
            .join(rt.cgroup_name(id));
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in mountinfo.lines() {
        assert!(!line.contains(id), "mount left behind: {line}");
        if let Some(b) = bundle {
            assert!(
                !line.contains(b.to_str().unwrap()),
                "mount left behind: {line}"
            );
        }
    }
}

/// Runs `create` and asserts it fails with one stderr line containing `want`.
fn create_fails(rt: &Runtime, bundle: &Path, id: &str, want: &str) {
    let out = rt.run(&["create", "--bundle", bundle.to_str().unwrap(), id]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "create succeeded or crashed: {err}"
    );
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.contains(want), "{err:?} does not mention {want:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert_no_leftovers(rt, id, Some(bundle));
}

#[test]
fn missing_bundle() {
    let rt = Runtime::warren();
    let b = bundle_dir("nobundle");
    create_fails(&rt, &b, &unique("nobundle"), "no such directory");
}

#[test]
fn bundle_without_config() {
    let rt = Runtime::warren();
    let b = bundle_dir("noconfig");
    std::fs::create_dir_all(&b).unwrap();
    create_fails(&rt, &b, &unique("noconfig"), "cannot read config.json");
}

#[test]
fn config_with_a_syntax_error() {
    let rt = Runtime::warren();
    let b = bundle_dir("syntax");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(
        b.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {\n",
    )
    .unwrap();
    create_fails(&rt, &b, &unique("syntax"), "invalid config");
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), "x"]);
    assert!(stderr(&out).contains("line"), "{}", stderr(&out));
}

#[test]
fn config_with_wrong_types() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("types"),
        &shared_busybox(),
        &["true"],
        |spec| {
            spec["process"]["args"] = serde_json::json!("not-a-list");
        },
    );
    create_fails(&rt, &b, &unique("types"), "invalid type");
}

#[test]
fn missing_rootfs() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("norootfs"),
        Path::new("/nonexistent/rootfs"),
        &["true"],
        |_| {},
    );
    create_fails(&rt, &b, &unique("norootfs"), "rootfs /nonexistent/rootfs");
}

#[test]
fn missing_executable() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("noexe"),
        &shared_busybox(),
        &["/no/such/program"],
        |_| {},
    );
    create_fails(&rt, &b, &unique("noexe"), "/no/such/program");
}

#[test]
fn invalid_container_id() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("badid"),
        &shared_busybox(),
        &["true"],
        |_| {},
    );
    for id in ["../escape", "a/b", "sp ace"] {
        let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), id]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("invalid container id"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!rt.root.parent().unwrap().join("escape").exists());
}

#[test]
fn unknown_container_id() {
    let rt = Runtime::warren();
    let id = unique("unknown");
    for args in [
        vec!["state", id.as_str()],
        vec!["start", id.as_str()],
        vec!["kill", id.as_str(), "9"],
        vec!["delete", id.as_str()],
        vec!["exec", id.as_str(), "true"],
        vec!["pause", id.as_str()],
        vec!["ps", id.as_str()],
    ] {
        let out = rt.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn duplicate_id_keeps_the_first_container() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("dup"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("dup");
    let _guard = rt.cleanup(&id);
    rt.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let first_pid = rt.state(&id)["pid"].clone();
    let out = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], first_pid);
    rt.ok(&["delete", "--force", &id]);
    assert_no_leftovers(&rt, &id, Some(&b));
}

#[test]
fn delete_of_a_running_container_needs_force() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("delrun"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("delrun");
    let _guard = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    let out = rt.run(&["delete", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    assert_eq!(rt.state(&id)["status"], "running");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", "--force", &id]);
    // The init is gone, or a zombie waiting for its reaper.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "init still alive: {stat}"
    );
    assert_no_leftovers(&rt, &id, Some(&b));
}

#[test]
fn a_failing_init_is_explained_by_its_own_error() {
    // The container's init cannot set an unknown sysctl; libcontainer
    // then reports only the handshake it broke. With a log, as shims give,
    // the one error line carries the init's reason too.
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("sysctl"),
        &shared_busybox(),
        &["true"],
        |spec| {
            spec["linux"]["sysctl"] = serde_json::json!({"net.ipv4.no_such_key": "1"});
        },
    );
    let id = unique("sysctl");
    let log = b.join("log.json");
    let out = warren_tests::runtime::output_via_files(
        rt.command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "create", "--bundle"])
            .arg(&b)
            .arg(&id),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("container init:") && err.contains("procfs"),
        "{err}"
    );
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(last.contains("container init:"), "last record: {last}");
    assert_no_leftovers(&rt, &id, Some(&b));
}
