//! `warren-agents-bench`: prints (never asserts) what pools and swarms cost on this host.
//!
//! * pool exec of `true`, acquire → result, N concurrent callers: p50, p90, p99, max;
//! * pool exec of `python3 -c pass` against the same command run directly on the host;
//! * pool throughput against cold `warren-runtime run` of the same profile and root;
//! * `swarm up` and `swarm down` of 3 and of 32 agents.
//!
//! As root: `target/release/warren-agents-bench [--execs 4000] [--callers 8]`. The pool
//! daemon, swarm supervisor and pool init are found beside this binary (as `warren` finds
//! them); state lives in a fresh directory under /run, removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use warren_agents::pool::{Client, ExecRequest, PoolOptions, manage};
use warren_agents::{Helpers, Roots};

#[derive(Parser, Debug)]
#[command(
    name = "warren-agents-bench",
    about = "Pool latency, throughput and swarm timings"
)]
struct Args {
    /// Execs of `true` in the latency run.
    #[arg(long, default_value_t = 4000)]
    execs: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 8)]
    callers: usize,
    /// Sandboxes in the pool.
    #[arg(long, default_value_t = 8)]
    pool_size: usize,
    /// Runs of `python3 -c pass`, each way.
    #[arg(long, default_value_t = 40)]
    python_runs: usize,
    /// Cold `warren-runtime run`s for the throughput comparison.
    #[arg(long, default_value_t = 160)]
    cold_runs: usize,
    /// Swarm sizes to bring up and down.
    #[arg(long, default_value = "3,32", value_delimiter = ',')]
    swarms: Vec<usize>,
    /// The warren-runtime binary (default: beside this one, or target/bin).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Skip parts: pool, python, cold, swarm (comma-separated).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn req(argv: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Runs `per_caller` execs of `argv` in each of `callers` threads, each with its own
