//! warren-bench: warren against crun and runc, and against the bare
//! seccomp round trip, in one run. Written to target/bench/report.md and
//! report.json; `cargo xtask bench` builds everything and runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use warren_benches::floor::{self, Wait};
use warren_benches::node;
use warren_benches::report::{self, Section};
use warren_benches::summarize;
use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::Runtime;
use warren_tests::{target_dir, unique};

#[derive(Parser)]
#[command(name = "warren-bench")]
struct Args {
    /// Lifecycle iterations per runtime; other sections scale from it
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Run only these sections (lifecycle, getppid, notify, scale)
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The static helper placed in the containers
    #[arg(long, env = "WARREN_BENCH_HELPER")]
    helper: PathBuf,
}

struct Ctx {
    out: PathBuf,
    rootfs: PathBuf,
    warren: Runtime,
    crun: Runtime,
    runc: Runtime,
    helper: PathBuf,
    iterations: usize,
}

/// How a bundle is set up for each runtime.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Syscont,
    Plain,
    /// crun and runc, given the same user-namespace mapping warren uses.
    Peer,
}

impl Ctx {
    /// A bundle for `kind` running `args`, with the helper at /opt and
    /// `extra` bind mounts (destination, source).
    fn bundle(&self, kind: Kind, args: &[&str], extra: &[(&str, &Path)]) -> PathBuf {
        let dir = self.out.join("bundles").join(unique("b"));
        let helper_dir = self.helper.parent().map(Path::to_path_buf);
        bundle(&self.warren.bin, &dir, &self.rootfs, args, |s| {
            let mut mounts = vec![];
            if let Some(d) = &helper_dir {
                mounts.push((String::from("/opt"), d.clone()));
            }
            for (dst, src) in extra {
                mounts.push((dst.to_string(), src.to_path_buf()));
            }
            for (dst, src) in mounts {
                if let Some(m) = s["mounts"].as_array_mut() {
                    m.push(json!({"destination": dst, "type": "bind", "source": src,
                                  "options": ["rbind", "ro"]}));
                }
            }
            match kind {
                Kind::Syscont => {}
                Kind::Plain => s["annotations"] = json!({"io.warren.syscont": "false"}),
                Kind::Peer => peer_userns(s),
            }
        })
    }
}

fn peer_userns(spec: &mut serde_json::Value) {
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.push(json!({"type": "user"}));
    }
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4_000_000, "size": 65536}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 4_000_000, "size": 65536}]);
}

/// `run` of a bundle to completion; returns the container's stdout.
fn run_capture(rt: &Runtime, bundle: &Path) -> Result<String> {
    let id = unique("bench");
    let out = rt
        .command()
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .context("run")?;
    if !out.status.success() {
        let _ = rt.command().args(["delete", "--force", &id]).output();
        bail!(
            "{} run failed ({}): {}",
            rt.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One `run` (create, start, wait, delete) of a bundle, in seconds.
fn lifecycle(rt: &Runtime, bundle: &Path) -> Result<f64> {
    let start = Instant::now();
    run_capture(rt, bundle)?;
    Ok(start.elapsed().as_secs_f64())
}

fn numbers(text: &str) -> Result<Vec<f64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<f64>()
                .with_context(|| format!("not a number: {l:?}"))
        })
        .collect()
}

