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

/// Lazily unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_under(dir: &std::path::Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| std::path::Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    }
}
