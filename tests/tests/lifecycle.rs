//! warren-runc's lifecycle, driven as a shim drives runc.

use std::time::Duration;

use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

fn bundle_dir(name: &str) -> std::path::PathBuf {
    target_dir().join("test-bundles").join(unique(name))
}

#[test]
fn create_start_kill_delete_reports_each_state() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("life"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("life");
    let _guard = rt.cleanup(&id);

    let pid_file = b.join("init.pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.to_str().unwrap());
    assert_eq!(st["rootfs"], shared_busybox().to_str().unwrap());
    assert_eq!(st["owner"], "root");
    let pid = st["pid"].as_i64().expect("pid is a number");
    assert!(pid > 0);
    let from_file: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .expect("pid file holds a number");
    assert_eq!(from_file, pid);
    // The init waits for start: it has not exec'd sleep yet.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("init alive");
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("init alive");
    assert!(String::from_utf8_lossy(&cmdline).starts_with("sleep"));

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_eq!(rt.state(&id)["pid"], 0);

    rt.ok(&["delete", &id]);
    let out = rt.run(&["state", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!rt.root.join(&id).exists(), "state dir left behind");
}

#[test]
fn run_propagates_stdout_and_exit_code() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("run"),
        &shared_busybox(),
        &["sh", "-c", "echo hello-from-warren; exit 3"],
        |_| {},
    );
    let id = unique("run");
    let _guard = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello-from-warren\n");
    // run deletes the container once it exits.
    assert!(!rt.root.join(&id).exists());
}

/// Starts `warren-runc run` in the background and waits until its
/// container runs.
fn spawn_run(rt: &Runtime, b: &std::path::Path, id: &str) -> std::process::Child {
    let child = rt
        .command()
        .args(["run", "--bundle", b.to_str().unwrap(), id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while rt.run(&["state", id]).status.code() != Some(0) || rt.state(id)["status"] != "running" {
        assert!(std::time::Instant::now() < end, "{id} never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn run_forwards_signals_and_reports_signal_deaths() {
    let rt = Runtime::warren();
    // The shell traps TERM: it only sees it if warren-runc forwards it.
    let b = bundle(
        &rt.bin,
        &bundle_dir("sig"),
        &shared_busybox(),
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready > /dev/null; while true; do sleep 0.05; done",
        ],
        |_| {},
    );
    let id = unique("sig");
    let _guard = rt.cleanup(&id);
    let mut child = spawn_run(&rt, &b, &id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal warren-runc");
    let status = child.wait().expect("wait run");
    assert_eq!(status.code(), Some(42), "TERM was not forwarded");

    // A container killed by SIGKILL makes run exit 128+9.
    let id = unique("sig");
    let _guard = rt.cleanup(&id);
    let mut child = spawn_run(&rt, &b, &id);
    rt.ok(&["kill", &id, "KILL"]);
    let status = child.wait().expect("wait run");
    assert_eq!(status.code(), Some(137));
}

#[test]
fn run_without_path_runs_an_absolute_program() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("nopath"),
        &shared_busybox(),
        &["/bin/echo", "no-path-ok"],
        |spec| {
            spec["process"]["env"] = serde_json::json!(["TERM=xterm"]);
        },
    );
    let id = unique("nopath");
    let _guard = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "no-path-ok\n");
}

#[test]
fn exec_ps_pause_resume() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("exec"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("exec");
    let _guard = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let init_pid = rt.state(&id)["pid"].as_i64().expect("pid");

    // A foreground exec: output and exit code come back.
    let out = rt.run(&["exec", &id, "sh", "-c", "echo in-container; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "in-container\n");

    // exec with --env, --cwd and --user.
    let out = rt.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &id,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g)",
    ]);
    assert_eq!(out, "bar /tmp 65534:65534\n");

    // A detached exec shows up in ps next to init.
    let exec_pid_file = b.join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        exec_pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    let exec_pid: i64 = std::fs::read_to_string(&exec_pid_file)
        .expect("exec pid file")
        .trim()
        .parse()
        .expect("number");
    let pids: Vec<i64> =
        serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).expect("ps json");
    assert!(pids.contains(&init_pid), "{pids:?} lacks init {init_pid}");
    assert!(pids.contains(&exec_pid), "{pids:?} lacks exec {exec_pid}");
    assert_eq!(pids.len(), 2, "{pids:?}");

    // exec --process, as containerd sends it.
    let process = b.join("process.json");
    std::fs::write(
        &process,
        r#"{"terminal":false,"user":{"uid":0,"gid":0},"args":["sh","-c","echo from-process-file"],"env":["PATH=/bin"],"cwd":"/"}"#,
    )
    .expect("write process.json");
    assert_eq!(
        rt.ok(&["exec", "--process", process.to_str().unwrap(), &id]),
        "from-process-file\n"
    );

    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    let freezer = format!(
        "/sys/fs/cgroup/freezer/warren/{}/freezer.state",
        rt.cgroup_name(&id)
    );
    let frozen = std::fs::read_to_string(&freezer).expect("freezer state");
    assert_eq!(frozen.trim(), "FROZEN");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    let thawed = std::fs::read_to_string(&freezer).expect("freezer state");
    assert_eq!(thawed.trim(), "THAWED");

    let listed: serde_json::Value =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).expect("list json");
    let entry = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("listed");
    assert_eq!(entry["status"], "running");

    rt.ok(&["kill", "--all", &id, "9"]);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.ok(&["delete", &id]);
}