fn section_lifecycle(ctx: &Ctx) -> Result<Vec<Section>> {
    let sides = [
        ("warren, system container", &ctx.warren, Kind::Syscont),
        ("warren, io.warren.syscont=false", &ctx.warren, Kind::Plain),
        ("crun", &ctx.crun, Kind::Peer),
        ("runc", &ctx.runc, Kind::Peer),
    ];
    let bundles: Vec<PathBuf> = sides
        .iter()
        .map(|(_, _, k)| ctx.bundle(*k, &["/bin/true"], &[]))
        .collect();
    for ((_, rt, _), b) in sides.iter().zip(&bundles) {
        lifecycle(rt, b)?;
    }
    let mut samples = vec![Vec::new(); sides.len()];
    for _ in 0..ctx.iterations {
        for (i, ((_, rt, _), b)) in sides.iter().zip(&bundles).enumerate() {
            samples[i].push(lifecycle(rt, b)?);
        }
    }
    let mut warm = Section::new(
        "Container lifecycle",
        "ms",
        1e3,
        "`run` of /bin/true in a busybox bundle: create, start, wait, delete. crun and runc get \
         the same user-namespace mapping warren uses.",
    );
    for ((name, _, _), s) in sides.iter().zip(&samples) {
        warm.row(name, summarize(s));
    }
    for (name, _, _) in &sides {
        warm.compare(name, "crun");
    }
    warm.target(
        "warren system container median / crun",
        warm.median(sides[0].0)
            .zip(warm.median("crun"))
            .map(|(w, c)| w / c),
        1.0,
    );

    // The first container after the node starts: no interceptor running,
    // so warren-runc spawns it.
    let cold_n = (ctx.iterations / 10).clamp(5, 20);
    let mut cold = Vec::new();
    let mut crun = Vec::new();
    for _ in 0..cold_n {
        node::stop_interceptor()?;
        cold.push(lifecycle(&ctx.warren, &bundles[0])?);
        crun.push(lifecycle(&ctx.crun, &bundles[2])?);
    }
    let mut first = Section::new(
        "First container after the node starts",
        "ms",
        1e3,
        "The interceptor is stopped before each warren sample, so warren-runc starts it (and it \
         loads its probes) on the way. crun has no daemon; its figure is a warm run.",
    );
    first.row(
        "warren, system container, interceptor spawned",
        summarize(&cold),
    );
    first.row("crun", summarize(&crun));
    first.compare("warren, system container, interceptor spawned", "crun");
    Ok(vec![warm, first])
}

