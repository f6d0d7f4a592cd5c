//! Container lifecycle latency and throughput, runtime against runtime.
//!
//! Every runtime runs the same bundle in one interleaved loop (one lifecycle of each in
//! turn), so machine drift hits all of them alike; results are medians and ratios to a
//! baseline runtime. Like `shared/bench/lifecycle.sh`, everything runs in one private
//! mount namespace in which a hybrid host's cgroup2 controller list reads empty, because
//! crun 1.8 refuses hybrid hosts otherwise (runc's and warren's timings are unaffected).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::stats::{Summary, summarize};

/// A runtime binary under test.
#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
}

/// How one lifecycle is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `run --bundle B ID` (foreground), then `delete -f ID`.
    Run,
    /// `create`, `start`, poll `state` until stopped, `delete`.
    CreateStart,
}

/// Per-runtime results of a latency measurement.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub runtime: String,
    pub total: Summary,
    /// create/start/state/delete medians (create-start mode only).
    pub ops: Vec<(String, Summary)>,
    pub failures: usize,
    pub first_error: Option<String>,
    /// total median / baseline total median.
    pub ratio: f64,
    /// Every timed lifecycle, in milliseconds, in run order.
    #[serde(skip)]
    pub samples_ms: Vec<f64>,
}

/// Per-runtime throughput.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputResult {
    pub runtime: String,
    pub parallel: usize,
    pub containers: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub failures: usize,
    /// per_second / baseline per_second.
    pub ratio: f64,
    /// The first failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Enters a private mount namespace where a hybrid host's cgroup2 controllers are hidden.
