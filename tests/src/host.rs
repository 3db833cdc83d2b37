//! Host preparation the peers need, done idempotently.

use std::process::Command;

/// crun refuses hybrid cgroups while the unified hierarchy lists a
/// controller; here that is hugetlb. Binding hugetlb to v1 moves it out.
pub fn bind_hugetlb_v1() {
    let controllers =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    if controllers.trim().is_empty() {
        return;
    }
    std::fs::create_dir_all("/sys/fs/cgroup/hugetlb").expect("mkdir /sys/fs/cgroup/hugetlb");
    let status = Command::new("mount")
        .args([
            "-t",
            "cgroup",
            "-o",
            "hugetlb",
            "cgroup",
            "/sys/fs/cgroup/hugetlb",
        ])
        .status()
        .expect("run mount");
    let after =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default();
    assert!(
        status.success() || after.trim().is_empty(),
        "cannot bind hugetlb to cgroup v1; crun will refuse hybrid mode"
    );
}
