//! Driving an OCI runtime binary (warren-runc, runc or crun) the way a shim
//! does, with a private state root per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A runtime binary and the state root this test gives it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub name: String,
    pub bin: PathBuf,
    pub root: PathBuf,
    /// warren's node settings file, passed as WARREN_CONFIG.
    pub config: Option<PathBuf>,
}

/// The directory holding the built warren binaries.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("WARREN_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::target_dir().join("debug"))
}

pub fn warren_bin() -> PathBuf {
    let bin = bin_dir().join("warren-runc");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo xtask test does)",
        bin.display()
    );
    bin
}

impl Runtime {
    fn with(name: &str, bin: PathBuf) -> Runtime {
        crate::require_root();
        let root = crate::target_dir()
            .join("test-state")
            .join(crate::unique(name));
        std::fs::create_dir_all(&root).expect("create state root");
        Runtime {
            name: name.to_owned(),
            bin,
            root,
            config: None,
        }
    }

    /// warren with private node settings: its own state dir and subordinate
    /// ID files under the test's state root, plus `extra` TOML lines.
    pub fn warren_private(extra: &str) -> Runtime {
        let mut rt = Runtime::warren();
        let dir = rt.root.join("node");
        std::fs::create_dir_all(&dir).expect("create node dir");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "state-dir = \"{d}/state\"\nsubuid-file = \"{d}/subuid\"\nsubgid-file = \"{d}/subgid\"\n{extra}\n",
                d = dir.display()
            ),
        )
        .expect("write config.toml");
        rt.config = Some(config);
        rt
    }

    /// The node dir of a `warren_private` runtime.
    pub fn node_dir(&self) -> PathBuf {
        self.root.join("node")
    }

    /// The allocator's live entries (private settings only).
    pub fn allocations(&self) -> Vec<Value> {
        let path = self.node_dir().join("state/ids.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let v: Value = serde_json::from_str(&text).expect("ids.json is JSON");
                v["entries"].as_array().cloned().unwrap_or_default()
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn warren() -> Runtime {
        Runtime::with("warren", warren_bin())
    }

    /// A Debian peer runtime (`runc` or `crun`) found on PATH.
    pub fn peer(name: &str) -> Runtime {
        let bin = which(name).unwrap_or_else(|| {
            panic!("{name} is not installed: run `cargo xtask deps` (Debian package {name})")
        });
        if name == "crun" {
            crate::host::bind_hugetlb_v1();
        }
        Runtime::with(name, bin)
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root);
        if let Some(config) = &self.config {
            cmd.env("WARREN_CONFIG", config);
        }
        cmd
    }

    /// Runs the runtime with `args`, stdin closed, and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(self.command().args(args))
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {:?} failed ({}): {}",
            self.name,
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The name of container `id`'s cgroups under `warren/` when its spec
    /// names none (ids are unique per state root only).
    pub fn cgroup_name(&self, id: &str) -> String {
        warren_runtime::syscont::per_root_name(&self.root, id)
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state is JSON")
    }

    /// Waits until `state` reports `status`; panics after `timeout`.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let st = self.state(id);
            if st["status"] == status {
                return;
            }
            assert!(
                Instant::now() < end,
                "{id} never reached {status}: last state {st}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Deletes a container when dropped, so that a failing test leaves nothing.
pub struct Cleanup<'a> {
    pub rt: &'a Runtime,
    pub id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(&["delete", "--force", &self.id]);
    }
}

impl Runtime {
    pub fn cleanup(&self, id: &str) -> Cleanup<'_> {
        Cleanup {
            rt: self,
            id: id.to_owned(),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Every container a test made is deleted by its Cleanup guard; an
        // empty state root is all that should remain.
        let _ = std::fs::remove_dir(self.root.join("@prepared"));
        if self.config.is_some() {
            let _ = std::fs::remove_dir_all(self.node_dir());
        }
        let _ = std::fs::remove_dir(&self.root);
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The cgroup v1 memory directory a container's cgroupsPath maps to.
pub fn memory_cgroup(cgroups_path: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(cgroups_path.trim_start_matches('/'))
}

/// Runs a command to completion with stdout and stderr in files, not pipes.
///
/// A container created by `create` or `run --detach` inherits the runtime's
/// stdio, as it does under a shim; with pipes, reading to EOF would wait for
/// the container to exit.
pub fn output_via_files(cmd: &mut Command) -> Output {
    let dir = crate::target_dir().join("test-io");
    std::fs::create_dir_all(&dir).expect("create test-io dir");
    let base = dir.join(crate::unique("io"));
    let out_path = base.with_extension("out");
    let err_path = base.with_extension("err");
    let out_file = std::fs::File::create(&out_path).expect("create stdout file");
    let err_file = std::fs::File::create(&err_path).expect("create stderr file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = std::fs::read(&out_path).expect("read stdout file");
    let stderr = std::fs::read(&err_path).expect("read stderr file");
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Output {
        status,
        stdout,
        stderr,
    }
}