#[test]
fn kill_semantics_match_what_shims_expect() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("kill"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("kill");
    let _guard = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);
    // Signals by name, with and without SIG, and by number.
    rt.ok(&["kill", &id, "SIGCONT"]);
    rt.ok(&["kill", &id, "CONT"]);
    let bad = rt.run(&["kill", &id, "NOPE"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("unknown signal"), "{}", stderr(&bad));
    rt.ok(&["kill", &id]); // SIGTERM by default; sleep as pid 1 ignores it
    rt.ok(&["kill", &id, "9"]);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));

    // containerd maps "container not running" to NotFound.
    let again = rt.run(&["kill", &id, "9"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("not running"), "{}", stderr(&again));
    // CRI kills exited containers with --all and expects success.
    rt.ok(&["kill", "--all", &id, "9"]);

    rt.ok(&["delete", &id]);
    // delete --force of an unknown container succeeds; plain delete does not.
    rt.ok(&["delete", "--force", &id]);
    let out = rt.run(&["delete", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"));
}

#[test]
fn json_log_ends_with_the_error_record() {
    let rt = Runtime::warren();
    let log = target_dir()
        .join("test-bundles")
        .join(format!("{}.json", unique("log")));
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let out =
        warren_tests::runtime::output_via_files(rt.command().args(["--log"]).arg(&log).args([
            "--log-format",
            "json",
            "kill",
            "no-such-container",
            "9",
        ]));
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).expect("log written");
    let last_error = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|r| r["level"] == "error")
        .expect("an error record");
    assert_eq!(
        last_error["msg"],
        "container \"no-such-container\" does not exist"
    );
    assert!(last_error["time"].is_string());
    // stderr holds exactly one line.
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn features_is_a_valid_oci_document() {
    let rt = Runtime::warren();
    let doc: serde_json::Value =
        serde_json::from_str(&rt.ok(&["features"])).expect("features json");
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    let ns = doc["linux"]["namespaces"].as_array().expect("namespaces");
    for want in [
        "user", "cgroup", "time", "mount", "pid", "network", "ipc", "uts",
    ] {
        assert!(ns.iter().any(|n| n == want), "namespaces lack {want}");
    }
    let actions = doc["linux"]["seccomp"]["actions"]
        .as_array()
        .expect("actions");
    assert!(actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"));
    assert_eq!(doc["linux"]["seccomp"]["enabled"], true);
    assert!(doc["annotations"]["io.github.seccomp.libseccomp.version"].is_string());
    assert!(doc["annotations"]["io.warren.commit"].is_string());
}

#[test]
fn events_update_and_spec() {
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("events"),
        &shared_busybox(),
        &["sleep", "1000"],
        |_| {},
    );
    let id = unique("events");
    let _guard = rt.cleanup(&id);
    rt.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &id]);

    let event: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &id])).expect("event json");
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["data"]["pids"]["current"], 1, "{event}");
    assert!(
        event["data"]["cpu"]["usage"]["total"]
            .as_u64()
            .expect("cpu total")
            > 0
    );

    let res = b.join("resources.json");
    std::fs::write(&res, r#"{"memory":{"limit":67108864},"pids":{"limit":50}}"#).unwrap();
    rt.ok(&["update", "--resources", res.to_str().unwrap(), &id]);
    let cg = rt.cgroup_name(&id);
    let mem = format!("/sys/fs/cgroup/memory/warren/{cg}/memory.limit_in_bytes");
    assert_eq!(std::fs::read_to_string(&mem).unwrap().trim(), "67108864");
    assert_eq!(
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/warren/{cg}/pids.max"))
            .unwrap()
            .trim(),
        "50"
    );
    rt.ok(&["update", "--memory", "33554432", &id]);
    assert_eq!(std::fs::read_to_string(&mem).unwrap().trim(), "33554432");
    let event: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(event["data"]["memory"]["usage"]["limit"], 33554432);
    rt.ok(&["delete", "--force", &id]);

    // spec writes runc's default, refuses to overwrite, and has a rootless form.
    let dir = bundle_dir("spec");
    std::fs::create_dir_all(&dir).unwrap();
    rt.ok(&["spec", "--bundle", dir.to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["hostname"], "warren");
    let again = rt.run(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"));
    std::fs::remove_file(dir.join("config.json")).unwrap();
    rt.ok(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let ns: Vec<_> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].clone())
        .collect();
    assert!(ns.contains(&"user".into()), "{ns:?}");
    assert!(spec["linux"]["uidMappings"].is_array());
}

/// Receives the pty master a runtime sends over a console socket.
fn receive_console(listener: &std::os::unix::net::UnixListener) -> std::fs::File {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (conn, _) = listener.accept().expect("accept console socket");
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    for c in msg.cmsgs().expect("cmsgs") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd just arrived over SCM_RIGHTS and nothing else owns it.
            return unsafe { std::fs::File::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd on the console socket");
}

#[test]
fn a_terminal_goes_to_the_console_socket() {
    use std::io::Read;
    let rt = Runtime::warren();
    let b = bundle(
        &rt.bin,
        &bundle_dir("tty"),
        &shared_busybox(),
        &["sh", "-c", "tty; echo hello-tty"],
        |spec| {
            spec["process"]["terminal"] = true.into();
        },
    );
    let id = unique("tty");
    let _guard = rt.cleanup(&id);
    let sock = std::path::PathBuf::from("/run/warren-test").join(format!("{id}.sock"));
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind console socket");
    let receiver = std::thread::spawn(move || receive_console(&listener));
    rt.ok(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let mut master = receiver.join().expect("console thread");
    rt.ok(&["start", &id]);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    // The slave closes when the process exits: read until EIO.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("hello-tty"), "{text:?}");
    let _ = std::fs::remove_file(&sock);
}
