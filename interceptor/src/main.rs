//! warren-interceptor: wires the socket server, the metrics endpoint and
//! signals together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use warren_interceptor::container::Registry;
use warren_interceptor::metrics::{self, Metrics};
use warren_interceptor::server::{self, Daemon};

#[derive(Parser, Debug)]
#[command(name = "warren-interceptor", version, about)]
struct Args {
    /// The listenerPath socket that runtimes send notify fds to
    #[arg(long, default_value = "/run/warren/interceptor.sock")]
    socket: PathBuf,
    /// Where to serve Prometheus metrics
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Do not serve metrics
    #[arg(long)]
    no_metrics: bool,
    /// Load the eBPF probes from this object instead of the embedded one
    #[arg(long, value_name = "PATH")]
    ebpf_object: Option<PathBuf>,
    /// Do not load the eBPF probes (no per-container syscall counts)
    #[arg(long, conflicts_with = "ebpf_object")]
    no_ebpf: bool,
    /// Log at debug level
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("helper") {
        return warren_interceptor::nsexec::helper_main();
    }
    // Whatever the starter left open (a shell's pipes, a runtime's fds) is
    // not the daemon's to pass on: nothing it starts inherits it.
    // SAFETY: close_range with the CLOEXEC flag only marks fds; nothing
    // else runs yet.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(if args.debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "exiting");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    use anyhow::Context;
    let registry = Arc::new(Registry::default());
    let mut metrics = Metrics::new();
    let loaded = if args.no_ebpf {
        Err("--no-ebpf was given".to_owned())
    } else {
        warren_interceptor::ebpf::Probes::load(args.ebpf_object.as_deref())
    };
    let probes = match loaded {
        Ok(p) => {
            let stale = warren_interceptor::cgroup2::remove_stale();
            tracing::info!(stale_tracking_cgroups_removed = stale, "eBPF probes loaded");
            metrics.ebpf_enabled.set(1);
            let p = Arc::new(p);
            metrics.register_collector(Box::new(metrics::ProbeCounts {
                registry: registry.clone(),
                probes: p.clone(),
            }));
            Some(p)
        }
        Err(reason) => {
            tracing::warn!(%reason, "eBPF accounting is off");
            metrics.ebpf_enabled.set(0);
            None
        }
    };
    let metrics = Arc::new(metrics);
    let daemon = Arc::new(Daemon {
        registry,
        metrics: metrics.clone(),
        probes,
    });
    let listener = server::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    let mut tasks = tokio::task::JoinSet::new();
    if !args.no_metrics {
        let tcp = tokio::net::TcpListener::bind(args.metrics_addr)
            .await
            .with_context(|| format!("cannot serve metrics on {}", args.metrics_addr))?;
        tasks.spawn(metrics::serve(metrics, tcp));
    }
    tasks.spawn(server::serve(daemon, listener));
    tracing::info!(socket = %args.socket.display(), "ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("terminated"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        Some(r) = tasks.join_next() => {
            r.context("a task panicked")?.context("a task failed")?;
        }
    }
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
