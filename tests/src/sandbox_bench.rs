//! The sandbox benchmark (issue 7), A/B ratios inside real containers, no timed
//! assertions:
//!
//! * **per-syscall overhead**: `getpid(2)` in a loop (`tests/c/loops.c`), ns/op, under
//!   crun and warren-runtime with no seccomp, with podman's default profile, and (warren)
//!   with the `agent` profile alone and stacked on podman's;
//! * **Landlock**: an `open(2)`+`close(2)` loop on a shallow and a deep path, under `agent`
//!   and under a user profile `extends = "agent"` with Landlock disabled (the same seccomp
//!   filter), as a ratio;
//! * optionally the seccomp-bundle lifecycle of `warren-lifecycle-bench` (its lines are
//!   passed through).
//!
//! Both runtimes run in a private cgroup view ([`PrivateCgroupView`]), as crun 1.8 needs
//! on this hybrid host. Each configuration runs in `runs` fresh containers, each timing
//! `reps` loops of `iters` calls, the configurations interleaved round by round; reported:
//! the median and the fastest of all loops (the fastest is the least disturbed on a shared
//! machine).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bundle::Bundle;
use crate::command::Invocation;
use crate::error::{HarnessError, Result};
use crate::ids::unique_id;
use crate::runtime::{Runtime, warren_binary};
use crate::sandbox::{
    LOOPS_SRC, PrivateCgroupView, add_podman_seccomp, add_workspace, crun_binary, install, median,
    set_profile, static_helper,
};

/// What to measure, and how much.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Calls per timed loop.
    pub iters: u64,
    /// Timed loops per container.
    pub reps: u32,
    /// Containers per configuration.
    pub runs: u32,
    /// `warren-lifecycle-bench` to run for the seccomp-bundle lifecycle (skipped if None).
    pub lifecycle: Option<PathBuf>,
    /// Lifecycles per runtime for `lifecycle`.
    pub lifecycle_runs: u32,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            iters: 2_000_000,
            reps: 5,
            runs: 3,
            lifecycle: None,
            lifecycle_runs: 40,
        }
    }
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct Measure {
    /// Runtime name.
    pub runtime: String,
    /// What the container had (e.g. `podman default`, `agent`).
    pub config: String,
    /// Median ns per operation.
    pub ns_per_op: f64,
    /// Fastest loop's ns per operation (the least disturbed by other load).
    pub min: f64,
    /// Every loop's ns per operation.
    pub samples: Vec<f64>,
}

/// Everything the benchmark measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// getpid loops.
    pub getpid: Vec<Measure>,
    /// open loops (`config` names the path and whether Landlock was on).
    pub open: Vec<Measure>,
    /// The seccomp-bundle rows of `warren-lifecycle-bench`, as markdown table rows.
    pub lifecycle: Vec<String>,
}

/// A user profile: agent with Landlock off (the same seccomp filter, capabilities, limits).
const AGENT_NO_LANDLOCK: &str = "# benchmark: agent without Landlock, for A/B ratios\n\
extends = \"agent\"\n\
[landlock]\n\
enabled = false   # everything else as agent\n";

/// The deep path of the open loop (12 components).
const DEEP: &str = "/workspace/a/b/c/d/e/f/g/h/i/j/file";

fn bundle(loops: &Path) -> Result<Bundle> {
    let mut b = Bundle::new()?;
    add_workspace(&mut b)?;
    install(&b, loops, "loops", 0o755)?;
    b.write_rootfs_file("workspace/file", b"x", 0o644)?;
    b.write_rootfs_file(DEEP, b"x", 0o644)?;
    Ok(b)
}

/// One fresh container running `args` in `b` under `rt`: the ns/op of each of its loops.
fn once(rt: &Runtime, b: &Bundle, args: &[String]) -> Result<Vec<f64>> {
    // The bundle is shared by configurations with other arguments: write its config.json
    // with these.
    let mut config = b.config.clone();
    config["process"]["args"] = serde_json::json!(args);
    let path = b.config_path();
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| HarnessError::Other(format!("serialize {}: {e}", path.display())))?;
    std::fs::write(&path, text).map_err(|e| HarnessError::io("write", &path, e))?;
    let id = unique_id("bench");
    let _g = rt.guard(&id);
    let out = rt.run(b.path(), &id, Duration::from_secs(300))?.check()?;
    let v: Vec<f64> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .collect();
    if v.is_empty() {
        return Err(HarnessError::Other(format!(
            "{}: no timings from {args:?}: {out}",
            rt.name()
        )));
    }
    Ok(v)
}

