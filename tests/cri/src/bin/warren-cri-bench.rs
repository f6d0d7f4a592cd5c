//! Pod start latency through CRI: RunPodSandbox → CreateContainer → StartContainer →
//! ContainerStatus RUNNING, with runtime handler `warren` against handler `runc` on the
//! same private containerd, interleaved (the order alternates every round), one run.
//!
//! ```sh
//! warren-cri-bench [--pods N] [--json FILE]    # as root; N rounds (default 20)
//! ```
//!
//! Prints medians, p90 and means per handler and phase, and the ratio warren / runc of the
//! medians. Teardown of each pod is not timed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_cri::v1 as cri;
use warren_cri_tests::{ContainerOpts, Node, NodeOptions, PodSpec};

const HANDLERS: [&str; 2] = ["warren", "runc"];

#[derive(Debug, Default, Clone)]
struct Sample {
    run_pod: Duration,
    create: Duration,
    start: Duration,
    total: Duration,
}

fn one(node: &Node, handler: &str, i: usize) -> Result<Sample> {
    let t0 = Instant::now();
    let pod = node.run_pod(&PodSpec::new(&format!("bench-{handler}-{i}"), handler))?;
    let t1 = Instant::now();
    let id = node.create_container(&pod, "main", &["sleep", "3600"], ContainerOpts::default())?;
    let t2 = Instant::now();
    node.cri().start_container(&id)?;
    loop {
        let (st, _) = node.cri().container_status(&id)?;
        if st.state == cri::ContainerState::ContainerRunning as i32 {
            break;
        }
        if t2.elapsed() > Duration::from_secs(30) {
            bail!("{id} not running after 30s (state {})", st.state);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let t3 = Instant::now();
    node.teardown_pod(&pod)?;
    Ok(Sample {
        run_pod: t1 - t0,
        create: t2 - t1,
        start: t3 - t2,
        total: t3 - t0,
    })
}

/// A timed phase: its label and how to read it from a sample.
type Phase = (&'static str, fn(&Sample) -> Duration);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return (0.0, 0.0, 0.0);
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let p90 = v[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    (median, p90, v.iter().sum::<f64>() / n as f64)
}

fn main() -> Result<()> {
    let mut pods = 20usize;
    let mut json: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pods" => {
                pods = args
                    .next()
                    .context("--pods N")?
                    .parse()
                    .context("--pods N")?
            }
            "--json" => json = Some(args.next().context("--json FILE")?),
            "-h" | "--help" => {
                println!("usage: warren-cri-bench [--pods N] [--json FILE]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let opts = NodeOptions::from_env()?;
    let node = Node::start(&opts).context("set up the private containerd")?;
    let (name, version, _) = node.cri().version()?;
    eprintln!(
        "# {name} {version}; warren-runtime {}; runc {}; {pods} pods per handler, interleaved",
        opts.bins.warren_runtime.display(),
        opts.bins.runc.display()
    );
    // warm-up: page cache, the shim binary, the images' snapshots
    for h in HANDLERS {
        one(&node, h, 0).with_context(|| format!("warm-up pod under {h}"))?;
    }
    let mut samples: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
    for i in 1..=pods {
        let order: [usize; 2] = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let s = one(&node, HANDLERS[k], i)
                .with_context(|| format!("pod {i} under {}", HANDLERS[k]))?;
            samples[k].push(s);
        }
    }
    let leaks = node.leaks()?;
    let phase =
        |k: usize, f: fn(&Sample) -> Duration| stats(samples[k].iter().map(|s| ms(f(s))).collect());
    let phases: [Phase; 4] = [
        ("RunPodSandbox", |s| s.run_pod),
        ("CreateContainer", |s| s.create),
        ("StartContainer → RUNNING", |s| s.start),
        ("pod start (total)", |s| s.total),
    ];
    println!(
        "| phase | warren median | runc median | warren p90 | runc p90 | warren / runc (median) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut out = serde_json::Map::new();
    for (label, f) in phases {
        let (wm, wp, wa) = phase(0, f);
        let (rm, rp, ra) = phase(1, f);
        let ratio = if rm > 0.0 { wm / rm } else { f64::NAN };
        println!("| {label} | {wm:.1} ms | {rm:.1} ms | {wp:.1} ms | {rp:.1} ms | {ratio:.2} |");
        out.insert(
            label.to_owned(),
            serde_json::json!({
                "warren": {"median_ms": wm, "p90_ms": wp, "mean_ms": wa},
                "runc": {"median_ms": rm, "p90_ms": rp, "mean_ms": ra},
                "ratio_median": ratio,
            }),
        );
    }
    let (wm, _, _) = phase(0, |s| s.total);
    let (rm, _, _) = phase(1, |s| s.total);
    println!(
        "pod start ratio warren / runc: {:.2} (goal ≤ 0.80); {pods} pods each",
        wm / rm
    );
    if !leaks.is_empty() {
        eprintln!("# leaks after the run: {leaks:?}");
    }
    if let Some(path) = json {
        out.insert("pods_per_handler".into(), pods.into());
        out.insert("containerd".into(), version.into());
        std::fs::write(&path, serde_json::to_string_pretty(&out)?).with_context(|| path.clone())?;
    }
    drop(node);
    if !leaks.is_empty() {
        bail!("the run left things behind: {leaks:?}");
    }
    Ok(())
}
