use std::path::Path;

use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceType, Spec};

use super::*;

/// The default spec, as `warren-runc spec` writes it.
fn base() -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some("warren".into()));
    spec
}

fn with_annotation(mut spec: Spec, k: &str, v: &str) -> Spec {
    let mut a = spec.annotations().clone().unwrap_or_default();
    a.insert(k.into(), v.into());
    spec.set_annotations(Some(a));
    spec
}

fn map(c: u32, h: u32, s: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(c)
        .host_id(h)
        .size(s)
        .build()
        .unwrap()
}

fn caps() -> Vec<String> {
    ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn target<'a>(host_caps: &'a [String]) -> Target<'a> {
    Target {
        id: "c1",
        cgroup_name: "0123456789abcdef-c1",
        rootfs: Path::new("/run/warren/@prepared/c1/rootfs"),
        mappings: Some((vec![map(0, 200000, 65536)], vec![map(0, 300000, 65536)])),
        host_caps,
        listener: Some(Path::new("/run/warren/interceptor.sock")),
    }
}

fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
    let mut v: Vec<_> = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    v.sort_by_key(|t| format!("{t:?}"));
    v
}

/// One row: an input spec and what the rewrite must produce.
struct Case {
    name: &'static str,
    input: Spec,
    check: fn(&Spec),
}