/// Measures each configuration `(runtime, label, bundle, args)` in `runs` rounds; within a
/// round the configurations run one after the other, so that a noisy neighbour slows all
/// of them alike.
fn measure_interleaved(
    configs: &[(&Runtime, String, &Bundle, Vec<String>)],
    runs: u32,
) -> Result<Vec<Measure>> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for _ in 0..runs {
        for (k, (rt, _, b, args)) in configs.iter().enumerate() {
            samples[k].extend(once(rt, b, args)?);
        }
    }
    Ok(configs
        .iter()
        .zip(samples)
        .map(|((rt, config, _, _), mut samples)| {
            let ns_per_op = median(&mut samples);
            let min = samples.first().copied().unwrap_or(f64::NAN);
            eprintln!(
                "  {:<8} {config:<40} median {ns_per_op:8.1}  min {min:8.1} ns/op",
                rt.name()
            );
            Measure {
                runtime: rt.name().to_owned(),
                config: config.clone(),
                ns_per_op,
                min,
                samples,
            }
        })
        .collect())
}

/// Runs the benchmark.
pub fn run(o: &BenchOptions) -> Result<Report> {
    let loops = static_helper("loops", LOOPS_SRC)?;
    let crun = PrivateCgroupView::new("crun", &crun_binary())?;
    let warren = PrivateCgroupView::new("warren", &warren_binary()?)?;
    let profiles = tempfile::tempdir()
        .map_err(|e| HarnessError::io("create temp dir in", std::env::temp_dir(), e))?;
    let no_ll = profiles.path().join("agent-no-landlock.toml");
    std::fs::write(&no_ll, AGENT_NO_LANDLOCK).map_err(|e| HarnessError::io("write", &no_ll, e))?;
    let no_ll = no_ll.display().to_string();

    // The bundles, by configuration.
    const PLAIN: usize = 0;
    const PODMAN: usize = 1;
    const AGENT: usize = 2;
    const AGENT_PODMAN: usize = 3;
    const AGENT_NO_LL: usize = 4;
    let mut bundles = Vec::new();
    for (podman, profile) in [
        (false, None),
        (true, None),
        (false, Some("agent")),
        (true, Some("agent")),
        (false, Some(no_ll.as_str())),
    ] {
        let mut b = bundle(&loops)?;
        if podman {
            add_podman_seccomp(&mut b)?;
        }
        if let Some(p) = profile {
            set_profile(&mut b, p);
        }
        bundles.push(b);
    }

    let sv = |a: &[&str]| a.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    let iters = o.iters.to_string();
    let reps = o.reps.to_string();
    let getpid = sv(&["/loops", "getpid", &iters, &reps]);
    let mut r = Report::default();
    eprintln!(
        "getpid(2) loop, {} calls x {} loops x {} containers, interleaved:",
        o.iters, o.reps, o.runs
    );
    let cfgs: Vec<(&Runtime, String, &Bundle, Vec<String>)> = [
        (&crun.rt, "no seccomp", PLAIN),
        (&crun.rt, "podman default", PODMAN),
        (&warren.rt, "no seccomp", PLAIN),
        (&warren.rt, "podman default", PODMAN),
        (&warren.rt, "agent", AGENT),
        (&warren.rt, "agent + podman default", AGENT_PODMAN),
    ]
    .into_iter()
    .map(|(rt, c, i)| (rt, c.to_owned(), &bundles[i], getpid.clone()))
    .collect();
    r.getpid = measure_interleaved(&cfgs, o.runs)?;
    // open(2) is ~10x slower than getpid: a tenth of the calls.
    let open_iters = (o.iters / 10).max(1).to_string();
    eprintln!(
        "open(2)+close(2) loop, {open_iters} calls x {} loops x {} containers, interleaved:",
        o.reps, o.runs
    );
    let mut cfgs = Vec::new();
    for (path, label) in [("/workspace/file", "depth 2"), (DEEP, "depth 12")] {
        for (config, i) in [
            ("no profile", PLAIN),
            ("agent without Landlock", AGENT_NO_LL),
            ("agent (Landlock)", AGENT),
        ] {
            cfgs.push((
                &warren.rt,
                format!("{label}: {config}"),
                &bundles[i],
                sv(&["/loops", "open", path, &open_iters, &reps]),
            ));
        }
    }
    r.open = measure_interleaved(&cfgs, o.runs)?;
    if let Some(bin) = &o.lifecycle {
        eprintln!("lifecycle ({} runs per runtime):", o.lifecycle_runs);
        let out = Invocation::new(bin)
            .arg("--warren")
            .arg(warren_binary()?)
            .args(["--runs", &o.lifecycle_runs.to_string(), "--throughput", "0"])
            .timeout(Duration::from_secs(1800))
            .output()?
            .check()?;
        r.lifecycle = seccomp_section(&out.stdout);
        if r.lifecycle.is_empty() {
            return Err(HarnessError::Other(format!(
                "no \"seccomp bundle\" section in the output of {}:\n{}",
                bin.display(),
                out.stdout
            )));
        }
    }
    Ok(r)
}