/// connection; returns every latency (ms) and the wall time.
fn hammer(
    roots: &Roots,
    pool: &str,
    argv: &[&str],
    callers: usize,
    per_caller: usize,
    reconnect: bool,
) -> Result<(Vec<f64>, Duration)> {
    let barrier = Arc::new(Barrier::new(callers + 1));
    let mut handles = Vec::new();
    for _ in 0..callers {
        let (roots, pool, barrier) = (roots.clone(), pool.to_owned(), barrier.clone());
        let r = req(argv);
        handles.push(std::thread::spawn(move || -> Result<Vec<f64>> {
            let mut c = Client::connect(&roots, &pool)?;
            let mut lat = Vec::with_capacity(per_caller);
            barrier.wait();
            for _ in 0..per_caller {
                let t = Instant::now();
                if reconnect {
                    c = Client::connect(&roots, &pool)?;
                }
                let out = c.exec(&r)?;
                lat.push(ms(t.elapsed()));
                if out.result.exit_code != 0 {
                    bail!("exec failed: {:?}", out.result);
                }
            }
            Ok(lat)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().map_err(|_| anyhow::anyhow!("caller panicked"))??);
    }
    let wall = start.elapsed();
    all.sort_by(f64::total_cmp);
    Ok((all, wall))
}

fn wait_ready(roots: &Roots, pool: &str, size: usize) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let s = Client::connect(roots, pool)?.status()?;
        if s.ready == size {
            return Ok(());
        }
        if Instant::now() > end {
            bail!("pool not ready: {s:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe().context("locate this binary")?;
    let helpers = Helpers::locate(&exe)?;
    let base = PathBuf::from(format!("/run/warren-agents-bench-{}", std::process::id()));
    let roots = Roots::new(base.join("run"), base.join("data"));
    std::fs::create_dir_all(&roots.run)?;
    let r = run(&a, &exe, &helpers, &roots);
    let _ = manage::rm(&roots, "bench");
    let _ = std::fs::remove_dir_all(&base);
    r
}

fn run(a: &Args, exe: &Path, helpers: &Helpers, roots: &Roots) -> Result<()> {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# warren agents bench");
    println!();
    println!(
        "host: {nproc} CPUs; pool init {} ({}); profile agent, host view",
        helpers.pool_init.display(),
        if warren_agents::paths::is_static_elf(&helpers.pool_init) {
            "static"
        } else {
            "dynamic"
        }
    );
    println!();
    let skip = |s: &str| a.skip.iter().any(|x| x == s);
    let mut pool_rate = None;
    if !skip("pool") || !skip("python") || !skip("cold") {
        let t = Instant::now();
        manage::create(
            roots,
            helpers,
            &PoolOptions {
                name: "bench".into(),
                size: a.pool_size,
                ..Default::default()
            },
            Duration::from_secs(120),
        )?;
        println!(
            "pool create, {} sandboxes: {:.0} ms ({:.1} ms each)",
            a.pool_size,
            ms(t.elapsed()),
            ms(t.elapsed()) / a.pool_size as f64
        );
        println!();
        // Warm up.
        hammer(roots, "bench", &["true"], a.callers, 20, false)?;
        wait_ready(roots, "bench", a.pool_size)?;
    }
    if !skip("pool") {
        let per = a.execs.div_ceil(a.callers);
        let (lat, wall) = hammer(roots, "bench", &["true"], a.callers, per, false)?;
        let rate = lat.len() as f64 / wall.as_secs_f64();
        pool_rate = Some(rate);
        wait_ready(roots, "bench", a.pool_size)?;
        let (lat1, _) = hammer(roots, "bench", &["true"], 1, 500, false)?;
        wait_ready(roots, "bench", a.pool_size)?;
        // As many callers as CPUs: latency without the callers queueing for CPU.
        let (lat2, wall2) = hammer(roots, "bench", &["true"], nproc, per, false)?;
        wait_ready(roots, "bench", a.pool_size)?;
        let (latc, _) = hammer(roots, "bench", &["true"], a.callers, per / 4, true)?;
        println!(
            "## pool exec of `true`, acquire → result (pool of {})",
            a.pool_size
        );
        println!();
        println!("| callers | connection | execs | p50 ms | p90 ms | p99 ms | max ms | execs/s |");
        println!("|---|---|---|---|---|---|---|---|");
        for (c, conn, v, w) in [
            (a.callers, "kept", &lat, Some(wall)),
            (nproc, "kept", &lat2, Some(wall2)),
            (1, "kept", &lat1, None),
            (a.callers, "new per exec", &latc, None),
        ] {
            println!(
                "| {c} | {conn} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                v.len(),
                percentile(v, 0.5),
                percentile(v, 0.9),
                percentile(v, 0.99),
                percentile(v, 1.0),
                w.map_or("".into(), |w| format!(
                    "{:.0}",
                    v.len() as f64 / w.as_secs_f64()
                ))
            );
        }
        println!();
    }
    if !skip("python") {
        let mut c = Client::connect(roots, "bench")?;
        let py = req(&["python3", "-c", "pass"]);
        for _ in 0..3 {
            c.exec(&py)?;
        }
        let mut pool = Vec::new();
        let mut host = Vec::new();
        for _ in 0..a.python_runs {
            let t = Instant::now();
            let out = c.exec(&py)?;
            pool.push(ms(t.elapsed()));
            if out.result.exit_code != 0 {
                bail!("python in the pool: {:?}", out.result);
            }
            // Let the reset finish so that the next exec finds a free sandbox at once.
            std::thread::sleep(Duration::from_millis(5));
            let t = Instant::now();
            let st = Command::new("/usr/bin/python3")
                .args(["-c", "pass"])
                .stdin(Stdio::null())
                .status()?;
            host.push(ms(t.elapsed()));
            if !st.success() {
                bail!("python on the host: {st}");
            }
        }
        let (p, h) = (median(&mut pool), median(&mut host));
        println!(
            "## `python3 -c pass`, one caller, {} runs each (medians)",
            a.python_runs
        );
        println!();
        println!("| pool exec | on the host | pool / host |");
        println!("|---|---|---|");
        println!("| {p:.2} ms | {h:.2} ms | {:.2}× |", p / h);
        println!();
    }
    if !skip("cold") {
        let rt = match &a.runtime {
            Some(p) => p.clone(),
            None => warren_agents::paths::helper_dirs(exe)
                .into_iter()
                .map(|d| d.join("warren-runtime"))
                .find(|p| p.is_file())
                .context("warren-runtime not found beside this binary; pass --runtime")?,
        };
        let rate = cold(roots, &rt, a.cold_runs, a.callers)?;
        let pool = match pool_rate {
            Some(p) => p,
            None => {
                let (lat, wall) = hammer(roots, "bench", &["true"], a.callers, 200, false)?;
                lat.len() as f64 / wall.as_secs_f64()
            }
        };
        println!(
            "## throughput of `true`, {} callers, profile agent",
            a.callers
        );
        println!();
        println!("| pool execs/s | cold `warren-runtime run`/s | pool / cold |");
        println!("|---|---|---|");
        println!("| {pool:.0} | {rate:.1} | {:.1}× |", pool / rate);
        println!();
    }
    if !skip("pool") || !skip("python") || !skip("cold") {
        manage::rm(roots, "bench")?;
    }
    if !skip("swarm") {
        println!("## swarm up / down (host view, agent profile, `sleep infinity` agents)");
        println!();
        println!("| agents | up ms | down ms |");
        println!("|---|---|---|");
        let tools = warren_agents::cmd::Tools::default();
        for &n in &a.swarms {
            let dir = roots.run.join("swarm-files");
            std::fs::create_dir_all(&dir)?;
            let file = dir.join(format!("bench{n}.toml"));
            let mut text = format!(
                "[network]\nsubnet = \"10.76.0.0/{}\"\n[roles.coordinator]\ncommand = [\"sleep\", \"infinity\"]\nports = [8000]\n",
                if n > 250 { 16 } else { 24 }
            );
            if n > 1 {
                text.push_str(&format!(
                    "[roles.worker]\nreplicas = {}\ncommand = [\"sleep\", \"infinity\"]\ntalk_to = [\"coordinator\"]\n",
                    n - 1
                ));
            }
            std::fs::write(&file, text)?;
            let t = Instant::now();
            warren_agents::swarm::up(roots, helpers, &tools, &file)?;
            let up = ms(t.elapsed());
            let t = Instant::now();
            let rep = warren_agents::swarm::down(
                roots,
                &tools,
                &format!("bench{n}"),
                Duration::from_secs(10),
                true,
            )?;
            let down = ms(t.elapsed());
            if !rep.leftovers.is_empty() {
                bail!("swarm of {n} left {:?}", rep.leftovers);
            }
            println!("| {n} | {up:.0} | {down:.0} |");
        }
        println!();
    }
    Ok(())
}

/// Cold starts: `warren-runtime run` of a bundle equal to a pooled sandbox's (agent
/// profile, host view) running `true`, from `callers` threads. Returns runs per second.
fn cold(roots: &Roots, runtime: &Path, runs: usize, callers: usize) -> Result<f64> {
    let bundle = roots.run.join("cold-bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    let profile = warren_agents::spec::LoadedProfile::load("agent")?;
    let s = warren_agents::spec::SandboxSpec {
        args: vec!["true".into()],
        cwd: PathBuf::from("/"),
        hostname: "cold".into(),
        rootfs: rootfs.clone(),
        host_view: true,
        root_readonly: true,
        tmpfs: vec![warren_agents::spec::Tmpfs::scratch("/tmp", "256m")],
        ..Default::default()
    };
    let spec = warren_agents::spec::build(&s, &profile)?;
    warren_agents::spec::write_bundle(&bundle, &spec)?;
    let state = roots.run.join("cold-state");
    let one = |i: usize| -> Result<()> {
        let st = Command::new(runtime)
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("cold-{i}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("warren-runtime run: {st}");
        }
        Ok(())
    };
    one(usize::MAX)?;
    let per = runs.div_ceil(callers);
    let start = Instant::now();
    std::thread::scope(|sc| -> Result<()> {
        let hs: Vec<_> = (0..callers)
            .map(|c| {
                sc.spawn(move || -> Result<()> {
                    for i in 0..per {
                        one(c * per + i)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("cold caller panicked"))??;
        }
        Ok(())
    })?;
    Ok((per * callers) as f64 / start.elapsed().as_secs_f64())
}