#[test]
fn table() {
    let caps = caps();
    let cases = vec![
        Case {
            name: "default spec becomes a system container",
            input: base(),
            check: |out| {
                use LinuxNamespaceType::*;
                let mut want = vec![User, Cgroup, Pid, Ipc, Uts, Mount, Network];
                want.sort_by_key(|t| format!("{t:?}"));
                assert_eq!(namespaces(out), want);
                let linux = out.linux().as_ref().unwrap();
                assert_eq!(
                    linux.uid_mappings().as_ref().unwrap(),
                    &vec![map(0, 200000, 65536)]
                );
                assert_eq!(
                    linux.gid_mappings().as_ref().unwrap(),
                    &vec![map(0, 300000, 65536)]
                );
                assert_eq!(
                    linux.cgroups_path().as_deref(),
                    Some(Path::new("/warren/0123456789abcdef-c1"))
                );
                let c = out
                    .process()
                    .as_ref()
                    .unwrap()
                    .capabilities()
                    .as_ref()
                    .unwrap();
                assert_eq!(c.effective().as_ref().unwrap().len(), 3);
                assert!(
                    c.bounding()
                        .as_ref()
                        .unwrap()
                        .contains(&parse_capability("CAP_SYS_ADMIN").unwrap())
                );
                assert_eq!(
                    out.root().as_ref().unwrap().path(),
                    Path::new("/run/warren/@prepared/c1/rootfs")
                );
                // Masks and read-only paths stay.
                assert!(
                    linux
                        .masked_paths()
                        .as_ref()
                        .unwrap()
                        .iter()
                        .any(|p| p == "/proc/kcore")
                );
                // /proc/sys is read-only but for its namespaced parts.
                let ro = linux.readonly_paths().as_ref().unwrap();
                assert!(!ro.iter().any(|p| p == "/proc/sys"));
                assert!(ro.iter().any(|p| p == "/proc/sys/kernel"));
                assert!(!ro.iter().any(|p| p.starts_with("/proc/sys/net")));
                let dests: Vec<_> = out
                    .mounts()
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(|m| m.destination().clone())
                    .collect();
                for d in ["/proc", "/sys", "/sys/fs/cgroup"] {
                    assert_eq!(
                        dests.iter().filter(|x| x.as_path() == Path::new(d)).count(),
                        1,
                        "{d}"
                    );
                }
                assert!(!dests.iter().any(|d| d == Path::new("/run")));
            },
        },
        Case {
            name: "the spec's own mappings are used exactly",
            input: {
                let mut s = base();
                let l = s.linux_mut().as_mut().unwrap();
                l.set_uid_mappings(Some(vec![map(0, 700000, 1000), map(1000, 800000, 10)]));
                l.set_gid_mappings(Some(vec![map(0, 710000, 1010)]));
                s
            },
            check: |out| {
                let l = out.linux().as_ref().unwrap();
                assert_eq!(
                    l.uid_mappings().as_ref().unwrap(),
                    &vec![map(0, 700000, 1000), map(1000, 800000, 10)]
                );
                assert_eq!(
                    l.gid_mappings().as_ref().unwrap(),
                    &vec![map(0, 710000, 1010)]
                );
            },
        },
        Case {
            name: "opting out leaves a plain container",
            input: with_annotation(base(), ANNOTATION_SYSCONT, "false"),
            check: |out| {
                assert!(!namespaces(out).contains(&LinuxNamespaceType::User));
                assert!(out.linux().as_ref().unwrap().uid_mappings().is_none());
                let c = out
                    .process()
                    .as_ref()
                    .unwrap()
                    .capabilities()
                    .as_ref()
                    .unwrap();
                assert!(
                    !c.effective()
                        .as_ref()
                        .unwrap()
                        .contains(&parse_capability("CAP_SYS_ADMIN").unwrap())
                );
            },
        },
        Case {
            name: "honor-caps keeps the spec's capabilities",
            input: with_annotation(base(), ANNOTATION_HONOR_CAPS, "true"),
            check: |out| {
                let c = out
                    .process()
                    .as_ref()
                    .unwrap()
                    .capabilities()
                    .as_ref()
                    .unwrap();
                assert!(
                    !c.effective()
                        .as_ref()
                        .unwrap()
                        .contains(&parse_capability("CAP_SYS_ADMIN").unwrap())
                );
                assert!(namespaces(out).contains(&LinuxNamespaceType::User));
            },
        },
        Case {
            name: "systemd gets /run, /run/lock and container=warren",
            input: {
                let mut s = base();
                s.process_mut()
                    .as_mut()
                    .unwrap()
                    .set_args(Some(vec!["/lib/systemd/systemd".into()]));
                s
            },
            check: |out| {
                let dests: Vec<_> = out
                    .mounts()
                    .as_ref()
                    .unwrap()
                    .iter()
                    .map(|m| m.destination().clone())
                    .collect();
                assert!(dests.iter().any(|d| d == Path::new("/run")));
                assert!(dests.iter().any(|d| d == Path::new("/run/lock")));
                let env = out.process().as_ref().unwrap().env().as_ref().unwrap();
                assert!(env.iter().any(|e| e == "container=warren"));
            },
        },
        Case {
            name: "/sbin/init counts as systemd",
            input: {
                let mut s = base();
                s.process_mut()
                    .as_mut()
                    .unwrap()
                    .set_args(Some(vec!["/sbin/init".into()]));
                s
            },
            check: |out| {
                assert!(
                    out.mounts()
                        .as_ref()
                        .unwrap()
                        .iter()
                        .any(|m| m.destination() == Path::new("/run"))
                )
            },
        },
        Case {
            name: "an apparmor profile is dropped",
            input: {
                let mut s = base();
                s.process_mut()
                    .as_mut()
                    .unwrap()
                    .set_apparmor_profile(Some("docker-default".into()));
                s
            },
            check: |out| assert!(out.process().as_ref().unwrap().apparmor_profile().is_none()),
        },
        Case {
            name: "a joined user namespace needs no mappings",
            input: {
                let mut s = base();
                let l = s.linux_mut().as_mut().unwrap();
                let mut ns = l.namespaces().clone().unwrap();
                let mut user = oci_spec::runtime::LinuxNamespace::default();
                user.set_typ(LinuxNamespaceType::User);
                user.set_path(Some("/proc/4242/ns/user".into()));
                ns.push(user);
                l.set_namespaces(Some(ns));
                s
            },
            check: |out| {
                let l = out.linux().as_ref().unwrap();
                assert!(l.uid_mappings().is_none());
                let user: Vec<_> = l
                    .namespaces()
                    .as_ref()
                    .unwrap()
                    .iter()
                    .filter(|n| n.typ() == LinuxNamespaceType::User)
                    .collect();
                assert_eq!(user.len(), 1);
                assert_eq!(
                    user[0].path().as_deref(),
                    Some(Path::new("/proc/4242/ns/user"))
                );
            },
        },
    ];
    for case in cases {
        let out =
            rewrite(case.input, &target(&caps)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        (case.check)(&out);
    }
}

#[test]
fn no_mapping_is_an_error() {
    let caps = caps();
    let mut t = target(&caps);
    t.mappings = None;
    assert_eq!(rewrite(base(), &t).unwrap_err(), SpecError::NoMapping);
}

#[test]
fn host_namespaces_are_refused() {
    let mut s = base();
    let l = s.linux_mut().as_mut().unwrap();
    let mut ns = l.namespaces().clone().unwrap();
    for n in ns.iter_mut().filter(|n| n.typ() == LinuxNamespaceType::Pid) {
        n.set_path(Some("/proc/1/ns/pid".into()));
    }
    l.set_namespaces(Some(ns));
    let err = check_namespaces(&s, |_, p| p == Path::new("/proc/1/ns/pid")).unwrap_err();
    assert_eq!(err, SpecError::SharedNamespace("pid"));
    assert!(check_namespaces(&s, |_, _| false).is_ok());
}

#[test]
fn idmapped_mounts_are_found_and_repointed() {
    let mut s = base();
    let mut mounts = s.mounts().clone().unwrap();
    let n = mounts.len();
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination("/data".into());
    m.set_source(Some("/srv/data".into()));
    m.set_typ(Some("bind".into()));
    m.set_options(Some(vec!["rbind".into(), "idmap".into()]));
    mounts.push(m.clone());
    let mut m2 = m.clone();
    m2.set_destination("/other".into());
    m2.set_options(Some(vec!["bind".into()]));
    m2.set_uid_mappings(Some(vec![map(0, 1, 2)]));
    m2.set_gid_mappings(Some(vec![map(0, 1, 2)]));
    mounts.push(m2);
    s.set_mounts(Some(mounts));
    let found = idmapped_mounts(&s);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].index, n);
    assert!(found[0].recursive && found[0].uids.is_empty());
    assert_eq!(found[1].uids, vec![map(0, 1, 2)]);
    point_mounts_at(
        &mut s,
        &[(n, Path::new("/stage/0")), (n + 1, Path::new("/stage/1"))],
    );
    let out = &s.mounts().as_ref().unwrap()[n];
    assert_eq!(out.source().as_deref(), Some(Path::new("/stage/0")));
    assert_eq!(out.options().as_ref().unwrap(), &vec!["rbind".to_owned()]);
    assert!(s.mounts().as_ref().unwrap()[n + 1].uid_mappings().is_none());
    assert!(idmapped_mounts(&s).is_empty());
}