/// The rows of the "seccomp bundle" section of `warren-lifecycle-bench`'s output
/// (`runtime median p95 min ratio fail`), as markdown table rows.
fn seccomp_section(text: &str) -> Vec<String> {
    text.split("\n\n")
        .find(|sec| sec.trim_start().starts_with("seccomp bundle"))
        .map(|sec| {
            sec.lines()
                .skip(2)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() == 6).then(|| format!("| {} |", f.join(" | ")))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Report {
    fn get<'a>(v: &'a [Measure], runtime: &str, config: &str) -> Option<&'a Measure> {
        v.iter()
            .find(|m| m.runtime == runtime && m.config == config)
    }

    /// The report as README-ready markdown tables.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "Per-syscall cost: getpid(2) in a loop inside the container, ns/op (median and \
             fastest loop); overhead against the same runtime without seccomp\n\n\
             | runtime | seccomp | median | min | overhead (median) | overhead (min) |\n\
             |---|---|---|---|---|---|\n",
        );
        for m in &self.getpid {
            let base = Self::get(&self.getpid, &m.runtime, "no seccomp");
            let (om, on) = match base {
                Some(_) if m.config == "no seccomp" => ("(base)".to_owned(), "(base)".to_owned()),
                Some(b) => (
                    format!("{:+.1} ns", m.ns_per_op - b.ns_per_op),
                    format!("{:+.1} ns", m.min - b.min),
                ),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {om} | {on} |",
                m.runtime, m.config, m.ns_per_op, m.min
            );
        }
        s.push_str(
            "\nLandlock: open(2)+close(2) in a loop under warren-runtime, ns/op (median / min)\n\n\
             | path | no profile | agent without Landlock | agent (Landlock) | Landlock ratio (median / min) |\n\
             |---|---|---|---|---|\n",
        );
        for label in ["depth 2", "depth 12"] {
            let g = |c: &str| Self::get(&self.open, "warren", &format!("{label}: {c}"));
            if let (Some(a), Some(b), Some(c)) = (
                g("no profile"),
                g("agent without Landlock"),
                g("agent (Landlock)"),
            ) {
                let _ = writeln!(
                    s,
                    "| {label} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2}x / {:.2}x |",
                    a.ns_per_op,
                    a.min,
                    b.ns_per_op,
                    b.min,
                    c.ns_per_op,
                    c.min,
                    c.ns_per_op / b.ns_per_op,
                    c.min / b.min
                );
            }
        }
        if !self.lifecycle.is_empty() {
            s.push_str(
                "\nLifecycle of the seccomp bundle (podman's default profile), run mode \
                 (warren-lifecycle-bench)\n\n\
                 | runtime | median ms | p95 ms | min ms | ratio to crun | failures |\n\
                 |---|---|---|---|---|---|\n",
            );
            for l in &self.lifecycle {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_seccomp_section() {
        let text = "baseline: crun\n\nplain bundle, run mode\nruntime median\n\
                    crun 1 2 3 1.000 0\n\n\
                    seccomp bundle (podman default profile), run mode\n\
                    runtime           median ms   p95 ms   min ms   ratio   fail\n\
                    warren-runtime        11.87    16.58    10.13   0.478      0\n\
                    crun                  24.85    39.25    23.16   1.000      0\n";
        assert_eq!(
            seccomp_section(text),
            [
                "| warren-runtime | 11.87 | 16.58 | 10.13 | 0.478 | 0 |",
                "| crun | 24.85 | 39.25 | 23.16 | 1.000 | 0 |"
            ]
        );
    }
}
