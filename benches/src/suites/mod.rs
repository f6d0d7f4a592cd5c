//! The suites of `warren bench`, one file each. Every suite takes the shared [`Ctx`] and
//! returns a [`Suite`]; an error while setting a suite up becomes a failed suite, a
//! runtime that fails a workload becomes a failed measurement.

pub mod cpu;
pub mod fs;
pub mod gpu;
pub mod lifecycle;
pub mod memory;
pub mod network;
pub mod syscall;
pub mod throughput;

use std::path::PathBuf;

use crate::config::{Level, Sizes};
use crate::lifecycle::Runtime;
use crate::probe::{self, BundleOpts, Probe, Target};
use crate::results::{Measurement, Suite};
use crate::runtimes::WARREN;

/// What every suite needs.
#[derive(Debug)]
pub struct Ctx {
    /// warren-runtime first, then the `--vs` runtimes found.
    pub runtimes: Vec<Runtime>,
    /// The level.
    pub level: Level,
    /// Its sizes.
    pub sizes: Sizes,
    /// A scratch directory (removed at the end).
    pub work: PathBuf,
    /// The probe, or why it could not be built.
    pub probe: Result<Probe, String>,
    /// podman's default seccomp profile is installed.
    pub podman_profile: bool,
    /// Print progress to stderr.
    pub progress: bool,
}

impl Ctx {
    /// warren-runtime.
    pub fn warren(&self) -> &Runtime {
        &self.runtimes[0]
    }

    /// The runtimes other than warren-runtime.
    pub fn others(&self) -> &[Runtime] {
        &self.runtimes[1..]
    }

    /// A plain probe container (default spec, no profile) for each runtime other than
    /// warren-runtime, bundles named `PREFIX-RUNTIME`, as [`collect_configs`] takes them.
    pub fn others_plain(&self, prefix: &str) -> Vec<(String, anyhow::Result<Config>)> {
        self.others()
            .iter()
            .map(|rt| {
                (
                    rt.name.clone(),
                    Config::container(
                        self,
                        rt,
                        None,
                        &format!("{prefix}-{}", rt.name),
                        &BundleOpts::default(),
                    ),
                )
            })
            .collect()
    }

    /// The state root for `rt` (one per runtime, under the scratch directory).
    pub fn root(&self, rt: &Runtime) -> PathBuf {
        self.work.join("roots").join(&rt.name)
    }

    /// A progress line.
    pub fn say(&self, msg: &str) {
        if self.progress {
            eprintln!("# {msg}");
        }
    }

    /// A fresh scratch subdirectory.
    pub fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.work.join(name);
        std::fs::create_dir_all(&d).map_err(|e| anyhow::anyhow!("create {}: {e}", d.display()))?;
        Ok(d)
    }

    /// Lifecycle baselines: crun when measured, else warren-runtime.
    pub fn runtime_baselines(&self) -> Vec<&'static str> {
        vec!["crun", WARREN]
    }
}

/// One place a probe workload runs: the host, or a runtime with a bundle.
#[derive(Debug, Clone)]
pub struct Config {
    /// Row name (`host`, `warren-runtime agent`, `crun podman-seccomp`).
    pub subject: String,
    /// The runtime, for containers.
    pub runtime: Option<String>,
    /// Where it runs.
    pub target: Target,
}

impl Config {
    /// The host.
    pub fn host() -> Config {
        Config {
            subject: "host".into(),
            runtime: None,
            target: Target::Host,
        }
    }

    /// A container of `rt` running a probe bundle made with `opts` in `ctx.work/<dir>`.
    pub fn container(
        ctx: &Ctx,
        rt: &Runtime,
        label: Option<&str>,
        dir: &str,
        opts: &BundleOpts,
    ) -> anyhow::Result<Config> {
        let probe = ctx.probe.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let root = ctx.root(rt);
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", root.display()))?;
        let bundle = probe::make_bundle(
            &ctx.work.join("bundles").join(dir),
            &ctx.warren().path,
            probe,
            opts,
        )?;
        Ok(Config {
            subject: match label {
                Some(l) => format!("{} {l}", rt.name),
                None => rt.name.clone(),
            },
            runtime: Some(rt.name.clone()),
            target: Target::Container {
                runtime: rt.clone(),
                root,
                bundle,
            },
        })
    }
}

/// Runs the probe with `args(config)` on every configuration, `rounds` times in turn (round 1 of
/// each, then round 2 of each...), so that machine drift hits all alike. A configuration
/// that fails once is not run again and is reported as failed, with its error.
pub fn interleave(
    ctx: &Ctx,
    configs: &[Config],
    rounds: usize,
    args: &dyn Fn(&Config) -> Vec<String>,
    group: &str,
    unit: &str,
    higher_is_better: bool,
) -> Vec<Measurement> {
    let Ok(probe) = ctx.probe.as_ref() else {
        return Vec::new();
    };
    interleave_with(
        configs,
        rounds,
        &|c| probe::run(probe, &c.target, &args(c)),
        group,
        unit,
        higher_is_better,
    )
}

