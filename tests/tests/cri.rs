//! The Kubernetes path: containerd 2.x's CRI plugin with a runtime handler
//! `warren`, driven over gRPC the way kubelet drives it, for a pod with
//! `hostUsers: false` (a pod user namespace with kubelet's mappings) and for
//! one without (warren allocates the range).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};
use warren_tests::containerd::Containerd;
use warren_tests::fixtures::shared_busybox;
use warren_tests::images::oci_archive_with_cmd;
use warren_tests::runtime::{Runtime, stderr};
use warren_tests::{target_dir, unique};

const PAUSE: &str = "warren.test/pause:1";
const BUSYBOX: &str = "warren.test/busybox:1";
/// The host IDs kubelet would hand a hostUsers:false pod: a multiple of
/// 65536, outside warren's own pool.
const POD_HOST_ID: u32 = 65536 * 32768;
const BRIDGE: &str = "wrncri0";
const SUBNET: &str = "10.233.77.0/24";

/// containerd's CRI settings for the test, without the runtime: the
/// installer adds that.
fn cri_config(cni: &Path) -> String {
    format!(
        r#"[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{PAUSE}"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  enable_selinux = false
[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = "{cni}"
  max_conf_num = 1
"#,
        cni = cni.display(),
    )
}

/// Runs deploy/installer/install.sh against `config`, installing the
/// built binaries into `bin`; returns its output.
fn install(config: &Path, bin: &Path, restarts: &Path) -> String {
    let script = warren_tests::workspace_root().join("deploy/installer/install.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .env("HOST_ROOT", "/")
        .env("SOURCE_DIR", warren_tests::runtime::bin_dir())
        .env("BIN_DIR", bin)
        .env("CONTAINERD_CONFIG", config)
        .env(
            "RESTART_CMD",
            format!("echo restart >> {}", restarts.display()),
        )
        .env_remove("NODE_NAME")
        .output()
        .expect("run install.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "install.sh failed:\n{text}");
    text
}

fn write_cni(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "warren-cri-test",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": SUBNET}]],
                "dataDir": dir.join("ipam"),
            },
        }],
    });
    std::fs::write(dir.join("10-warren.conflist"), conf.to_string()).unwrap();
}

async fn channel(socket: PathBuf) -> Channel {
    Endpoint::try_from("http://[::]")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .expect("connect to containerd's CRI socket")
}

fn userns(mode: NamespaceMode, host_id: Option<u32>) -> NamespaceOption {
    let map = |h| IdMapping {
        host_id: h,
        container_id: 0,
        length: 65536,
    };
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        target_id: String::new(),
        userns_options: Some(UserNamespace {
            mode: mode as i32,
            uids: host_id.map(map).into_iter().collect(),
            gids: host_id.map(map).into_iter().collect(),
        }),
    }
}

/// What the test saw of one pod.
struct Pod {
    sandbox: String,
    container: String,
    sandbox_pid: i32,
}

struct Kubelet {
    rt: RuntimeServiceClient<Channel>,
    logs: PathBuf,
}

