//! warren-bench: container lifecycle under warren (system container and
//! plain), crun and runc, interleaved, written to target/bench/.

use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use warren_benches::{Summary, summarize};
use warren_tests::fixtures::{bundle, shared_busybox};
use warren_tests::runtime::Runtime;
use warren_tests::{target_dir, unique};

struct Side {
    name: &'static str,
    rt: Runtime,
    bundle: std::path::PathBuf,
}

/// One create+start+wait+delete of /bin/true, in seconds.
fn lifecycle(side: &Side) -> Result<f64> {
    let id = unique("bench");
    let start = Instant::now();
    let status = side
        .rt
        .command()
        .args(["run", "--bundle"])
        .arg(&side.bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run")?;
    let took = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{} run failed: {status}", side.name);
    }
    Ok(took)
}

fn userns(spec: &mut serde_json::Value) {
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4_000_000, "size": 65536}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 4_000_000, "size": 65536}]);
}

fn main() -> Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    let rootfs = shared_busybox();
    let warren = Runtime::warren();
    let mk = |name: &'static str, rt: Runtime, edit: fn(&mut serde_json::Value)| Side {
        bundle: bundle(
            &warren.bin,
            &out.join(format!("bundle-{name}")),
            &rootfs,
            &["/bin/true"],
            edit,
        ),
        name,
        rt,
    };
    let sides = vec![
        mk("warren-syscont", Runtime::warren(), |_| {}),
        mk("warren-plain", Runtime::warren(), |s| {
            s["annotations"] = json!({"io.warren.syscont": "false"});
        }),
        mk("crun", Runtime::peer("crun"), userns),
        mk("runc", Runtime::peer("runc"), userns),
    ];
    // Warm-up, which also starts the interceptor.
    for s in &sides {
        lifecycle(s)?;
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for _ in 0..iterations {
        for (i, s) in sides.iter().enumerate() {
            samples[i].push(lifecycle(s)?);
        }
    }
    let summaries: Vec<Summary> = samples.iter().filter_map(|s| summarize(s)).collect();
    let crun = summaries[2].median;
    let mut md = String::from(
        "# warren benchmarks\n\nContainer lifecycle: `run` of /bin/true (create, start, wait, delete), \
         interleaved, milliseconds.\n\n| runtime | n | min | median | p99 | median / crun |\n|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    for (s, sum) in sides.iter().zip(&summaries) {
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            s.name,
            sum.n,
            sum.min * 1e3,
            sum.median * 1e3,
            sum.p99 * 1e3,
            sum.median / crun
        ));
        rows.push(json!({"runtime": s.name, "summary": sum, "ratio_to_crun": sum.median / crun}));
    }
    let target = summaries[0].median / crun <= 1.0;
    md.push_str(&format!(
        "\nTarget: warren system-container median <= 1.0x crun: **{}**\n",
        if target { "pass" } else { "fail" }
    ));
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_vec_pretty(&json!({"lifecycle": rows, "lifecycle_target_met": target}))?,
    )?;
    print!("{md}");
    Ok(())
}