/// [`interleave`] with another workload: `run(config)` returns the timed samples of one
/// run on `config` (the GPU suite runs its own probe this way).
pub fn interleave_with(
    configs: &[Config],
    rounds: usize,
    run: &dyn Fn(&Config) -> anyhow::Result<Vec<f64>>,
    group: &str,
    unit: &str,
    higher_is_better: bool,
) -> Vec<Measurement> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut errors: Vec<Option<String>> = vec![None; configs.len()];
    for _ in 0..rounds.max(1) {
        for (i, c) in configs.iter().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            match run(c) {
                Ok(s) => samples[i].extend(s),
                Err(e) => errors[i] = Some(format!("{e:#}")),
            }
        }
    }
    configs
        .iter()
        .zip(samples.into_iter().zip(errors))
        .map(|(c, (s, e))| {
            let mut m = Measurement::new(group, &c.subject, unit, higher_is_better);
            if let Some(rt) = &c.runtime {
                m = m.runtime(rt);
            }
            match e {
                Some(e) => m.fail(e),
                None => m.samples(s, 0, None),
            }
        })
        .collect()
}

/// Probe arguments from string slices and numbers.
pub fn args(parts: &[&dyn std::fmt::Display]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Builds configurations, keeping the ones that could be made and noting the others.
pub fn collect_configs(
    suite: &mut Suite,
    made: Vec<(String, anyhow::Result<Config>)>,
) -> Vec<Config> {
    let mut out = Vec::new();
    for (what, r) in made {
        match r {
            Ok(c) => out.push(c),
            Err(e) => suite.notes.push(format!("{what}: not measured: {e:#}")),
        }
    }
    out
}

/// The probe, or a skipped suite saying why there is none.
pub fn need_probe<'a>(ctx: &'a Ctx, suite: &Suite) -> Result<&'a Probe, Box<Suite>> {
    ctx.probe.as_ref().map_err(|e| {
        Box::new(Suite::skipped(
            &suite.name,
            &suite.title,
            &suite.method,
            format!("no probe: {e}"),
        ))
    })
}

/// This process's hard limit for `RLIMIT_<NAME>` (`None` for unknown names).
fn hard_limit(name: &str) -> Option<u64> {
    let res = match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    };
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a live, writable `rlimit`; getrlimit only writes it.
    let rc = unsafe { libc::getrlimit(res, &mut r) };
    (rc == 0).then_some(r.rlim_max)
}

/// The `warren.dev/profile` value for built-in profile `name`, and the subject label.
///
/// A profile that sets a resource limit above this process's hard limit cannot start where
/// the harness may not raise its own (no `CAP_SYS_RESOURCE`, as in some VMs and CI
/// sandboxes): the runtime fails at `setrlimit`. Then the profile is measured through a
/// derived file (`extends = NAME`, those limits capped at the current hard limits) written
/// to the scratch directory; its seccomp filter and Landlock ruleset are the built-in's,
/// and the label (`NAME*`) and `suite.notes` say so.
pub fn profile_for(ctx: &Ctx, name: &str, suite: &mut Suite) -> (String, String) {
    let Ok(p) = warren_sandbox::profile::load_builtin(name) else {
        return (name.to_owned(), name.to_owned());
    };
    let mut capped = Vec::new();
    for (res, lim) in &p.rlimits {
        if let Some(have) = hard_limit(res)
            && lim.hard > have
        {
            capped.push((res.clone(), lim.soft.min(have), have));
        }
    }
    if capped.is_empty() {
        return (name.to_owned(), name.to_owned());
    }
    let path = ctx.work.join(format!("profile-{name}-capped.toml"));
    let mut text = format!(
        "# {name} with resource limits capped at this machine's hard limits\n\
         extends = \"{name}\"\ndescription = \"{name}, limits capped\"\n\n[rlimits]\n"
    );
    let mut what = Vec::new();
    for (res, soft, hard) in &capped {
        let key = res.trim_start_matches("RLIMIT_").to_ascii_lowercase();
        text.push_str(&format!("{key} = {{ soft = {soft}, hard = {hard} }}\n"));
        what.push(format!("{key} {hard}"));
    }
    if std::fs::write(&path, text).is_err() {
        return (name.to_owned(), name.to_owned());
    }
    let note = format!(
        "profile {name} asks for resource limits above this process's hard limits, which it \
         may not raise: measured as `{name}*`, a file extending it with {} (same seccomp \
         filter and Landlock ruleset)",
        what.join(", ")
    );
    if !suite.notes.contains(&note) {
        suite.notes.push(note);
    }
    (path.display().to_string(), format!("{name}*"))
}
