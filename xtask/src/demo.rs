//! `cargo xtask demo`: build warren and run one busybox system container
//! that prints who it is.

use std::process::Command;

use anyhow::{Result, bail};
use xtask::{build_bins, path_str, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Build in debug mode rather than release
    #[arg(long)]
    pub debug: bool,
}

const SCRIPT: &str = r#"
echo "== inside a warren container =="
echo "id:       $(id)"
echo "hostname: $(hostname)"
echo "uid_map:  $(cat /proc/self/uid_map)"
echo "caps:     $(grep CapEff /proc/self/status)"
echo "pid 1:    $(cat /proc/1/comm)"
mount -t tmpfs scratch /mnt && echo "mount:    tmpfs on /mnt works as container root" && umount /mnt
mount -t proc proc /mnt && echo "proc:     a new proc on /mnt, emulated by warren-interceptor"
echo "masked:   /mnt/keys holds $(wc -c < /mnt/keys) bytes, /mnt/timer_list $(wc -c < /mnt/timer_list) (masked as on /proc)"
umount /proc 2>/dev/null || echo "guarded:  umount /proc is refused"
umount /mnt
"#;

pub fn run(args: &Args) -> Result<()> {
    crate::deps::run(&crate::deps::Args { minimal: true })?;
    let bins = build_bins(!args.debug)?;
    let warren = bins.join("warren-runc");

    let demo = target_dir().join("demo");
    let rootfs = warren_tests::fixtures::busybox_rootfs(&demo.join("rootfs"))?;
    let bundle = demo.join("bundle");
    warren_tests::fixtures::bundle(&warren, &bundle, &rootfs, &["sh", "-c", SCRIPT], |_| {});

    let id = format!("warren-demo-{}", std::process::id());
    eprintln!(
        "xtask: {} run --bundle {} {id}",
        warren.display(),
        bundle.display()
    );
    let status = Command::new(&warren)
        .args(["run", "--bundle", path_str(&bundle)?, &id])
        .status()?;
    if let Ok(text) = scrape_metrics() {
        eprintln!("xtask: warren-interceptor metrics (http://127.0.0.1:9464/metrics):");
        for line in text
            .lines()
            .filter(|l| l.starts_with("warren_") && !l.contains("_bucket"))
        {
            eprintln!("  {line}");
        }
    }
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if let Some(entry) = subuid.lines().find(|l| l.starts_with("warren:")) {
        eprintln!("xtask: on the host the container ran as a range of {entry} (/etc/subuid)");
    }
    if !status.success() {
        // Leave nothing behind on failure either.
        let _ = Command::new(&warren)
            .args(["delete", "--force", &id])
            .status();
        bail!("the demo container failed: {status}");
    }
    Ok(())
}

fn scrape_metrics() -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect("127.0.0.1:9464")?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}
