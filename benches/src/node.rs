//! The bench's own warren-interceptor: start it with or without probes on
//! the bench's socket, stop it, and read its metrics and resources.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The bench's own interceptor: its socket and metrics port, never the
/// node's (a production interceptor serves every running container there).
pub fn socket() -> &'static Path {
    static SOCKET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SOCKET.get_or_init(|| {
        PathBuf::from(format!(
            "/run/warren-bench/{}/interceptor.sock",
            std::process::id()
        ))
    })
}
pub const METRICS: &str = "127.0.0.1:9474";

/// The node settings the bench's warren-runc runs with: its own interceptor.
pub fn settings() -> String {
    format!(
        "interceptor-socket = \"{}\"\ninterceptor-metrics = \"{METRICS}\"\ninterceptor-log = \"{}\"",
        socket().display(),
        socket().with_extension("log").display()
    )
}

pub fn interceptor_bin() -> PathBuf {
    warren_tests::runtime::bin_dir().join("warren-interceptor")
}

/// Stops the interceptor on the bench's own socket, if one runs, and waits
/// until it is gone. Found by its socket, never by its name.
pub fn stop_interceptor() -> Result<()> {
    let Some(pid) = warren_tests::try_listener_of(socket()) else {
        let _ = std::fs::remove_file(socket());
        return Ok(());
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("the bench's interceptor did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(socket());
    Ok(())
}

/// Whether `pid` still runs. One this bench started is its child: once it
/// exits it is reaped here.
fn alive(pid: i32) -> bool {
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Starts the interceptor as warren-runc would, optionally without probes,
/// and waits until its socket answers. Returns its pid.
pub fn start_interceptor(probes: bool, log: &Path) -> Result<i32> {
    stop_interceptor()?;
    if let Some(dir) = socket().parent() {
        std::fs::create_dir_all(dir).context("create the bench's socket dir")?;
    }
    let mut cmd = Command::new(interceptor_bin());
    cmd.arg("--socket")
        .arg(socket())
        .args(["--metrics-addr", METRICS]);
    if !probes {
        cmd.arg("--no-ebpf");
    }
    let log = std::fs::File::create(log).context("create interceptor log")?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn().context("spawn warren-interceptor")?;
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket()).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the interceptor did not answer on {} within 10 s",
                socket().display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if ebpf_enabled()? != probes {
        bail!("the interceptor's warren_ebpf_enabled does not say probes={probes}");
    }
    // The child is reaped by init once the bench exits; it is a daemon.
    std::mem::forget(child);
    Ok(pid)
}

/// The text of the metrics endpoint.
pub fn metrics_text() -> Result<String> {
    let mut s = std::net::TcpStream::connect(METRICS).context("connect to the metrics port")?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

pub fn ebpf_enabled() -> Result<bool> {
    let text = metrics_text()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("warren_ebpf_enabled "))
        .context("no warren_ebpf_enabled in the metrics")?;
    Ok(line.trim_end().ends_with(" 1"))
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// User plus system CPU time of a process, in seconds.
pub fn cpu_seconds(pid: i32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .context("malformed stat")
    };
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(14)? + ticks(15)?) / hz)
}