impl Kubelet {
    async fn run_pod(&mut self, name: &str, ns: NamespaceOption) -> Pod {
        let uid = unique(name);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_owned(),
                uid: uid.clone(),
                namespace: "default".to_owned(),
                attempt: 0,
            }),
            hostname: name.to_owned(),
            log_directory: self.logs.join(&uid).display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(ns.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sandbox = self
            .rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: "warren".to_owned(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        let container = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "work".to_owned(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: BUSYBOX.to_owned(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".to_owned(), "100000".to_owned()],
                    log_path: "work.log".to_owned(),
                    linux: Some(LinuxContainerConfig {
                        security_context: Some(LinuxContainerSecurityContext {
                            namespace_options: Some(ns),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(config),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        self.rt
            .start_container(StartContainerRequest {
                container_id: container.clone(),
            })
            .await
            .expect("StartContainer");
        let status = self
            .rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner();
        let info: serde_json::Value =
            serde_json::from_str(status.info.get("info").expect("verbose info")).unwrap();
        let sandbox_pid = info["pid"].as_i64().expect("the sandbox's pid") as i32;
        Pod {
            sandbox,
            container,
            sandbox_pid,
        }
    }

    async fn exec(&mut self, container: &str, cmd: &[&str]) -> (i32, String, String) {
        let r = self
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: container.to_owned(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 20,
            })
            .await
            .expect("ExecSync")
            .into_inner();
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    async fn ok(&mut self, container: &str, cmd: &[&str]) -> String {
        let (code, out, err) = self.exec(container, cmd).await;
        assert_eq!(code, 0, "{cmd:?} failed: {out}{err}");
        out
    }

    async fn remove_pod(&mut self, pod: &Pod) {
        self.rt
            .stop_container(StopContainerRequest {
                container_id: pod.container.clone(),
                timeout: 5,
            })
            .await
            .expect("StopContainer");
        self.rt
            .remove_container(RemoveContainerRequest {
                container_id: pod.container.clone(),
            })
            .await
            .expect("RemoveContainer");
        self.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.sandbox.clone(),
            })
            .await
            .expect("StopPodSandbox");
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.sandbox.clone(),
            })
            .await
            .expect("RemovePodSandbox");
    }
}

fn ns_of(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{ns}: {e}"))
        .display()
        .to_string()
}

/// The first line of a uid_map as numbers.
fn first_mapping(map: &str) -> Vec<u64> {
    map.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|x| x.parse().expect("a number in uid_map"))
        .collect()
}

/// Checks a running pod from inside and outside; returns the host uid that
/// is root in the container.
async fn check_pod(k: &mut Kubelet, pod: &Pod) -> u64 {
    let c = &pod.container;
    // Root inside holds CAP_SYS_ADMIN in its own user namespace.
    let status = k.ok(c, &["cat", "/proc/self/status"]).await;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex CapEff"))
        .expect("a CapEff line");
    assert!(caps & (1 << 21) != 0, "no CAP_SYS_ADMIN: CapEff {caps:x}");
    assert_eq!(k.ok(c, &["id", "-u"]).await.trim(), "0");
    // A fresh proc, through the interceptor.
    let out = k
        .ok(
            c,
            &[
                "sh",
                "-c",
                "mount -t proc proc /mnt && test -e /mnt/self/status && umount /mnt && echo mounted",
            ],
        )
        .await;
    assert_eq!(out.trim(), "mounted");
    // The container is in the sandbox's user namespace, and that is not the
    // host's.
    let inner = k.ok(c, &["readlink", "/proc/self/ns/user"]).await;
    assert_eq!(inner.trim(), ns_of(pod.sandbox_pid, "user"));
    assert_ne!(inner.trim(), ns_of(std::process::id() as i32, "user"));
    let map = first_mapping(&k.ok(c, &["cat", "/proc/self/uid_map"]).await);
    assert_eq!(map.len(), 3, "{map:?}");
    assert_eq!(map[0], 0);
    assert!(map[1] > 0, "root inside is host root: {map:?}");
    map[1]
}

fn leftovers(ids: &[&str]) -> Vec<String> {
    let mut left = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mountinfo.lines() {
        if ids.iter().any(|id| l.contains(id)) {
            left.push(format!("mount: {l}"));
        }
    }
    for root in [
        "/run/containerd/runc/k8s.io",
        "/run/containerd/runc/k8s.io/@prepared",
    ] {
        for id in ids {
            if Path::new(root).join(id).exists() {
                left.push(format!("state: {root}/{id}"));
            }
        }
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let out = std::process::Command::new("find")
                .arg(h.path())
                .args(["-maxdepth", "4", "-type", "d"])
                .output()
                .unwrap();
            for d in String::from_utf8_lossy(&out.stdout).lines() {
                if ids.iter().any(|id| d.contains(id)) {
                    left.push(format!("cgroup: {d}"));
                }
            }
        }
    }
    left
}

