//! `wprobe`, the workload of the syscall, file system, network and CPU suites: a small C
//! program (`probe/wprobe.c`) compiled with `gcc -O2 -static` at bench time, so that the
//! same binary runs on the host and in a busybox rootfs. Each sub-command prints one
//! `sample VALUE` line per timed repetition; the first repetition is a warm-up and is
//! dropped here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bundle;
use crate::container;
use crate::lifecycle::Runtime;

/// The probe's C source.
pub const SOURCE: &str = include_str!("../probe/wprobe.c");

/// Where the probe lives inside a probe bundle's rootfs.
pub const IN_CONTAINER: &str = "/bin/wprobe";

/// How long one probe run may take before it is killed and reported as failed.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// A compiled probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The static binary.
    pub path: PathBuf,
}

impl Probe {
    /// Compiles the probe into `dir` with the first of `gcc` and `cc` that succeeds.
    pub fn build(dir: &Path) -> Result<Probe> {
        let path = compile_c(dir, "wprobe", SOURCE, &["-O2", "-static"], &[])
            .context("compile the probe with `gcc -O2 -static` (install gcc and libc6-dev)")?;
        Ok(Probe { path })
    }
}

/// Writes `source` to `DIR/NAME.c` and compiles it to `DIR/NAME` with the first of `gcc`
/// and `cc` that succeeds (`flags` before the output, `libs` after the source). The error
/// gives the last lines of each compiler's complaint.
pub fn compile_c(
    dir: &Path,
    name: &str,
    source: &str,
    flags: &[&str],
    libs: &[&str],
) -> Result<PathBuf> {
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).with_context(|| format!("write {}", src.display()))?;
    let mut errors = Vec::new();
    for cc in ["gcc", "cc"] {
        let out = Command::new(cc)
            .args(flags)
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .args(libs)
            .output();
        match out {
            Ok(o) if o.status.success() => return Ok(bin),
            Ok(o) => errors.push(format!(
                "{cc}: {}",
                container::tail(&String::from_utf8_lossy(&o.stderr), 2)
            )),
            Err(e) => errors.push(format!("{cc}: {e}")),
        }
    }
    bail!("{}", errors.join("; "))
}

/// The `sample VALUE` lines of a probe's output, without the first (warm-up) one.
pub fn parse_samples(out: &str) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    for line in out.lines() {
        if let Some(x) = line.strip_prefix("sample ") {
            v.push(
                x.trim()
                    .parse::<f64>()
                    .with_context(|| format!("parse probe output {line:?}"))?,
            );
        }
    }
    if v.len() < 2 {
        bail!(
            "the probe printed {} samples (expected at least 2): {}",
            v.len(),
            container::tail(out, 2)
        );
    }
    v.remove(0);
    Ok(v)
}

/// How a probe bundle differs from the plain one.
#[derive(Debug, Clone, Default)]
pub struct BundleOpts {
    /// `warren.dev/profile` annotation (only warren-runtime reads it).
    pub profile: Option<String>,
    /// podman's default seccomp profile as `linux.seccomp`.
    pub podman_seccomp: bool,
    /// Use this directory as the rootfs instead of the bundle's own.
    pub rootfs: Option<PathBuf>,
    /// Read-only bind mounts: (host path, container path).
    pub binds: Vec<(PathBuf, String)>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: Option<String>,
}

/// Makes a busybox bundle in `dir` (with `warren spec`) holding the probe at
/// [`IN_CONTAINER`], edited as `opts` says.
pub fn make_bundle(dir: &Path, warren: &Path, probe: &Probe, opts: &BundleOpts) -> Result<PathBuf> {
    let b = bundle::make(dir, warren, &["/bin/true"])?;
    let target = dir.join("rootfs/bin/wprobe");
    std::fs::copy(&probe.path, &target)
        .with_context(|| format!("copy the probe to {}", target.display()))?;
    for (_, dest) in &opts.binds {
        let d = dir.join("rootfs").join(dest.trim_start_matches('/'));
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
    }
    if opts.podman_seccomp {
        bundle::add_default_seccomp(&b)?;
    }
    bundle::edit_config(&b, |c| {
        if let Some(p) = &opts.profile {
            c["annotations"]["warren.dev/profile"] = json!(p);
        }
        if let Some(r) = &opts.rootfs {
            c["root"]["path"] = json!(r);
        }
        if let Some(cg) = &opts.cgroups_path {
            c["linux"]["cgroupsPath"] = json!(cg);
        }
        if let Some(mounts) = c["mounts"].as_array_mut() {
            for (src, dest) in &opts.binds {
                mounts.push(json!({
                    "destination": dest,
                    "type": "bind",
                    "source": src,
                    "options": ["rbind", "ro", "nosuid", "nodev"],
                }));
            }
        }
        Ok(())
    })?;
    Ok(b)
}

/// Sets the bundle's `process.args`.
pub fn set_args(bundle: &Path, args: &[String]) -> Result<()> {
    bundle::edit_config(bundle, |c| {
        c["process"]["args"] = json!(args);
        Ok(())
    })
}

/// Where a probe runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// Directly on the host.
    Host,
    /// In a container of `bundle`, created by `runtime` with its state under `root`.
    Container {
        /// The runtime.
        runtime: Runtime,
        /// Its state root.
        root: PathBuf,
        /// The bundle.
        bundle: PathBuf,
    },
}

/// Runs a probe binary with `args` on `target` (on the host: `host_path`; in a
/// container: `in_container` in the bundle's rootfs) and returns what it printed on
/// stdout, killing it after `deadline`.
pub fn output_of(
    host_path: &Path,
    in_container: &str,
    what: &str,
    target: &Target,
    args: &[String],
    deadline: Duration,
) -> Result<String> {
    match target {
        Target::Host => {
            let mut cmd = Command::new(host_path);
            cmd.args(args);
            container::run_command(cmd, &format!("{what} on the host"), deadline)
        }
        Target::Container {
            runtime,
            root,
            bundle,
        } => {
            let mut full = vec![in_container.to_owned()];
            full.extend(args.iter().cloned());
            set_args(bundle, &full)?;
            container::run_to_completion(runtime, root, bundle, deadline)
        }
    }
}

/// Runs the probe with `args` (a sub-command and its arguments) on `target`; returns the
/// timed samples.
pub fn run(probe: &Probe, target: &Target, args: &[String]) -> Result<Vec<f64>> {
    let out = output_of(&probe.path, IN_CONTAINER, "wprobe", target, args, DEADLINE)?;
    parse_samples(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_drop_the_warmup() {
        let s = parse_samples("sample 9.5\nsample 1.0\nnoise\nsample 2\n").ok();
        assert_eq!(s, Some(vec![1.0, 2.0]));
        assert!(parse_samples("sample 1\n").is_err());
        assert!(parse_samples("sample x\nsample 1\n").is_err());
    }

    #[test]
    fn probe_builds_and_runs_on_the_host() {
        let Ok(d) = tempfile::tempdir() else { return };
        let p = match Probe::build(d.path()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped: {e:#}");
                return;
            }
        };
        let args: Vec<String> = ["getpid", "1000", "3"].map(String::from).to_vec();
        let s = run(&p, &Target::Host, &args).map_err(|e| format!("{e:#}"));
        assert_eq!(s.as_ref().map(Vec::len), Ok(2));
        let bad: Vec<String> = ["nosuchcommand"].map(String::from).to_vec();
        let e = run(&p, &Target::Host, &bad).err().map(|e| format!("{e:#}"));
        assert!(e.is_some_and(|e| e.contains("usage: wprobe")));
    }
}
