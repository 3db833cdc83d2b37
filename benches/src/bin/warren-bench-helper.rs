//! The program warren-bench runs inside containers (and on the host).
//! Built statically, so that it runs in the busybox rootfs. Each mode
//! times its own calls and prints the figures, so that container start-up
//! never counts.
//!
//! - `getppid N`: N getppid calls; prints nanoseconds per call.
//! - `trapped N`: N umount2 calls on an absent path, each one a trapped
//!   call the interceptor answers at once (ENOENT); prints each call's
//!   nanoseconds, one per line.
//! - `proc-cycle N`: N pairs of `mount -t proc` on /mnt and `umount /mnt`,
//!   both emulated by the interceptor; prints each pair's nanoseconds.
//! - `hammer GO_PATH DURATION_MS`: waits until GO_PATH exists (the bench
//!   creates it once every container is up), then repeats the trapped call
//!   for DURATION_MS; prints the count.

use std::process::ExitCode;
use std::time::Instant;

const ABSENT: &std::ffi::CStr = c"/warren-bench-absent";

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// One trapped umount2; anything but ENOENT means the bench measures the
/// wrong thing.
fn trapped_call() -> Result<(), String> {
    // SAFETY: ABSENT is a NUL-terminated static string.
    let rc = unsafe { libc::umount2(ABSENT.as_ptr(), 0) };
    match (rc, errno()) {
        (-1, libc::ENOENT) => Ok(()),
        (rc, e) => Err(format!("umount2 of an absent path: rc {rc}, errno {e}")),
    }
}

fn proc_cycle() -> Result<(), String> {
    // SAFETY: all strings are NUL-terminated statics; data is NULL.
    let rc = unsafe {
        libc::mount(
            c"proc".as_ptr(),
            c"/mnt".as_ptr(),
            c"proc".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!("mount -t proc /mnt: errno {}", errno()));
    }
    // SAFETY: a NUL-terminated static path.
    if unsafe { libc::umount2(c"/mnt".as_ptr(), 0) } != 0 {
        return Err(format!("umount /mnt: errno {}", errno()));
    }
    Ok(())
}

fn per_call(n: u64, f: fn() -> Result<(), String>) -> Result<(), String> {
    let mut out = String::with_capacity(n as usize * 8);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        out.push_str(&t.elapsed().as_nanos().to_string());
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let num = |i: usize| -> Result<u64, String> {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("argument {i} must be a number"))
    };
    match args.first().map(String::as_str) {
        Some("getppid") => {
            let n = num(1)?;
            let t = Instant::now();
            for _ in 0..n {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            println!("{:.3}", t.elapsed().as_nanos() as f64 / n.max(1) as f64);
            Ok(())
        }
        Some("trapped") => per_call(num(1)?, trapped_call),
        Some("proc-cycle") => per_call(num(1)?, proc_cycle),
        Some("hammer") => {
            let go = args.get(1).ok_or("hammer needs GO_PATH")?;
            let duration = std::time::Duration::from_millis(num(2)?);
            while !std::path::Path::new(go).exists() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let start = Instant::now();
            let mut count = 0u64;
            while start.elapsed() < duration {
                trapped_call()?;
                count += 1;
            }
            println!("{count}");
            Ok(())
        }
        _ => Err(
            "usage: warren-bench-helper getppid|trapped|proc-cycle N | hammer GO_PATH MS".into(),
        ),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-bench-helper: {e}");
            ExitCode::from(1)
        }
    }
}
