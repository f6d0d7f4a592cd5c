//! `warren-lifecycle-bench`: warren-runtime against runc and crun, one interleaved run.
//!
//! ```text
//! warren-lifecycle-bench --warren target/release/warren-runtime [--runs 60] [--vs runc,crun]
//! ```
//! Prints, as ratios to the baseline (crun when present): plain and seccomp bundles in run
//! mode, per-operation latencies (create/start/state/delete), and containers per second at
//! 8 in parallel. `--json FILE` writes the raw results.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use warren_benches::{bundle, lifecycle};

#[derive(Parser, Debug)]
struct Args {
    /// The warren-runtime binary to measure.
    #[arg(long)]
    warren: PathBuf,
    /// Other runtimes to compare with (names on PATH or paths), comma-separated.
    #[arg(long, default_value = "crun,runc")]
    vs: String,
    /// Lifecycles per runtime and measurement.
    #[arg(long, default_value_t = 60)]
    runs: usize,
    /// Warm-up lifecycles per runtime.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Containers for the throughput test (0 to skip).
    #[arg(long, default_value_t = 100)]
    throughput: usize,
    /// Parallel workers for the throughput test.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// interleaved (one lifecycle of each runtime in turn) or blocked (all of one runtime,
    /// then the next, like hyperfine in shared/bench/lifecycle.sh).
    #[arg(long, default_value = "blocked", value_parser = ["blocked", "interleaved"])]
    order: String,
    /// Write results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

fn main() -> Result<()> {
    let a = Args::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root (containers need it)");
    }
    let warren = std::fs::canonicalize(&a.warren)
        .with_context(|| format!("--warren {}", a.warren.display()))?;
    let mut rts = vec![lifecycle::Runtime {
        name: "warren-runtime".into(),
        path: warren.clone(),
    }];
    for n in a.vs.split(',').filter(|s| !s.is_empty()) {
        match which(n) {
            Some(p) => rts.push(lifecycle::Runtime {
                name: n.rsplit('/').next().unwrap_or(n).to_owned(),
                path: p,
            }),
            None => eprintln!("# {n} not found, skipped"),
        }
    }
    let baseline = rts.iter().position(|r| r.name == "crun").unwrap_or(0);
    let order = if a.order == "interleaved" {
        lifecycle::Order::Interleaved
    } else {
        lifecycle::Order::Blocked
    };
    lifecycle::private_mount_namespace()?;
    let dir = tempfile::tempdir()?;
    let plain = bundle::make(&dir.path().join("plain"), &warren, &["/bin/true"])?;
    let secc = bundle::make(&dir.path().join("seccomp"), &warren, &["/bin/true"])?;
    let have_seccomp = bundle::add_default_seccomp(&secc)
        .map_err(|e| eprintln!("# seccomp bundle skipped: {e:#}"))
        .is_ok();

    let mut report = serde_json::Map::new();
    println!(
        "baseline: {} (ratios are runtime / baseline; < 1 is faster)",
        rts[baseline].name
    );
    let mut show = |title: &str, key: &str, res: &[lifecycle::LatencyResult]| {
        println!("\n{title}");
        println!(
            "{:<16} {:>10} {:>8} {:>8} {:>7} {:>6}",
            "runtime", "median ms", "p95 ms", "min ms", "ratio", "fail"
        );
        for r in res {
            println!(
                "{:<16} {:>10.2} {:>8.2} {:>8.2} {:>7.3} {:>6}",
                r.runtime, r.total.median_ms, r.total.p95_ms, r.total.min_ms, r.ratio, r.failures
            );
            if let Some(e) = &r.first_error {
                println!("  {}: first error: {e}", r.runtime);
            }
            for (op, s) in &r.ops {
                println!("  {:<14} {op:<8} median {:>7.2} ms", r.runtime, s.median_ms);
            }
        }
        report.insert(key.into(), serde_json::to_value(res).unwrap_or_default());
    };
    let r = lifecycle::latency(
        &rts,
        &plain,
        lifecycle::Mode::Run,
        a.runs,
        a.warmup,
        baseline,
        order,
    )?;
    show("plain bundle, run mode", "plain_run", &r);
    let r = lifecycle::latency(
        &rts,
        &plain,
        lifecycle::Mode::CreateStart,
        a.runs,
        a.warmup,
        baseline,
        order,
    )?;
    show("plain bundle, create/start/state/delete", "plain_cs", &r);
    if have_seccomp {
        let r = lifecycle::latency(
            &rts,
            &secc,
            lifecycle::Mode::Run,
            a.runs,
            a.warmup,
            baseline,
            order,
        )?;
        show(
            "seccomp bundle (podman default profile), run mode",
            "seccomp_run",
            &r,
        );
    }
    if a.throughput > 0 {
        let t = lifecycle::throughput(&rts, &plain, a.throughput, a.parallel, baseline)?;
        println!(
            "\nthroughput: {} containers, {} in parallel, run mode",
            a.throughput, a.parallel
        );
        println!(
            "{:<16} {:>10} {:>12} {:>7} {:>6}",
            "runtime", "seconds", "per second", "ratio", "fail"
        );
        for r in &t {
            println!(
                "{:<16} {:>10.2} {:>12.1} {:>7.3} {:>6}",
                r.runtime, r.seconds, r.per_second, r.ratio, r.failures
            );
        }
        report.insert("throughput".into(), serde_json::to_value(&t)?);
    }
    if let Some(p) = a.json {
        std::fs::write(
            &p,
            serde_json::to_vec_pretty(&serde_json::Value::Object(report))?,
        )
        .with_context(|| format!("write {}", p.display()))?;
    }
    Ok(())
}
