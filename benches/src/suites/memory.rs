//! Memory: the runtime's own peak RSS while it runs a container, and what one sandbox
//! costs beyond its process (the container cgroup's memory usage minus the process's RSS).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Ctx;
use crate::container::{self, Started};
use crate::lifecycle::Runtime;
use crate::probe::Probe;
use crate::results::{Measurement, Suite};
use crate::{bundle, container::new_id};

const NAME: &str = "memory";
const TITLE: &str = "Memory";
const METHOD: &str = "Peak RSS: `ru_maxrss` from wait4(2) on the runtime process running \
`run` of the /bin/true bundle, forked by the small static wprobe (a fork of a big harness \
would count the harness's pages): the largest resident set of the runtime or of any process \
it reaped (runc's `runc init`, the container's init); the floor (wprobe running \
/bin/true) is in the notes. Per-sandbox overhead: a container \
running busybox `sleep` is created and started with its own cgroup; 200 ms later the \
cgroup's memory usage (v1 `memory.usage_in_bytes`, v2 `memory.current`: the process, its \
page tables and kernel objects, and page cache charged to it) minus the sleeping process's \
private memory (RssAnon + RssShmem): what the sandbox costs beyond its workload. Runtimes \
take turns. Ratio: median over the baseline's median (crun when measured, \
else warren-runtime).";

/// Peak RSS (MiB) of `rt run` of `bundle`, measured by `wprobe rusage` (a fork of the
/// small static probe, not of this harness, whose resident set a child would inherit).
fn peak_rss(probe: &Probe, rt: &Runtime, root: &Path, bundle: &Path) -> Result<f64> {
    let id = new_id("wbench-rss");
    let mut cmd = Command::new(&probe.path);
    cmd.arg("rusage")
        .arg(&rt.path)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id);
    let out = container::run_command(cmd, &format!("{} run", rt.name), Duration::from_secs(60));
    container::delete(rt, root, &id);
    parse_maxrss(&out?)
}

/// `maxrss_kib N` from `wprobe rusage`, in MiB.
fn parse_maxrss(out: &str) -> Result<f64> {
    out.lines()
        .find_map(|l| l.strip_prefix("maxrss_kib "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .with_context(|| format!("no maxrss_kib in {:?}", container::tail(out, 2)))
}

/// The memory-cgroup usage file of process `pid` (v1 memory controller, else cgroup2).
fn memory_usage_file(pid: i32) -> Result<PathBuf> {
    let p = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
    let mut unified = None;
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == "memory") {
            return Ok(PathBuf::from(format!(
                "/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"
            )));
        }
        if ctrls.is_empty() {
            unified = Some(path.to_owned());
        }
    }
    match unified {
        Some(path) => Ok(PathBuf::from(format!(
            "/sys/fs/cgroup{path}/memory.current"
        ))),
        None => bail!("no memory cgroup in {p}"),
    }
}

/// The process's private resident memory, MiB: `RssAnon + RssShmem` (its file pages, such
/// as busybox's text, are page cache charged to whoever read them first).
fn private_rss_mib(pid: i32) -> Result<f64> {
    let p = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {p}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
    };
    match (field("RssAnon:"), field("RssShmem:")) {
        (Some(a), s) => Ok((a + s.unwrap_or(0.0)) / 1024.0),
        _ => bail!("no RssAnon in {p}"),
    }
}