#[test]
fn ping_group_range_is_cut_to_the_gid_map() {
    let mut spec = base();
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut sysctl = std::collections::HashMap::new();
    sysctl.insert(
        "net.ipv4.ping_group_range".to_owned(),
        "0 2147483647".to_owned(),
    );
    linux.set_sysctl(Some(sysctl));
    spec.set_linux(Some(linux));
    let caps = caps();
    let out = rewrite(spec, &target(&caps)).unwrap();
    let got = out.linux().as_ref().unwrap().sysctl().as_ref().unwrap()["net.ipv4.ping_group_range"]
        .clone();
    assert_eq!(got, "0 65535");
}

#[test]
fn pod_containers_name_their_sandbox() {
    let sandbox = with_annotation(base(), "io.kubernetes.cri.container-type", "sandbox");
    assert_eq!(pod_sandbox(&sandbox), None);
    let c = with_annotation(base(), "io.kubernetes.cri.container-type", "container");
    let c = with_annotation(c, "io.kubernetes.cri.sandbox-id", "abc");
    assert_eq!(pod_sandbox(&c), Some("abc"));
    let crio = with_annotation(base(), "io.kubernetes.cri-o.ContainerType", "container");
    let crio = with_annotation(crio, "io.kubernetes.cri-o.SandboxID", "def");
    assert_eq!(pod_sandbox(&crio), Some("def"));
}

#[test]
fn a_host_owned_netns_moves_out_of_the_spec() {
    let mut spec = base();
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut net = oci_spec::runtime::LinuxNamespace::default();
    net.set_typ(LinuxNamespaceType::Network);
    net.set_path(Some("/var/run/netns/cni-1".into()));
    linux.set_namespaces(Some(vec![net]));
    spec.set_linux(Some(linux));
    let mut kept = spec.clone();
    move_host_netns(&mut kept, |_| false);
    assert_eq!(namespaces(&kept), vec![LinuxNamespaceType::Network]);
    assert_eq!(host_netns(&kept), None);
    move_host_netns(&mut spec, |p| p == Path::new("/var/run/netns/cni-1"));
    assert!(namespaces(&spec).is_empty());
    assert_eq!(
        host_netns(&spec),
        Some(PathBuf::from("/var/run/netns/cni-1"))
    );
}

#[test]
fn a_container_uuid_is_stable_and_well_formed() {
    let a = container_uuid("web-1");
    assert_eq!(a, container_uuid("web-1"));
    assert_ne!(a, container_uuid("web-2"));
    let parts: Vec<usize> = a.split('-').map(str::len).collect();
    assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
}

#[test]
fn the_devices_cgroup_denies_all_but_named_devices_and_what_engines_need() {
    let mut spec = base();
    let mut linux = spec.linux().clone().unwrap_or_default();
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(serde_json::json!([
            {"allow": true, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"}
        ]))
        .unwrap();
    let mut resources = oci_spec::runtime::LinuxResources::default();
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    let caps = caps();
    let out = rewrite(spec, &target(&caps)).unwrap();
    let got: Vec<String> = out
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
        .collect();
    assert_eq!(
        got,
        [
            "deny a *:* rwm",
            "allow c 1:3 rwm",
            "allow b 8:0 rw",
            "allow c 10:229 rwm"
        ],
        "{got:?}"
    );
}
