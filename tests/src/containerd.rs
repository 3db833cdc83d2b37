//! A private containerd 2.x: its own socket, state and log, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::runtime::output_via_files;

pub struct Containerd {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Child,
}

/// containerd 2.x's bin dir, as `cargo xtask deps` unpacks it.
pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("WARREN_CONTAINERD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::target_dir().join("tools/containerd/usr/bin"));
    assert!(
        dir.join("containerd").exists() && dir.join("containerd-shim-runc-v2").exists(),
        "containerd 2.x is missing from {}: run `cargo xtask deps`",
        dir.display()
    );
    dir
}

impl Containerd {
    /// Starts containerd with `extra` appended to its config (runtime
    /// entries, CRI settings).
    pub fn start(name: &str, extra: &str) -> Containerd {
        Containerd::start_with_env(name, extra, &[])
    }

    /// As [`Containerd::start`], with `env` added to containerd's
    /// environment, which its shims and so the runtime inherit.
    pub fn start_with_env(name: &str, extra: &str, env: &[(&str, &Path)]) -> Containerd {
        Containerd::start_edited(name, extra, env, |_| {})
    }

    /// As [`Containerd::start_with_env`], with `edit` run on the written
    /// config file before containerd starts (an installer, say).
    pub fn start_edited(
        name: &str,
        extra: &str,
        env: &[(&str, &Path)],
        edit: impl FnOnce(&Path),
    ) -> Containerd {
        crate::require_root();
        let bin = bin_dir();
        // Short paths: unix socket paths are limited to 108 bytes.
        let dir = PathBuf::from("/run/warren-test").join(crate::unique(name));
        std::fs::create_dir_all(&dir).expect("create containerd dir");
        let socket = dir.join("c.sock");
        let log = dir.join("containerd.log");
        let config = format!(
            r#"version = 3
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  level = "debug"
{extra}
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = socket.display(),
        );
        std::fs::write(dir.join("config.toml"), config).expect("write config");
        edit(&dir.join("config.toml"));
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(bin.join("containerd"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env("PATH", path)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("create log"))
            .stderr(
                std::fs::File::options()
                    .append(true)
                    .open(&log)
                    .expect("open log"),
            )
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            dir,
            bin,
            socket,
            log,
            child,
        };
        let end = Instant::now() + Duration::from_secs(30);
        while c.ctr(&["version"]).status.code() != Some(0) {
            assert!(
                Instant::now() < end,
                "containerd did not come up: {}",
                c.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        output_via_files(
            Command::new(self.bin.join("ctr"))
                .arg("--address")
                .arg(&self.socket)
                .args(args)
                .env("PATH", path),
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn import(&self, namespace: &str, archive: &Path) -> Output {
        self.ctr(&[
            "-n",
            namespace,
            "images",
            "import",
            archive.to_str().expect("utf-8 path"),
        ])
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that failed midway leaves tasks: their shims outlive
        // containerd. Stop the shims this containerd started, then delete
        // the runtime's containers whose bundles are in its state dir.
        let _ = Command::new("pkill")
            .args(["-9", "-f"])
            .arg(format!(
                "containerd-shim-runc-v2 .*-address {}",
                self.socket.display()
            ))
            .status();
        let warren = crate::runtime::bin_dir().join("warren-runc");
        for ns in ["k8s.io", "warren"] {
            let root = Path::new("/run/containerd/runc").join(ns);
            let Ok(out) = Command::new(&warren)
                .arg("--root")
                .arg(&root)
                .args(["list", "--format", "json"])
                .output()
            else {
                continue;
            };
            let list: Vec<serde_json::Value> =
                serde_json::from_slice(&out.stdout).unwrap_or_default();
            for c in list {
                let ours = c["bundle"]
                    .as_str()
                    .is_some_and(|b| Path::new(b).starts_with(&self.dir));
                if let (true, Some(id)) = (ours, c["id"].as_str()) {
                    let _ = Command::new(&warren)
                        .arg("--root")
                        .arg(&root)
                        .args(["delete", "--force", id])
                        .output();
                }
            }
        }
        // Snapshots are overlay mounts under root; unmount before removing.
        crate::host::unmount_under(&self.dir);
        if std::env::var_os("WARREN_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