fn section_getppid(ctx: &Ctx) -> Result<Vec<Section>> {
    const CALLS: &str = "10000000";
    let rounds = (ctx.iterations / 20).clamp(3, 10);
    let log = ctx.out.join("interceptor.log");
    let warren_b = ctx.bundle(
        Kind::Syscont,
        &["/opt/warren-bench-helper", "getppid", CALLS],
        &[],
    );
    let crun_b = ctx.bundle(
        Kind::Peer,
        &["/opt/warren-bench-helper", "getppid", CALLS],
        &[],
    );
    let host = || -> Result<f64> {
        let out = Command::new(&ctx.helper)
            .args(["getppid", CALLS])
            .output()
            .context("run the helper on the host")?;
        if !out.status.success() {
            bail!(
                "helper on the host failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(numbers(&String::from_utf8_lossy(&out.stdout))?[0])
    };
    let inside = |rt: &Runtime, b: &Path| -> Result<f64> {
        numbers(&run_capture(rt, b)?)?
            .first()
            .copied()
            .context("the helper printed nothing")
    };
    let names = [
        "host, no probes",
        "host, probes loaded",
        "crun, no probes",
        "warren, probes on",
        "warren, probes off",
    ];
    let mut s: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for _ in 0..rounds {
        node::stop_interceptor()?;
        s[2].push(inside(&ctx.crun, &crun_b)?);
        s[0].push(host()?);
        node::start_interceptor(true, &log)?;
        s[3].push(inside(&ctx.warren, &warren_b)?);
        s[1].push(host()?);
        node::start_interceptor(false, &log)?;
        s[4].push(inside(&ctx.warren, &warren_b)?);
    }
    node::start_interceptor(true, &log)?;
    let mut sec = Section::new(
        "Syscalls that are not intercepted",
        "ns per call",
        1.0,
        "10^7 getppid calls in a loop, timed by the static helper itself; one sample per run. \
         \"probes\" are warren's eBPF probes, loaded by the interceptor.",
    );
    for (n, v) in names.iter().zip(&s) {
        sec.row(n, summarize(v));
    }
    sec.compare("host, probes loaded", "host, no probes");
    sec.compare("warren, probes on", "crun, no probes");
    sec.compare("warren, probes off", "crun, no probes");
    sec.target(
        "getppid in warren with probes on / crun",
        sec.rows
            .iter()
            .find(|r| r.name == "warren, probes on")
            .and_then(|r| r.ratio),
        1.02,
    );
    Ok(vec![sec])
}

fn section_notify(ctx: &Ctx) -> Result<Vec<Section>> {
    let rounds = (ctx.iterations / 10).clamp(3, 20);
    let trapped_b = ctx.bundle(
        Kind::Syscont,
        &["/opt/warren-bench-helper", "trapped", "500"],
        &[],
    );
    let proc_b = ctx.bundle(
        Kind::Syscont,
        &["/opt/warren-bench-helper", "proc-cycle", "100"],
        &[],
    );
    let floors = [
        (Wait::Blocking, true, 1000),
        (Wait::Poll, true, 1000),
        (Wait::Epoll, true, 1000),
        (Wait::Blocking, false, 100),
        (Wait::Poll, false, 100),
        (Wait::Epoll, false, 100),
    ];
    let floor_name = |w: Wait, sync: bool| {
        format!(
            "floor: {}, {}",
            w.name(),
            if sync {
                "SYNC_WAKE_UP"
            } else {
                "no SYNC_WAKE_UP"
            }
        )
    };
    let mut fs: Vec<Vec<f64>> = vec![Vec::new(); floors.len()];
    let mut trapped = Vec::new();
    let mut procs = Vec::new();
    for _ in 0..rounds {
        for (i, (w, sync, n)) in floors.iter().enumerate() {
            fs[i].extend(floor::round_trips(*w, *sync, *n)?);
        }
        trapped.extend(numbers(&run_capture(&ctx.warren, &trapped_b)?)?);
        procs.extend(numbers(&run_capture(&ctx.warren, &proc_b)?)?);
    }
    let mut sec = Section::new(
        "Intercepted syscalls",
        "µs per call",
        1e-3,
        "Each call timed by its caller. The floor is a bare seccomp-notify round trip on this \
         kernel: a supervisor thread that answers getppid at once. warren-interceptor waits \
         with poll + RECV and sets SYNC_WAKE_UP. \"trapped\" is a umount2 of an absent path, \
         which the interceptor copies, pins, resolves in the container's root and answers \
         ENOENT. \"mount+umount\" is one emulated `mount -t proc` plus its `umount`: two calls.",
    );
    let trapped_name = "warren: trapped call, answered at once";
    let pair_name = "warren: emulated mount -t proc + umount (pair)";
    for ((w, sync, _), v) in floors.iter().zip(&fs) {
        sec.row(&floor_name(*w, *sync), summarize(v));
    }
    sec.row(trapped_name, summarize(&trapped));
    sec.row(pair_name, summarize(&procs));
    let floor_ref = floor_name(Wait::Blocking, true);
    sec.compare(trapped_name, &floor_ref);
    sec.compare(pair_name, &floor_ref);
    sec.compare(&floor_name(Wait::Poll, true), &floor_ref);
    sec.compare(&floor_name(Wait::Epoll, true), &floor_ref);
    sec.target(
        "trapped call / floor (blocking RECV, SYNC_WAKE_UP)",
        sec.rows
            .iter()
            .find(|r| r.name == trapped_name)
            .and_then(|r| r.ratio),
        1.5,
    );
    Ok(vec![sec])
}

/// Runs `jobs` with `width` workers; returns the wall time.
fn parallel(width: usize, jobs: usize, job: impl Fn(usize) -> Result<()> + Sync) -> Result<f64> {
    let next = AtomicUsize::new(0);
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..width {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    if let Err(e) = job(i) {
                        *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok(start.elapsed().as_secs_f64())
}

fn run_detached(rt: &Runtime, bundle: &Path, id: &str, stdout: &Path) -> Result<()> {
    let out_file = std::fs::File::create(stdout)?;
    let status = rt
        .command()
        .args(["run", "--detach", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(Stdio::null())
        .status()
        .context("run --detach")?;
    if !status.success() {
        let _ = rt.command().args(["delete", "--force", id]).output();
        bail!("{} run --detach {id} failed: {status}", rt.name);
    }
    Ok(())
}

fn delete_all(rt: &Runtime, ids: &[String]) -> Result<()> {
    parallel(4, ids.len(), |i| {
        let st = rt
            .command()
            .args(["delete", "--force", &ids[i]])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("delete {} failed", ids[i]);
        }
        Ok(())
    })?;
    Ok(())
}

fn wait_stopped(rt: &Runtime, id: &str, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    loop {
        let out = rt.command().args(["state", id]).output()?;
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if st["status"] == "stopped" {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("{id} did not stop within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn throughput(ctx: &Ctx, n: usize) -> Result<f64> {
    const MS: u64 = 2000;
    let dir = ctx.out.join("go").join(unique("t"));
    std::fs::create_dir_all(&dir)?;
    let b = ctx.bundle(
        Kind::Syscont,
        &[
            "/opt/warren-bench-helper",
            "hammer",
            "/mnt/go",
            &MS.to_string(),
        ],
        &[("/mnt", &dir)],
    );
    let ids: Vec<String> = (0..n).map(|_| unique("hammer")).collect();
    let outs: Vec<PathBuf> = ids.iter().map(|id| dir.with_extension(id)).collect();
    let started = parallel(4, n, |i| run_detached(&ctx.warren, &b, &ids[i], &outs[i]));
    let result = started.and_then(|_| {
        std::fs::write(dir.join("go"), "")?;
        std::thread::sleep(Duration::from_millis(MS));
        let mut total = 0.0;
        for (id, out) in ids.iter().zip(&outs) {
            wait_stopped(&ctx.warren, id, Duration::from_secs(60))?;
            let text = std::fs::read_to_string(out)?;
            total += numbers(&text)?
                .first()
                .copied()
                .context("hammer printed nothing")?;
        }
        Ok(total / (MS as f64 / 1000.0))
    });
    delete_all(&ctx.warren, &ids)?;
    for o in &outs {
        let _ = std::fs::remove_file(o);
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn section_scale(ctx: &Ctx) -> Result<Vec<Section>> {
    let reps = (ctx.iterations / 30).clamp(1, 5);
    let log = ctx.out.join("interceptor.log");
    node::start_interceptor(true, &log)?;

    let mut tp = Section::new(
        "Notification throughput",
        "calls per second",
        1.0,
        "N warren containers each repeat the trapped call for 2 s, all at once; the figure is \
         the sum over containers.",
    );
    for n in [1, 2, 8, 32] {
        let samples: Vec<f64> = (0..reps)
            .map(|_| throughput(ctx, n))
            .collect::<Result<_>>()?;
        tp.row(&format!("{n} containers"), summarize(&samples));
    }
    for n in [2, 8, 32] {
        tp.compare(&format!("{n} containers"), "1 containers");
    }

    // The interceptor's resources with idle registered containers.
    let pid = node::start_interceptor(true, &log)?;
    let idle_b = ctx.bundle(Kind::Syscont, &["/bin/sleep", "1000000"], &[]);
    let mut ids: Vec<String> = Vec::new();
    let mut rss = Section::new(
        "Interceptor memory",
        "MiB",
        1.0 / 1024.0,
        "Resident memory of warren-interceptor with N idle registered system containers \
         (each runs `sleep`).",
    );
    let mut cpu = Section::new(
        "Interceptor CPU when idle",
        "% of one CPU",
        100.0,
        "CPU time of warren-interceptor over 5 s with N idle registered containers.",
    );
    let io_dir = ctx.out.join("idle-io");
    std::fs::create_dir_all(&io_dir)?;
    let measure = |ids: &[String], rss: &mut Section, cpu: &mut Section| -> Result<f64> {
        std::thread::sleep(Duration::from_secs(1));
        let c0 = node::cpu_seconds(pid)?;
        std::thread::sleep(Duration::from_secs(5));
        let c1 = node::cpu_seconds(pid)?;
        let kib = node::rss_kib(pid)? as f64;
        let name = format!("{} containers", ids.len());
        rss.row(&name, summarize(&[kib]));
        cpu.row(&name, summarize(&[(c1 - c0) / 5.0]));
        Ok(kib)
    };
    let grow = |ids: &mut Vec<String>, to: usize| -> Result<()> {
        let new: Vec<String> = (ids.len()..to).map(|_| unique("idle")).collect();
        let r = parallel(4, new.len(), |i| {
            run_detached(&ctx.warren, &idle_b, &new[i], &io_dir.join(&new[i]))
        });
        ids.extend(new);
        r.map(|_| ())
    };
    let result = (|| -> Result<()> {
        let r0 = measure(&ids, &mut rss, &mut cpu)?;
        grow(&mut ids, 100)?;
        measure(&ids, &mut rss, &mut cpu)?;
        grow(&mut ids, 500)?;
        let r500 = measure(&ids, &mut rss, &mut cpu)?;
        rss.target("RSS with no containers (MB)", Some(r0 * 1024.0 / 1e6), 15.0);
        rss.target(
            "RSS per registered container (KB)",
            Some((r500 - r0) * 1024.0 / 1e3 / 500.0),
            64.0,
        );
        Ok(())
    })();
    delete_all(&ctx.warren, &ids)?;
    let _ = std::fs::remove_dir_all(&io_dir);
    result?;

    // 100 containers, 4 at a time.
    let mut par = Section::new(
        "Parallel starts",
        "s",
        1.0,
        "Wall time of 100 `run`s of /bin/true, 4 at a time.",
    );
    let sides = [
        ("warren, system container", &ctx.warren, Kind::Syscont),
        ("crun", &ctx.crun, Kind::Peer),
    ];
    let bundles: Vec<PathBuf> = sides
        .iter()
        .map(|(_, _, k)| ctx.bundle(*k, &["/bin/true"], &[]))
        .collect();
    let mut samples = vec![Vec::new(); sides.len()];
    for _ in 0..reps {
        for (i, ((_, rt, _), b)) in sides.iter().zip(&bundles).enumerate() {
            samples[i].push(parallel(4, 100, |_| run_capture(rt, b).map(|_| ()))?);
        }
    }
    for ((name, _, _), s) in sides.iter().zip(&samples) {
        par.row(name, summarize(s));
    }
    par.compare(sides[0].0, "crun");
    Ok(vec![tp, rss, cpu, par])
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.helper.exists() {
        bail!(
            "{} is missing: cargo xtask bench builds it",
            args.helper.display()
        );
    }
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    let ctx = Ctx {
        rootfs: shared_busybox(),
        warren: Runtime::warren_private(&node::settings()),
        crun: Runtime::peer("crun"),
        runc: Runtime::peer("runc"),
        helper: args.helper.clone(),
        iterations: args.iterations,
        out: out.clone(),
    };
    type SectionFn = fn(&Ctx) -> Result<Vec<Section>>;
    let all: [(&str, SectionFn); 4] = [
        ("lifecycle", section_lifecycle),
        ("getppid", section_getppid),
        ("notify", section_notify),
        ("scale", section_scale),
    ];
    for o in &args.only {
        if !all.iter().any(|(n, _)| n == o) {
            bail!("unknown section {o:?}: choose from lifecycle, getppid, notify, scale");
        }
    }
    // This build's interceptor, with its probes, as warren-runc would start it.
    node::start_interceptor(true, &out.join("interceptor.log"))?;
    let mut sections = Vec::new();
    for (name, f) in all {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        eprintln!("warren-bench: {name}");
        sections.extend(f(&ctx).with_context(|| format!("section {name}"))?);
        // Written after each section, so that a failure keeps what ran.
        std::fs::write(out.join("report.md"), report::markdown(&sections))?;
        std::fs::write(
            out.join("report.json"),
            serde_json::to_vec_pretty(&json!({ "sections": sections }))?,
        )?;
    }
    let _ = std::fs::remove_dir_all(out.join("bundles"));
    print!("{}", report::markdown(&sections));
    Ok(())
}
