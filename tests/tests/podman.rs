//! podman drives warren-runc through conmon with `--runtime`.

use std::path::PathBuf;
use std::process::Command;

use warren_tests::fixtures::private_busybox;
use warren_tests::runtime::{output_via_files, stderr, stdout, warren_bin, which};
use warren_tests::{require_root, target_dir, unique};

struct Podman {
    dir: PathBuf,
    bin: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        require_root();
        let bin = which("podman").expect("podman is not installed: run `cargo xtask deps`");
        let dir = PathBuf::from("/run/warren-test").join(unique("podman"));
        std::fs::create_dir_all(&dir).expect("create podman dir");
        // The host's hard limits are below podman's default ulimits, and
        // there is no systemd to manage cgroups or take events.
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .expect("write containers.conf");
        Podman { dir, bin }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        output_via_files(
            Command::new(&self.bin)
                .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
                .arg("--root")
                .arg(self.dir.join("root"))
                .arg("--runroot")
                .arg(self.dir.join("runroot"))
                .arg("--runtime")
                .arg(warren_bin())
                .args(args),
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force"]);
        warren_tests::host::unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn podman_runs_a_rootfs_through_warren() {
    let podman = Podman::new();
    let rootfs = private_busybox(&target_dir().join("test-rootfs").join(unique("podman")));
    let name = unique("pod");
    let out = podman.run(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "sh",
        "-c",
        "echo hello-from-podman; id -u; cat /proc/1/comm; true",
    ]);
    assert!(out.status.success(), "podman run: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello-from-podman\n0\nsh\n");

    // podman info names the runtime it was given.
    let out = podman.run(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
    assert!(out.status.success(), "podman info: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), warren_bin().to_str().unwrap());

    // A detached container, then exec, stop and rm through conmon.
    let name = unique("pod");
    let out = podman.run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--rootfs",
        rootfs.to_str().unwrap(),
        "sleep",
        "1000",
    ]);
    assert!(out.status.success(), "podman run -d: {}", stderr(&out));
    let out = podman.run(&["exec", &name, "sh", "-c", "echo exec-ok"]);
    assert!(out.status.success(), "podman exec: {}", stderr(&out));
    assert_eq!(stdout(&out), "exec-ok\n");
    let out = podman.run(&["rm", "--force", "--time", "0", &name]);
    assert!(out.status.success(), "podman rm: {}", stderr(&out));
    let _ = std::fs::remove_dir_all(&rootfs);
}