/// (cgroup usage, process RSS), MiB, of one `sleep` container.
fn sandbox_usage(rt: &Runtime, root: &Path, bundle: &Path) -> Result<(f64, f64)> {
    let cg = format!("/{}", new_id("warren-bench"));
    bundle::edit_config(bundle, |c| {
        c["linux"]["cgroupsPath"] = serde_json::json!(cg);
        Ok(())
    })?;
    let c = Started::start(rt, root, bundle)?;
    std::thread::sleep(Duration::from_millis(200));
    let f = memory_usage_file(c.pid)?;
    let usage: f64 = std::fs::read_to_string(&f)
        .with_context(|| format!("read {}", f.display()))?
        .trim()
        .parse::<f64>()
        .with_context(|| format!("parse {}", f.display()))?
        / (1024.0 * 1024.0);
    let rss = private_rss_mib(c.pid)?;
    drop(c);
    Ok((usage, rss))
}

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    let w = ctx.warren();
    let true_bundle = bundle::make(&ctx.dir("memory-true")?, &w.path, &["/bin/true"])?;
    let mut sleep_bundles = Vec::new();
    for rt in &ctx.runtimes {
        let d = ctx.dir(&format!("memory-sleep-{}", rt.name))?;
        let b = bundle::make(&d, &w.path, &["/bin/sleep", "600"])?;
        sleep_bundles.push(b);
        std::fs::create_dir_all(ctx.root(rt))?;
    }
    let n = ctx.runtimes.len();
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut over: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut usage: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut proc_rss: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut err_rss: Vec<Option<String>> = vec![None; n];
    let mut err_over: Vec<Option<String>> = vec![None; n];
    ctx.say("memory: runtime peak RSS and per-sandbox overhead");
    if let Ok(p) = &ctx.probe {
        let mut cmd = Command::new(&p.path);
        cmd.args(["rusage", "/bin/true"]);
        if let Ok(floor) =
            container::run_command(cmd, "wprobe rusage /bin/true", Duration::from_secs(10))
                .and_then(|o| parse_maxrss(&o))
        {
            suite.notes.push(format!(
                "peak RSS floor (wprobe running /bin/true the same way): {floor:.2} MiB"
            ));
        }
    }
    for _ in 0..ctx.sizes.memory_runs.max(1) {
        for (k, rt) in ctx.runtimes.iter().enumerate() {
            let root = ctx.root(rt);
            if err_rss[k].is_none() {
                let r = match &ctx.probe {
                    Ok(p) => peak_rss(p, rt, &root, &true_bundle),
                    Err(e) => Err(anyhow::anyhow!("no probe: {e}")),
                };
                match r {
                    Ok(v) => rss[k].push(v),
                    Err(e) => err_rss[k] = Some(format!("{e:#}")),
                }
            }
            if err_over[k].is_none() {
                match sandbox_usage(rt, &root, &sleep_bundles[k]) {
                    Ok((u, r)) => {
                        usage[k].push(u);
                        proc_rss[k].push(r);
                        over[k].push(u - r);
                    }
                    Err(e) => err_over[k] = Some(format!("{e:#}")),
                }
            }
        }
    }
    let g_rss = "runtime peak RSS (run /bin/true)";
    let g_over = "per-sandbox overhead (cgroup usage − process private RSS)";
    for (k, rt) in ctx.runtimes.iter().enumerate() {
        let m = Measurement::new(g_rss, &rt.name, "MiB", false).runtime(&rt.name);
        suite.measurements.push(match err_rss[k].take() {
            Some(e) => m.fail(e),
            None => m.samples(std::mem::take(&mut rss[k]), 0, None),
        });
        let mut m = Measurement::new(g_over, &rt.name, "MiB", false).runtime(&rt.name);
        m = match err_over[k].take() {
            Some(e) => m.fail(e),
            None => m.samples(std::mem::take(&mut over[k]), 0, None),
        };
        if let (Some(u), Some(r)) = (
            crate::results::Stats::of(&usage[k]),
            crate::results::Stats::of(&proc_rss[k]),
        ) && m.stats.is_some()
        {
            m.extra.insert("cgroup_usage_median_mib".into(), u.median);
            m.extra
                .insert("process_private_rss_median_mib".into(), r.median);
        }
        suite.measurements.push(m);
    }
    suite.set_baseline(g_rss, &ctx.runtime_baselines());
    suite.set_baseline(g_over, &ctx.runtime_baselines());
    Ok(suite)
}
