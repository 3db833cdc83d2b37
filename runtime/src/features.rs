//! The OCI features document (runtime-spec `features.md`).
//!
//! containerd 2.x reads it at start-up; a document it cannot parse makes it
//! drop user-namespace support for the runtime. Every claim here must be true
//! of warren as built: `idmap` is claimed only when warren performs
//! ID-mapped mounts itself.

use serde_json::{Value, json};

/// What this build of warren can do that the document depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// warren makes ID-mapped mounts for the rootfs and spec mounts.
    pub idmap_mounts: bool,
    /// The libseccomp version linked in, `major.minor.micro`.
    pub libseccomp_version: String,
}

impl Capabilities {
    pub fn of_this_build() -> Self {
        let libseccomp_version = libseccomp::ScmpVersion::current()
            .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
            .unwrap_or_else(|_| "unknown".to_owned());
        Capabilities {
            // warren makes the rootfs and idmap-flagged spec mounts
            // ID-mapped itself (see `idmap` and `syscont`).
            idmap_mounts: true,
            libseccomp_version,
        }
    }
}

/// Capability names the runtime recognises, in kernel order.
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// Filter flags libcontainer applies.
const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

pub fn document(caps: &Capabilities, version: &str, commit: &str) -> Value {
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": oci_spec::runtime::VERSION,
        "hooks": HOOKS,
        "mountOptions": libcontainer::syscall::linux::MountOption::known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": KNOWN_CAPABILITIES,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": SECCOMP_FLAGS,
                "supportedFlags": SECCOMP_FLAGS,
            },
            "apparmor": { "enabled": true },
            "selinux": { "enabled": true },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": caps.idmap_mounts } },
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": caps.libseccomp_version,
            "io.warren.version": version,
            "io.warren.commit": commit,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(idmap: bool) -> Value {
        document(
            &Capabilities {
                idmap_mounts: idmap,
                libseccomp_version: "2.5.4".into(),
            },
            "0.1.0",
            "abc",
        )
    }

    #[test]
    fn parses_as_the_oci_features_type() {
        let text = doc(false).to_string();
        let parsed: oci_spec::runtime::Features =
            serde_json::from_str(&text).expect("oci-spec accepts the document");
        let linux = parsed.linux().as_ref().expect("linux section");
        let ns = linux.namespaces().as_ref().expect("namespaces");
        assert!(ns.contains(&oci_spec::runtime::LinuxNamespaceType::User));
        assert!(ns.contains(&oci_spec::runtime::LinuxNamespaceType::Time));
        let seccomp = linux.seccomp().as_ref().expect("seccomp");
        assert!(
            seccomp
                .actions()
                .as_ref()
                .expect("actions")
                .contains(&oci_spec::runtime::LinuxSeccompAction::ScmpActNotify)
        );
    }

    #[test]
    fn idmap_is_claimed_only_when_implemented() {
        assert_eq!(
            doc(false)["linux"]["mountExtensions"]["idmap"]["enabled"],
            false
        );
        assert_eq!(
            doc(true)["linux"]["mountExtensions"]["idmap"]["enabled"],
            true
        );
    }

    #[test]
    fn annotations_name_versions() {
        let d = doc(false);
        assert_eq!(
            d["annotations"]["io.github.seccomp.libseccomp.version"],
            "2.5.4"
        );
        assert_eq!(d["annotations"]["io.warren.commit"], "abc");
    }
}