pub fn private_mount_namespace() -> Result<()> {
    use nix::mount::{MsFlags, mount};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private")?;
    let ctl = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    if std::fs::read_to_string(ctl)
        .map(|s| !s.trim().is_empty())
        .unwrap_or(false)
    {
        let empty = std::env::temp_dir().join(format!("warren-bench-empty-{}", std::process::id()));
        std::fs::write(&empty, "").context("create empty file")?;
        mount(
            Some(&empty),
            ctl,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .context("hide cgroup2 controllers")?;
        let _ = std::fs::remove_file(&empty);
    }
    Ok(())
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn run_quiet(rt: &Runtime, root: &Path, args: &[&str]) -> Result<(Duration, std::process::Output)> {
    // The container's process inherits the runtime's stdio: `create`/`run` get files, not
    // pipes, or reading their output would wait for the container to exit.
    let detaching = matches!(args.first(), Some(&"create") | Some(&"run"));
    let errf = tempfile::tempfile()?;
    let mut cmd = Command::new(&rt.path);
    cmd.arg("--root").arg(root).args(args).stdin(Stdio::null());
    let t = Instant::now();
    let out = if detaching {
        let status = cmd
            .stdout(Stdio::null())
            .stderr(errf.try_clone()?)
            .status()
            .with_context(|| format!("spawn {}", rt.path.display()))?;
        let elapsed = t.elapsed();
        let mut stderr = Vec::new();
        let mut f = errf;
        use std::io::{Read, Seek};
        f.rewind()?;
        f.read_to_end(&mut stderr)?;
        return Ok((
            elapsed,
            std::process::Output {
                status,
                stdout: Vec::new(),
                stderr,
            },
        ));
    } else {
        cmd.output()
            .with_context(|| format!("spawn {}", rt.path.display()))?
    };
    Ok((t.elapsed(), out))
}

fn check(what: &str, out: &std::process::Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// One lifecycle; returns (total, per-op durations).
pub fn one(
    rt: &Runtime,
    root: &Path,
    bundle: &Path,
    mode: Mode,
) -> Result<(Duration, Vec<Duration>)> {
    let id = unique_id("bench");
    let b = bundle.to_string_lossy().into_owned();
    let t0 = Instant::now();
    match mode {
        Mode::Run => {
            let (_, out) = run_quiet(rt, root, &["run", "--bundle", &b, &id])?;
            let _ = run_quiet(rt, root, &["delete", "-f", &id]);
            check("run", &out)?;
            Ok((t0.elapsed(), Vec::new()))
        }
        Mode::CreateStart => {
            let r = (|| -> Result<Vec<Duration>> {
                let (dc, out) = run_quiet(rt, root, &["create", "--bundle", &b, &id])?;
                check("create", &out)?;
                let (ds, out) = run_quiet(rt, root, &["start", &id])?;
                check("start", &out)?;
                let mut first_state = None;
                for _ in 0..5000 {
                    let (d, out) = run_quiet(rt, root, &["state", &id])?;
                    first_state.get_or_insert(d);
                    check("state", &out)?;
                    let s = String::from_utf8_lossy(&out.stdout);
                    if s.contains("\"stopped\"") {
                        let (dd, out) = run_quiet(rt, root, &["delete", &id])?;
                        check("delete", &out)?;
                        return Ok(vec![dc, ds, first_state.unwrap_or_default(), dd]);
                    }
                }
                bail!("container did not stop")
            })();
            match r {
                Ok(ops) => Ok((t0.elapsed(), ops)),
                Err(e) => {
                    let _ = run_quiet(rt, root, &["delete", "-f", &id]);
                    Err(e)
                }
            }
        }
    }
}

/// In which order lifecycles of the runtimes are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// One lifecycle of each runtime in turn: drift hits all alike, and each container
    /// start is spaced from the same runtime's previous one, as on a real host.
    Interleaved,
    /// All lifecycles of one runtime, then the next (hyperfine's order, as the reference
    /// harness `shared/bench/lifecycle.sh`): back-to-back starts keep kernel fast paths warm.
    Blocked,
}

/// Latency measurement: `warmup` then `runs` lifecycles per runtime.
/// Ratios are relative to `runtimes[baseline]`.
pub fn latency(
    runtimes: &[Runtime],
    bundle: &Path,
    mode: Mode,
    runs: usize,
    warmup: usize,
    baseline: usize,
    order: Order,
) -> Result<Vec<LatencyResult>> {
    let roots: Vec<tempfile::TempDir> = runtimes
        .iter()
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); runtimes.len()];
    let mut ops: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); 4]; runtimes.len()];
    let mut fails = vec![0usize; runtimes.len()];
    let mut first_err: Vec<Option<String>> = vec![None; runtimes.len()];
    let n = warmup + runs;
    let schedule: Vec<(usize, usize)> = match order {
        Order::Interleaved => (0..n)
            .flat_map(|i| (0..runtimes.len()).map(move |k| (i, k)))
            .collect(),
        Order::Blocked => (0..runtimes.len())
            .flat_map(|k| (0..n).map(move |i| (i, k)))
            .collect(),
    };
    for (i, k) in schedule {
        let rt = &runtimes[k];
        {
            match one(rt, roots[k].path(), bundle, mode) {
                Ok((d, o)) if i >= warmup => {
                    totals[k].push(d.as_secs_f64() * 1e3);
                    for (j, od) in o.iter().enumerate() {
                        ops[k][j].push(od.as_secs_f64() * 1e3);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    fails[k] += 1;
                    first_err[k].get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }
    let base = summarize(&totals[baseline.min(runtimes.len().saturating_sub(1))]).median_ms;
    Ok(runtimes
        .iter()
        .enumerate()
        .map(|(k, rt)| {
            let total = summarize(&totals[k]);
            let names = ["create", "start", "state", "delete"];
            LatencyResult {
                runtime: rt.name.clone(),
                total,
                ops: if mode == Mode::CreateStart {
                    names
                        .iter()
                        .zip(&ops[k])
                        .map(|(n, v)| (n.to_string(), summarize(v)))
                        .collect()
                } else {
                    Vec::new()
                },
                failures: fails[k],
                first_error: first_err[k].clone(),
                ratio: if base > 0.0 {
                    total.median_ms / base
                } else {
                    f64::NAN
                },
                samples_ms: totals[k].clone(),
            }
        })
        .collect())
}

/// Runs `total` lifecycles (run mode) with `parallel` workers per runtime.
pub fn throughput(
    runtimes: &[Runtime],
    bundle: &Path,
    total: usize,
    parallel: usize,
    baseline: usize,
) -> Result<Vec<ThroughputResult>> {
    let mut out = Vec::new();
    for rt in runtimes {
        let root = tempfile::tempdir()?;
        let next = AtomicUsize::new(0);
        let fails = AtomicUsize::new(0);
        let first_error = std::sync::Mutex::new(None::<String>);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..parallel {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        if let Err(e) = one(rt, root.path(), bundle, Mode::Run) {
                            fails.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert_with(|| format!("{e:#}"));
                            }
                        }
                    }
                });
            }
        });
        let secs = t.elapsed().as_secs_f64();
        out.push(ThroughputResult {
            runtime: rt.name.clone(),
            parallel,
            containers: total,
            seconds: secs,
            per_second: total as f64 / secs,
            failures: fails.load(Ordering::Relaxed),
            ratio: 0.0,
            first_error: first_error.into_inner().ok().flatten(),
        });
    }
    let base = out.get(baseline).map(|r| r.per_second).unwrap_or(f64::NAN);
    for r in &mut out {
        r.ratio = r.per_second / base;
    }
    Ok(out)
}
