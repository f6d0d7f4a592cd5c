//! GPU: when NVML finds an NVIDIA GPU, an fp32 matrix product and host↔device copies in a
//! warren-runtime container that asks for the GPUs, against the same on the host. Without
//! a GPU the suite is skipped, saying why; with one but no working CUDA driver (or no
//! compiler for the probe) it fails with the error.
//!
//! Not yet run on a real GPU: the probe's CUDA path is checked here only up to the
//! driver's first error (tests use a stub `libcuda.so.1` with no device).

pub mod wgpu;

use anyhow::Result;
use warren_gpu::nvidia::{Discovery, Inventory, NvidiaRoots, discover};

use self::wgpu::GpuProbe;
use super::{Config, Ctx, collect_configs, interleave_with};
use crate::probe::Target;
use crate::results::Suite;

const NAME: &str = "gpu";
const TITLE: &str = "GPU";
const METHOD: &str = "NVML discovery (warren_gpu::nvidia::discover on the host's roots); \
with a GPU, `wgpu` (a C probe built with gcc that dlopens libcuda.so.1 and uses only the \
CUDA driver API) on device 0: an N×N fp32 matrix product, one thread per element of C \
(a naive PTX kernel JIT-compiled by the driver; some elements checked against the CPU), \
in GFLOP/s; and copies of pageable host memory to the device and back, in GB/s (10⁹ \
bytes/s), each timed from the call to cuCtxSynchronize. Host against warren-runtime, whose \
container has the host's glibc in a busybox rootfs and asks for the GPUs with \
NVIDIA_VISIBLE_DEVICES=all, NVIDIA_DRIVER_CAPABILITIES=compute,utility (warren-runtime \
injects the driver itself, through CDI generated at create time). runc and crun are not \
measured: they do not resolve that request themselves (an engine or the NVIDIA hook does). \
Interleaved rounds; the first repetition of each run (driver warm-up) is dropped. \
Ratio: median over the host's median (≈ 1.0 expected).";

/// The group of the matrix product.
pub const GROUP_MATMUL: &str = "fp32 matrix product (naive kernel)";
/// The group of host-to-device copies.
pub const GROUP_HTOD: &str = "copy host → device (pageable)";
/// The group of device-to-host copies.
pub const GROUP_DTOH: &str = "copy device → host (pageable)";

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    ctx.say("gpu: NVML discovery");
    match discover(&NvidiaRoots::host()) {
        Ok(Discovery::Absent { reason }) => Ok(Suite::skipped(
            NAME,
            TITLE,
            METHOD,
            format!("no NVIDIA GPU ({reason})"),
        )),
        Err(e) => Ok(Suite::skipped(
            NAME,
            TITLE,
            METHOD,
            format!("no NVIDIA GPU (NVML: {e})"),
        )),
        Ok(Discovery::Found(inv)) => measure(ctx, &inv),
    }
}

/// What NVML found, for the notes.
fn describe(inv: &Inventory) -> String {
    let names: Vec<String> = inv
        .gpus
        .iter()
        .map(|g| format!("{} {}", g.index, g.name))
        .collect();
    format!(
        "NVML: {} (driver {})",
        if names.is_empty() {
            "no GPU listed".to_owned()
        } else {
            names.join(", ")
        },
        inv.driver_version
    )
}

