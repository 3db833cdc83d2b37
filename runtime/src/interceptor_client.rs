//! Finding the node's interceptor, and starting it when nothing answers.

use std::fs::File;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::settings::Settings;

/// How long a started interceptor has to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InterceptorError {
    #[error("warren-interceptor is not installed next to warren-runc ({0})")]
    Missing(PathBuf),
    #[error("cannot start warren-interceptor")]
    Spawn(#[source] std::io::Error),
    #[error("warren-interceptor exited ({status}) before it was ready; see {log}")]
    Exited { status: String, log: PathBuf },
    #[error("warren-interceptor did not answer on {socket} within {secs} s; see {log}")]
    Timeout {
        socket: PathBuf,
        secs: u64,
        log: PathBuf,
    },
    #[error("warren-interceptor did not register container {id}; see {log}")]
    NotRegistered { id: String, log: PathBuf },
    #[error("cannot prepare {path} for warren-interceptor")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn answers(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InterceptorError + '_ {
    move |source| InterceptorError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The interceptor binary: beside this executable, found through
/// /proc/self/exe, never through PATH or a relative path.
fn binary() -> Result<PathBuf, InterceptorError> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(io(Path::new("/proc/self/exe")))?;
    let bin = exe
        .parent()
        .map(|d| d.join("warren-interceptor"))
        .unwrap_or_default();
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(InterceptorError::Missing(bin))
    }
}

/// Makes sure an interceptor answers on the configured socket, starting one
/// (detached, in its own session) if none does. Concurrent callers start
/// exactly one: the start is serialised by a lock file beside the socket.
pub fn ensure(settings: &Settings) -> Result<(), InterceptorError> {
    let socket = &settings.interceptor_socket;
    if answers(socket) {
        return Ok(());
    }
    let dir = socket.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock_path = socket.with_extension("lock");
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io(&lock_path)(e.into()))?;
    if answers(socket) {
        return Ok(());
    }
    let bin = binary()?;
    let log_path = &settings.interceptor_log;
    if let Some(d) = log_path.parent() {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io(log_path))?;
    let log2 = log.try_clone().map_err(io(log_path))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("--socket").arg(socket);
    if settings.interceptor_metrics == "off" {
        cmd.arg("--no-metrics");
    } else {
        cmd.arg("--metrics-addr").arg(&settings.interceptor_metrics);
    }
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(InterceptorError::Spawn)?;
    tracing::info!(bin = %bin.display(), socket = %socket.display(), pid = child.id(), "started warren-interceptor");
    let end = Instant::now() + READY_TIMEOUT;
    loop {
        if answers(socket) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(InterceptorError::Exited {
                status: status.to_string(),
                log: log_path.clone(),
            });
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(InterceptorError::Timeout {
                socket: socket.clone(),
                secs: READY_TIMEOUT.as_secs(),
                log: log_path.clone(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits, briefly, until the interceptor has registered container `id`
/// of the prepared bundle `bundle` (its handshake is sent during create but
/// handled asynchronously).
/// Returns whether it did.
pub fn wait_registered(settings: &Settings, id: &str, bundle: &Path) -> bool {
    use std::io::{Read, Write};
    let query = serde_json::json!({ "registered": id, "bundle": bundle }).to_string();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(mut conn) = UnixStream::connect(&settings.interceptor_socket) {
            let mut answer = [0u8; 1];
            if conn.write_all(query.as_bytes()).is_ok()
                && conn.shutdown(std::net::Shutdown::Write).is_ok()
                && conn.read_exact(&mut answer).is_ok()
                && answer[0] == b'1'
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}
