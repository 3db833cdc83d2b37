//! Accepts listenerPath connections and starts a receive loop per fd.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use crate::container::{Container, Registry};
use crate::handshake;
use crate::metrics::Metrics;
use crate::supervise;

/// Shared state of the daemon.
pub struct Daemon {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// The eBPF probes, when they loaded.
    pub probes: Option<Arc<crate::ebpf::Probes>>,
}

/// Starts counting a container's processes in the probes.
fn track(daemon: &Daemon, container: &Container, pid: i32, first: bool) {
    let Some(probes) = &daemon.probes else { return };
    let mut slot = container.tracking.lock().unwrap_or_else(|p| p.into_inner());
    if let (false, Some(t)) = (first, slot.as_ref()) {
        crate::cgroup2::add(t, pid);
        return;
    }
    match crate::cgroup2::track(&container.id, pid) {
        Ok(t) => {
            if let Err(e) = probes.track(t.id, t.level) {
                tracing::warn!(container_id = %container.id, pid, error = %e, "cannot track the container in the probes");
            }
            *slot = Some(t);
        }
        Err(e) => {
            tracing::warn!(container_id = %container.id, pid, error = %e, "no cgroup v2 to track the container in")
        }
    }
}

fn untrack(daemon: &Daemon, container: &Container) {
    let slot = container.tracking.lock().unwrap_or_else(|p| p.into_inner());
    if let (Some(probes), Some(t)) = (&daemon.probes, slot.as_ref()) {
        probes.untrack(t.id);
        crate::cgroup2::remove(t);
    }
}

/// Binds the socket, replacing a stale one, readable by root only.
pub fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// A question from warren-runc: has container `id` finished registering?
/// create waits for it, so that counting starts before the container's
/// process runs.
#[derive(serde::Deserialize)]
struct Query {
    registered: String,
    /// The bundle the container registered with; ids are unique per state
    /// root only, and the bundle warren-runc passes lies under it.
    bundle: std::path::PathBuf,
}

/// What records are keyed by: the container's bundle and id, never the id
/// alone (two state roots may each have a container of one id).
fn key(bundle: &std::path::Path, id: &str) -> String {
    // Runtimes may name the bundle through a symlink (/var/run): compare
    // real paths.
    let real = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    format!("{}\n{id}", real.display())
}

fn answer(daemon: &Daemon, mut conn: std::os::unix::net::UnixStream, q: &Query) {
    use std::io::Write;
    let ready = daemon
        .registry
        .get(&key(&q.bundle, &q.registered))
        .is_some_and(|c| c.ready.load(std::sync::atomic::Ordering::Acquire));
    let _ = conn.write_all(if ready { b"1" } else { b"0" });
}

/// Handles one connection: a handshake, then a std thread for the fd.
fn handle(daemon: &Arc<Daemon>, conn: std::os::unix::net::UnixStream) {
    let reg = match handshake::receive(conn.as_raw_fd()) {
        // A probe (warren-runc checking that the interceptor answers).
        Ok((bytes, fds)) if bytes.is_empty() && fds.is_empty() => return,
        Ok((bytes, fds)) if fds.is_empty() && serde_json::from_slice::<Query>(&bytes).is_ok() => {
            if let Ok(q) = serde_json::from_slice::<Query>(&bytes) {
                answer(daemon, conn, &q);
            }
            return;
        }
        Ok((bytes, fds)) => handshake::decode(&bytes, fds),
        Err(e) => Err(e),
    };
    let reg = match reg {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "refused a registration");
            return;
        }
    };
    let key = key(&reg.bundle, &reg.id);
    let (container, first) = match daemon
        .registry
        .attach(&key, || Container::new(&reg.id, reg.pid, &reg.bundle))
    {
        Ok(c) => c,
        Err(e) => {
            let mut chain = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                chain.push_str(": ");
                chain.push_str(&c.to_string());
                cause = c.source();
            }
            tracing::warn!(container_id = %reg.id, pid = reg.pid, error = %chain, "cannot register");
            return;
        }
    };
    if first {
        daemon.metrics.containers.inc();
    }
    track(daemon, &container, reg.pid, first);
    container
        .ready
        .store(true, std::sync::atomic::Ordering::Release);
    tracing::info!(container_id = %reg.id, pid = reg.pid, status = %reg.status, "registered");
    let daemon = daemon.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("notify-{}", reg.pid))
        .spawn(move || {
            let id = container.id.clone();
            supervise::run(reg.fd, container.clone(), daemon.metrics.clone());
            if daemon.registry.detach(&key) {
                untrack(&daemon, &container);
                daemon.metrics.containers.dec();
                tracing::info!(container_id = %id, "container gone");
            }
        });
    match spawned {
        // warren-runc waits for this byte before an exec'd process runs
        // (runtimes that do not wait have closed the socket: that is fine).
        Ok(_) => {
            use std::io::Write;
            let _ = (&conn).write_all(b"1");
        }
        Err(e) => tracing::error!(error = %e, "cannot start a receive thread"),
    }
}

/// Accepts connections forever.
pub async fn serve(
    daemon: Arc<Daemon>,
    listener: std::os::unix::net::UnixListener,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    loop {
        let (conn, _) = listener.accept().await?;
        let daemon = daemon.clone();
        let conn = conn.into_std()?;
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        tokio::task::spawn_blocking(move || handle(&daemon, conn));
    }
}
