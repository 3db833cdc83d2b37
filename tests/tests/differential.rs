//! The same bundle under warren-runc (with the system-container rewrite
//! switched off) and under Debian's crun must look the same from inside.
//! This checks warren against an independent implementation of the spec.

use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

const PROBE: &str = r#"
echo "== id"; id
echo "== hostname"; hostname
echo "== caps"; grep ^Cap /proc/self/status
echo "== mounts"; awk '{print $5}' /proc/self/mountinfo | sort
echo "== env"; env | sort
echo "== cwd"; pwd
echo "== limits"; cat /proc/self/limits
"#;

fn probe(rt: &Runtime, b: &std::path::Path) -> String {
    let id = unique("diff");
    let _guard = rt.cleanup(&id);
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{} run failed: {}",
        rt.name,
        stderr(&out)
    );
    stdout(&out)
}

fn plain(spec: &mut serde_json::Value) {
    spec["annotations"] = serde_json::json!({"io.warren.syscont": "false"});
    spec["process"]["cwd"] = "/tmp".into();
    spec["process"]["env"] = serde_json::json!(["PATH=/bin:/usr/bin", "TERM=dumb", "PROBE=1"]);
}

#[test]
fn warren_and_crun_agree_on_what_the_container_sees() {
    let w = Runtime::warren();
    let dir = target_dir().join("test-bundles").join(unique("diff"));
    let b = bundle(&w.bin, &dir, &shared_busybox(), &["sh", "-c", PROBE], plain);
    // crun needs the hugetlb v1 hierarchy mounted (see host::bind_hugetlb_v1),
    // and both runtimes must see the same host: the peer comes first.
    let c = Runtime::peer("crun");
    let warren = probe(&w, &b);
    let crun = probe(&c, &b);
    for (section_w, section_c) in warren.split("== ").zip(crun.split("== ")) {
        assert_eq!(section_w, section_c, "warren and crun differ");
    }
    assert_eq!(warren, crun);
    assert!(warren.contains("uid=0(root)"), "{warren}");
}