#[test]
fn cri_pods_with_and_without_host_users_run_as_system_containers() {
    let warren = Runtime::warren_private("");
    let dir = PathBuf::from("/run/warren-test").join(unique("cri"));
    let cni = dir.join("cni");
    write_cni(&cni);
    let config = warren.config.clone().expect("private settings");
    // The node installer adds the runtime; run twice, it changes the config
    // (and asks for a restart) once.
    let bin = dir.join("bin");
    let restarts = dir.join("restarts");
    let c = Containerd::start_edited(
        "cri",
        &cri_config(&cni),
        &[("WARREN_CONFIG", config.as_path())],
        |toml| {
            install(toml, &bin, &restarts);
            let second = install(toml, &bin, &restarts);
            assert!(
                second.contains("already has the warren runtime"),
                "{second}"
            );
            let text = std::fs::read_to_string(toml).unwrap();
            assert_eq!(text.matches("runtimes.warren]").count(), 1, "{text}");
            assert!(
                text.contains(&format!("BinaryName = \"{}/warren-runc\"", bin.display())),
                "{text}"
            );
        },
    );
    assert_eq!(
        std::fs::read_to_string(&restarts).unwrap().lines().count(),
        1,
        "the installer should restart containerd once"
    );

    // The pause and workload images, built from the busybox rootfs and
    // imported under the names the config and the pods use.
    for (reference, cmd) in [
        (PAUSE, &["sleep", "2147483647"][..]),
        (BUSYBOX, &["sh"][..]),
    ] {
        let archive = oci_archive_with_cmd(
            &shared_busybox(),
            reference,
            &target_dir().join("test-images").join(unique("cri")),
            cmd,
        )
        .expect("build image archive");
        let out = c.import("k8s.io", &archive);
        assert!(out.status.success(), "import: {}", stderr(&out));
    }

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let socket = c.socket.clone();
    let logs = dir.join("pods");
    tokio.block_on(async move {
        let ch = channel(socket).await;
        let mut images = ImageServiceClient::new(ch.clone());
        for reference in [PAUSE, BUSYBOX] {
            // The CRI plugin learns of an import through containerd's
            // events: give it a moment.
            let end = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let status = images
                    .image_status(ImageStatusRequest {
                        image: Some(ImageSpec {
                            image: reference.to_owned(),
                            ..Default::default()
                        }),
                        verbose: false,
                    })
                    .await
                    .expect("ImageStatus")
                    .into_inner();
                if status.image.is_some() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < end,
                    "CRI does not see {reference}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut k = Kubelet {
            rt: RuntimeServiceClient::new(ch),
            logs,
        };

        // hostUsers: false: kubelet hands the pod its mappings.
        let pod = k
            .run_pod("userns", userns(NamespaceMode::Pod, Some(POD_HOST_ID)))
            .await;
        let host_root = check_pod(&mut k, &pod).await;
        assert_eq!(host_root, u64::from(POD_HOST_ID), "not kubelet's mapping");
        let status =
            k.rt.container_status(ContainerStatusRequest {
                container_id: pod.container.clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("a status");
        assert_eq!(status.state, ContainerState::ContainerRunning as i32);
        // The sandbox's processes run as the pod's host IDs.
        let owner = std::fs::metadata(format!("/proc/{}", pod.sandbox_pid))
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap();
        assert_eq!(owner, POD_HOST_ID);
        k.remove_pod(&pod).await;
        let ids = [pod.sandbox.as_str(), pod.container.as_str()];
        let left = leftovers(&ids);
        assert!(left.is_empty(), "left after removal:\n{}", left.join("\n"));

        // A pod in the host's user namespace (hostUsers unset): warren makes
        // the container a system container with a range of its own.
        let pod = k
            .run_pod("hostusers", userns(NamespaceMode::Node, None))
            .await;
        let host_root = check_pod(&mut k, &pod).await;
        assert_ne!(host_root, u64::from(POD_HOST_ID));
        // One range for the pod: the container shares its sandbox's.
        assert_eq!(warren.allocations().len(), 1, "{:?}", warren.allocations());
        k.remove_pod(&pod).await;
        let ids = [pod.sandbox.as_str(), pod.container.as_str()];
        let left = leftovers(&ids);
        assert!(left.is_empty(), "left after removal:\n{}", left.join("\n"));
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !warren.allocations().is_empty() {
            assert!(
                std::time::Instant::now() < end,
                "ID ranges left: {:?}",
                warren.allocations()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let log = c.log_text();
    assert!(
        !log.contains("failed to unmarshal Features") && !log.contains("failed to introspect"),
        "containerd could not read warren's features:\n{log}"
    );
    drop(c);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", BRIDGE])
        .status();
    let _ = std::fs::remove_dir_all(&dir);
}
