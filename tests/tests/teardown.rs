//! Teardown removes only what lies on warren's own filesystem, never
//! anything through a mount, whatever path the state root is named by.

use std::path::{Path, PathBuf};

use warren_tests::fixtures::{bundle, private_busybox};
use warren_tests::runtime::{Runtime, stderr, stdout};
use warren_tests::{target_dir, unique};

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        n += 1;
        let t = e.file_type().unwrap();
        if t.is_dir() {
            n += count_files(&e.path());
        }
    }
    n
}

#[test]
fn a_state_root_named_through_a_symlink_leaves_the_rootfs_intact_and_nothing_behind() {
    let base = target_dir().join("test-state").join(unique("symroot"));
    let real = base.join("real");
    std::fs::create_dir_all(&real).unwrap();
    let link = base.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut rt = Runtime::warren();
    let _ = std::fs::remove_dir(&rt.root);
    rt.root = link.clone();

    let rootfs = private_busybox(&target_dir().join("test-rootfs").join(unique("symroot")));
    let before = count_files(&rootfs);
    let b = bundle(
        &rt.bin,
        &target_dir().join("test-bundles").join(unique("symroot")),
        &rootfs,
        &["sh", "-c", "touch /made-inside; echo ran"],
        |spec| spec["root"]["readonly"] = false.into(),
    );
    for how in ["run", "create"] {
        let id = unique("symroot");
        let out = rt.run(&[how, "--bundle", b.to_str().unwrap(), &id]);
        assert!(out.status.success(), "{how}: {}", stderr(&out));
        if how == "run" {
            assert_eq!(stdout(&out), "ran\n");
        }
        rt.ok(&["delete", "--force", &id]);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&id), "{how}: mounts of {id} left behind");
        assert!(!real.join(&id).exists() && !real.join("@prepared").join(&id).exists());
    }
    // Everything the image had is still there (and the file made inside).
    assert_eq!(count_files(&rootfs), before + 1, "the rootfs lost files");
    assert!(rootfs.join("bin/busybox").exists());
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_dir_all(&rootfs);
}

#[test]
fn a_tree_with_a_mount_below_is_not_removed_through_it() {
    warren_tests::require_root();
    let dir: PathBuf = target_dir().join("test-state").join(unique("busy"));
    let point = dir.join("sub/m");
    std::fs::create_dir_all(&point).unwrap();
    std::fs::write(dir.join("sub/own-file"), "x").unwrap();
    let precious = private_busybox(&target_dir().join("test-rootfs").join(unique("busy")));
    let before = count_files(&precious);
    nix::mount::mount(
        Some(&precious),
        &point,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let err = warren_sys::remove_tree(&dir).unwrap_err();
    assert!(
        matches!(&err, warren_sys::RemoveError::Mounted(p) if p == &point),
        "{err}"
    );
    assert_eq!(count_files(&precious), before, "removed through the mount");
    nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH).unwrap();
    warren_sys::remove_tree(&dir).unwrap();
    assert!(!dir.exists());
    // A file bound over a file is a mount too.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "").unwrap();
    nix::mount::mount(
        Some(&precious.join("bin/busybox")),
        &dir.join("f"),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    assert!(warren_sys::remove_tree(&dir).is_err());
    assert!(precious.join("bin/busybox").exists());
    nix::mount::umount2(&dir.join("f"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    warren_sys::remove_tree(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&precious);
}

#[test]
fn a_state_root_only_root_may_enter_works_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt;
    // Docker's exec-root, /run/docker, is 0700: container root (an
    // unprivileged host uid) cannot pass it.
    let base = target_dir().join("test-state").join(unique("closed"));
    std::fs::create_dir_all(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut rt = Runtime::warren();
    let _ = std::fs::remove_dir(&rt.root);
    rt.root = base.join("root");
    let b = bundle(
        &rt.bin,
        &target_dir().join("test-bundles").join(unique("closed")),
        &warren_tests::fixtures::shared_busybox(),
        &[
            "sh",
            "-c",
            "echo ran; ls /proc/self/ns >/dev/null && echo proc",
        ],
        |_| {},
    );
    let id = unique("closed");
    let out = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\nproc\n");
    rt.ok(&["delete", "--force", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "mounts left behind");
    let views: Vec<_> = std::fs::read_dir("/run/warren/prepared")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(&format!("-{id}")))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(views.is_empty(), "views left behind: {views:?}");
    let _ = std::fs::remove_dir_all(&base);
}
