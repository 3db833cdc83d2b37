//! containerd 2.x runs containers through warren-runc via the runc v2 shim
//! with `BinaryName`, and introspects warren's `features` without error.

use warren_tests::containerd::Containerd;
use warren_tests::fixtures::shared_busybox;
use warren_tests::images::oci_archive;
use warren_tests::runtime::{stderr, stdout, warren_bin};
use warren_tests::{target_dir, unique};

fn runtime_entry(warren: &std::path::Path) -> String {
    format!(
        r#"[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.warren]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.warren.options]
  BinaryName = "{}"
"#,
        warren.display()
    )
}

#[test]
fn containerd_runs_a_busybox_image_through_warren() {
    let warren = warren_bin();
    let c = Containerd::start("ctrd", &runtime_entry(&warren));

    let reference = "docker.io/library/warren-busybox:test";
    let archive = oci_archive(
        &shared_busybox(),
        reference,
        &target_dir().join("test-images").join(unique("busybox")),
    )
    .expect("build image archive");
    let out = c.import("warren", &archive);
    assert!(out.status.success(), "import: {}", stderr(&out));

    let id = unique("ctrd");
    let out = c.ctr(&[
        "-n",
        "warren",
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        warren.to_str().unwrap(),
        reference,
        &id,
        "sh",
        "-c",
        "echo hello-from-containerd; id -u; cat /proc/self/uid_map | awk '{print $1, ($2 > 0), $3}'; \
         stat -c %u /bin/busybox; touch /made-inside && echo wrote",
    ]);
    assert!(
        out.status.success(),
        "ctr run: {}\ncontainerd log:\n{}",
        stderr(&out),
        c.log_text()
    );
    // Root inside a user namespace of its own, on an ID-mapped overlay:
    // the image's files belong to root and root can write.
    assert_eq!(
        stdout(&out),
        "hello-from-containerd\n0\n0 1 65536\n0\nwrote\n"
    );

    // The shim's state root holds no leftover once --rm has deleted it.
    let shim_root = std::path::Path::new("/run/containerd/runc/warren");
    assert!(!shim_root.join(&id).exists());

    // A detached task is warren's: warren-runc reads its state from the
    // root the shim gave it. Then the shim's kill and delete go through it.
    let id = unique("ctrd");
    let out = c.ctr(&[
        "-n",
        "warren",
        "run",
        "-d",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        warren.to_str().unwrap(),
        reference,
        &id,
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "ctr run -d: {}", stderr(&out));
    let state = warren_tests::runtime::output_via_files(
        std::process::Command::new(&warren)
            .arg("--root")
            .arg(shim_root)
            .args(["state", &id]),
    );
    assert!(
        state.status.success(),
        "warren does not know the task: {}",
        stderr(&state)
    );
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state json");
    assert_eq!(state["status"], "running");
    assert!(
        shim_root
            .join("@prepared")
            .join(&id)
            .join("config.json")
            .exists()
    );
    let out = c.ctr(&["-n", "warren", "task", "kill", "-s", "KILL", &id]);
    assert!(out.status.success(), "task kill: {}", stderr(&out));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = c.ctr(&["-n", "warren", "task", "delete", &id]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "task delete: {}",
            stderr(&out)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = c.ctr(&["-n", "warren", "container", "delete", &id]);
    assert!(out.status.success(), "container delete: {}", stderr(&out));
    assert!(!shim_root.join(&id).exists(), "state left behind");
    assert!(
        !shim_root.join("@prepared").join(&id).exists(),
        "prepared bundle left behind"
    );

    let log = c.log_text();
    assert!(
        !log.contains("failed to unmarshal Features")
            && !log.contains("failed to introspect")
            && !log.to_lowercase().contains("features\" error"),
        "containerd could not read warren's features:\n{log}"
    );
    // warren performs ID-mapped mounts and says so in features, so
    // containerd offers it pods with hostUsers: false.
    assert!(
        log.contains("runtime \\\"warren\\\" supports CRI userns: true"),
        "containerd did not find CRI userns support in warren:\n{log}"
    );
}