/// The suite on a machine where NVML found `inv`.
fn measure(ctx: &Ctx, inv: &Inventory) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    suite.notes.push(describe(inv));
    let probe = match ctx.dir("gpu-probe").and_then(|d| GpuProbe::build(&d)) {
        Ok(p) => p,
        Err(e) => return Ok(failed(&suite, format!("{e:#}"))),
    };
    ctx.say("gpu: CUDA driver check on the host");
    match wgpu::info(&probe, &Target::Host) {
        Ok(name) => suite
            .notes
            .push(format!("CUDA device 0 on the host: {name}")),
        Err(e) => {
            return Ok(failed(
                &suite,
                format!("NVIDIA GPU found, but CUDA does not work on the host: {e:#}"),
            ));
        }
    }
    let w = ctx.warren();
    let container = (|| {
        let root = ctx.root(w);
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", root.display()))?;
        let bundle = wgpu::make_bundle(
            &ctx.work.join("bundles").join("gpu-warren"),
            &w.path,
            &probe,
        )?;
        Ok(Config {
            subject: w.name.clone(),
            runtime: Some(w.name.clone()),
            target: Target::Container {
                runtime: w.clone(),
                root,
                bundle,
            },
        })
    })();
    let configs = collect_configs(
        &mut suite,
        vec![
            ("host".to_owned(), Ok(Config::host())),
            (w.name.clone(), container),
        ],
    );
    let s = ctx.sizes;
    let rounds = s.rounds.max(2);
    let reps = s.reps.max(2);
    let workloads: [(&str, Vec<String>, &str); 3] = [
        (
            GROUP_MATMUL,
            super::args(&[&"matmul", &s.gpu_matmul_n, &reps]),
            "GFLOP/s",
        ),
        (
            GROUP_HTOD,
            super::args(&[&"copy", &"htod", &s.gpu_copy_mib, &reps]),
            "GB/s",
        ),
        (
            GROUP_DTOH,
            super::args(&[&"copy", &"dtoh", &s.gpu_copy_mib, &reps]),
            "GB/s",
        ),
    ];
    for (group, args, unit) in workloads {
        ctx.say(&format!("gpu: {group}"));
        suite.measurements.extend(interleave_with(
            &configs,
            rounds,
            &|c| wgpu::run(&probe, &c.target, &args),
            group,
            unit,
            true,
        ));
        suite.set_baseline(group, &["host"]);
    }
    suite.notes.push(format!(
        "matrix order {}, {} MiB per copy, {} timed repetitions per run",
        s.gpu_matmul_n,
        s.gpu_copy_mib,
        reps - 1
    ));
    Ok(suite)
}

/// `suite` (its notes kept) as failed with `reason`: set up, but not timed.
fn failed(suite: &Suite, reason: String) -> Suite {
    Suite {
        notes: suite.notes.clone(),
        ..Suite::failed(&suite.name, &suite.title, &suite.method, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Level;
    use crate::lifecycle::Runtime;
    use crate::results::SuiteStatus;

    fn ctx(work: &std::path::Path) -> Ctx {
        Ctx {
            runtimes: vec![Runtime {
                name: "warren-runtime".into(),
                path: "/nonexistent/warren-runtime".into(),
            }],
            level: Level::Quick,
            sizes: Level::Quick.sizes(),
            work: work.to_owned(),
            probe: Err("not needed".into()),
            podman_profile: false,
            progress: false,
        }
    }

    #[test]
    fn a_gpu_without_a_working_driver_fails_the_suite_with_the_error() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            eprintln!("skipped: this machine has an NVIDIA driver");
            return;
        }
        let Ok(d) = tempfile::tempdir() else { return };
        let inv = Inventory {
            driver_version: "550.54.14".into(),
            cuda_driver_version: Some(12040),
            gpus: Vec::new(),
        };
        let s = measure(&ctx(d.path()), &inv);
        let s = match s {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(s.status, SuiteStatus::Failed, "{s:?}");
        assert!(s.measurements.is_empty());
        let reason = s.reason.unwrap_or_default();
        // Without gcc the reason is the compiler's; with it, the driver's.
        assert!(
            reason.contains("cannot open libcuda.so.1") || reason.contains("compile the GPU probe"),
            "{reason}"
        );
        assert!(s.notes.iter().any(|n| n.contains("driver 550.54.14")));
    }

    #[test]
    fn no_gpu_here_means_skipped_with_the_reason() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            eprintln!("skipped: this machine has an NVIDIA driver");
            return;
        }
        let Ok(d) = tempfile::tempdir() else { return };
        let s = run(&ctx(d.path()));
        assert!(
            s.as_ref().is_ok_and(|s| s.status == SuiteStatus::Skipped
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("no NVIDIA GPU"))),
            "{s:?}"
        );
    }
}
