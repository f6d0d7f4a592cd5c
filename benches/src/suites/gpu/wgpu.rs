//! `wgpu`, the workload of the GPU suite: a small C program (`probe/wgpu.c`) that drives
//! the GPU through the CUDA driver API alone (dlopen of `libcuda.so.1`, a PTX kernel the
//! driver compiles), built with gcc at bench time. Unlike `wprobe` it is dynamically
//! linked, since the driver library needs glibc: its container rootfs holds copies of the
//! host's glibc libraries, as a CUDA base image would, and the runtime injects the driver.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::probe::{Target, parse_samples};
use crate::{bundle, container};

/// The probe's C source.
pub const SOURCE: &str = include_str!("../../../probe/wgpu.c");

/// Where the probe lives inside a GPU bundle's rootfs.
pub const IN_CONTAINER: &str = "/bin/wgpu";

/// How long one probe run may take (driver start-up and the PTX JIT included).
pub const DEADLINE: Duration = Duration::from_secs(180);

/// What a GPU container asks warren-runtime for: every GPU, with the compute libraries
/// (`utility` adds nvidia-smi and NVML, as the NVIDIA CUDA images ask).
pub const GPU_ENV: [&str; 2] = [
    "NVIDIA_VISIBLE_DEVICES=all",
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
];

/// glibc libraries that libcuda and the driver's PTX JIT compiler load, copied into the
/// rootfs beside the probe's own (from the directory of the host's `libc.so.6`) when the
/// host has them.
const DRIVER_DEPS: [&str; 5] = [
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libgcc_s.so.1",
];

/// A compiled GPU probe.
#[derive(Debug, Clone)]
pub struct GpuProbe {
    /// The dynamically linked binary.
    pub path: PathBuf,
}

impl GpuProbe {
    /// Compiles the probe into `dir` with the first of `gcc` and `cc` that succeeds.
    pub fn build(dir: &Path) -> Result<GpuProbe> {
        let path =
            crate::probe::compile_c(dir, "wgpu", SOURCE, &["-O2", "-Wall"], &["-ldl", "-lm"])
                .context(
                    "compile the GPU probe with `gcc -O2 ... -ldl` (install gcc and libc6-dev)",
                )?;
        Ok(GpuProbe { path })
    }

    /// The shared libraries the probe and the driver need from the host, as the loader
    /// finds them: `ldd`'s list (the ELF interpreter included), then [`DRIVER_DEPS`]
    /// from the directory of `libc.so.6`.
    pub fn host_libraries(&self) -> Result<Vec<PathBuf>> {
        let mut cmd = Command::new("ldd");
        cmd.arg(&self.path);
        let out = container::run_command(cmd, "ldd", Duration::from_secs(30))?;
        let mut libs = parse_ldd(&out);
        let Some(libc_dir) = libs
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == "libc.so.6"))
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
        else {
            bail!(
                "ldd {}: no libc.so.6 in {:?}",
                self.path.display(),
                container::tail(&out, 3)
            );
        };
        for name in DRIVER_DEPS {
            let p = libc_dir.join(name);
            if p.exists() && !libs.contains(&p) {
                libs.push(p);
            }
        }
        Ok(libs)
    }
}

/// The absolute library paths in `ldd` output: `name => /path (0x…)` and the
/// interpreter's `/path (0x…)`; `linux-vdso.so.1 (0x…)` and unresolved names are skipped.
fn parse_ldd(out: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            let p = PathBuf::from(p);
            if !libs.contains(&p) {
                libs.push(p);
            }
        }
    }
    libs
}

/// Fills `rootfs` (a busybox rootfs) for the probe: the probe at [`IN_CONTAINER`], each of
/// `libs` copied (its contents, not a symlink) to the same path inside, and an
/// `/etc/ld.so.conf` that reads the runtime's `ld.so.conf.d` entry for the driver.
pub fn fill_rootfs(rootfs: &Path, probe: &GpuProbe, libs: &[PathBuf]) -> Result<()> {
    let target = rootfs.join(IN_CONTAINER.trim_start_matches('/'));
    std::fs::copy(&probe.path, &target)
        .with_context(|| format!("copy the GPU probe to {}", target.display()))?;
    for lib in libs {
        let dest = rootfs.join(lib.strip_prefix("/").unwrap_or(lib));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::copy(lib, &dest)
            .with_context(|| format!("copy {} to {}", lib.display(), dest.display()))?;
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(etc.join("ld.so.conf.d"))
        .with_context(|| format!("create {}", etc.join("ld.so.conf.d").display()))?;
    let conf = etc.join("ld.so.conf");
    std::fs::write(&conf, "include /etc/ld.so.conf.d/*.conf\n")
        .with_context(|| format!("write {}", conf.display()))?;
    Ok(())
}

/// Makes a GPU bundle in `dir` (with `warren spec`): a busybox rootfs filled by
/// [`fill_rootfs`] with the host's libraries, asking for the GPUs with [`GPU_ENV`]. The
/// rootfs is writable, as in a default engine container: the runtime links the driver
/// libraries and refreshes the ld cache in it.
pub fn make_bundle(dir: &Path, warren: &Path, probe: &GpuProbe) -> Result<PathBuf> {
    let libs = probe.host_libraries()?;
    let b = bundle::make(dir, warren, &[IN_CONTAINER, "info"])?;
    fill_rootfs(&b.join("rootfs"), probe, &libs)?;
    bundle::edit_config(&b, |c| {
        c["root"]["readonly"] = json!(false);
        let mut env: Vec<serde_json::Value> =
            c["process"]["env"].as_array().cloned().unwrap_or_default();
        env.extend(GPU_ENV.iter().map(|e| json!(e)));
        c["process"]["env"] = json!(env);
        Ok(())
    })?;
    Ok(b)
}

/// Runs the probe with `args` on `target`; returns what it printed on stdout.
fn output(probe: &GpuProbe, target: &Target, args: &[String]) -> Result<String> {
    crate::probe::output_of(&probe.path, IN_CONTAINER, "wgpu", target, args, DEADLINE)
}

/// Runs the probe with `args` (a timed sub-command) on `target`; returns the timed
/// samples (the warm-up dropped).
pub fn run(probe: &GpuProbe, target: &Target, args: &[String]) -> Result<Vec<f64>> {
    parse_samples(&output(probe, target, args)?)
}

/// `wgpu info` on `target`: the name CUDA gives device 0, proving that the driver opens,
/// initialises and makes a context there.
pub fn info(probe: &GpuProbe, target: &Target) -> Result<String> {
    let out = output(probe, target, &["info".to_owned()])?;
    out.lines()
        .find_map(|l| l.strip_prefix("device "))
        .map(|n| n.trim().to_owned())
        .with_context(|| {
            format!(
                "wgpu info printed no device: {:?}",
                container::tail(&out, 2)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The symbols the probe looks up, returning success except where a test says.
    const STUB: &str = r#"
int cuInit(unsigned int f) { (void)f; return STUB_INIT; }
int cuDeviceGet(int *d, int i) { (void)i; *d = 0; return 0; }
int cuDeviceGetName(char *n, int l, int d) { (void)l; (void)d; n[0] = 0; return 0; }
int cuCtxCreate_v2(void **c, unsigned int f, int d) { (void)f; (void)d; *c = 0; return 0; }
int cuCtxDestroy_v2(void *c) { (void)c; return 0; }
int cuCtxSynchronize(void) { return 0; }
int cuMemAlloc_v2(unsigned long long *p, unsigned long n) { (void)n; *p = 0; return 0; }
int cuMemFree_v2(unsigned long long p) { (void)p; return 0; }
int cuMemcpyHtoD_v2(unsigned long long d, const void *s, unsigned long n) { (void)d; (void)s; (void)n; return 0; }
int cuMemcpyDtoH_v2(void *d, unsigned long long s, unsigned long n) { (void)d; (void)s; (void)n; return 0; }
int cuModuleLoadDataEx(void **m, const void *i, unsigned int n, int *o, void **v) { (void)m; (void)i; (void)n; (void)o; (void)v; return 0; }
int cuModuleGetFunction(void **f, void *m, const char *n) { (void)f; (void)m; (void)n; return 0; }
int cuModuleUnload(void *m) { (void)m; return 0; }
int cuLaunchKernel(void *f, unsigned a, unsigned b, unsigned c, unsigned d, unsigned e, unsigned g, unsigned s, void *st, void **p, void **x) { (void)f; (void)a; (void)b; (void)c; (void)d; (void)e; (void)g; (void)s; (void)st; (void)p; (void)x; return 0; }
int cuGetErrorName(int e, const char **s) { *s = e == 100 ? "CUDA_ERROR_NO_DEVICE" : "?"; return 0; }
"#;

    /// A built probe in a fresh directory, or `None` (with a note) where there is no gcc;
    /// where there is one, the probe must build.
    fn built() -> Option<(tempfile::TempDir, GpuProbe)> {
        if Command::new("gcc").arg("--version").output().is_err() {
            eprintln!("skipped: no gcc");
            return None;
        }
        let d = tempfile::tempdir().ok()?;
        match GpuProbe::build(d.path()) {
            Ok(p) => Some((d, p)),
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn the_probe_compiles_without_warnings() {
        let Some((d, _)) = built() else { return };
        let o = Command::new("gcc")
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(d.path().join("wgpu-strict"))
            .arg(d.path().join("wgpu.c"))
            .args(["-ldl", "-lm"])
            .output();
        let o = match o {
            Ok(o) => o,
            Err(e) => panic!("run gcc: {e}"),
        };
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Builds a stub `libcuda.so.1` whose `cuInit` returns `init` into `dir`.
    fn stub_libcuda(dir: &Path, init: i32) -> Result<PathBuf> {
        let src = dir.join("stub.c");
        let lib = dir.join("libcuda.so.1");
        std::fs::write(&src, STUB.replace("STUB_INIT", &init.to_string()))?;
        let o = Command::new("gcc")
            .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
            .arg(&lib)
            .arg(&src)
            .output()?;
        if !o.status.success() {
            bail!("gcc: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(lib)
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ldd_output_gives_absolute_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffc)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0)\n\
                   \tlibfoo.so.1 => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f1)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn without_libcuda_the_probe_fails_naming_it() {
        let Some((_d, p)) = built() else { return };
        // A directory with no libcuda first on the search path: this machine has no
        // driver, and a machine with one must not find it through LD_LIBRARY_PATH either.
        if Path::new("/dev/nvidiactl").exists() {
            eprintln!("skipped: this machine has an NVIDIA driver");
            return;
        }
        for args in [strs(&["info"]), strs(&["matmul", "64", "2"])] {
            let e = run(&p, &Target::Host, &args)
                .err()
                .map(|e| format!("{e:#}"));
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("cannot open libcuda.so.1")),
                "{e:?}"
            );
        }
        let e = run(&p, &Target::Host, &strs(&["copy", "sideways", "1", "2"]))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(e.is_some_and(|e| e.contains("usage: wgpu")));
    }

    #[test]
    fn a_driver_without_a_device_fails_at_cuinit() {
        let Some((d, p)) = built() else { return };
        let lib = match stub_libcuda(d.path(), 100) {
            Ok(l) => l,
            Err(e) => panic!("build the stub libcuda: {e:#}"),
        };
        let mut cmd = Command::new(&p.path);
        cmd.args(["matmul", "64", "2"])
            .env("LD_LIBRARY_PATH", lib.parent().unwrap_or(d.path()));
        let e = container::run_command(cmd, "wgpu", Duration::from_secs(30))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            e.as_deref().is_some_and(|e| e.contains("exit status: 1")
                && e.contains("error: cuInit returned 100 (CUDA_ERROR_NO_DEVICE)")),
            "{e:?}"
        );
    }

    #[test]
    fn the_rootfs_runs_the_probe_with_the_copied_glibc() {
        // chroot needs root; the harness runs as root.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let Some((d, p)) = built() else { return };
        let libs = match p.host_libraries() {
            Ok(l) => l,
            Err(e) => panic!("{e:#}"),
        };
        assert!(libs.iter().any(|l| l.ends_with("libc.so.6")), "{libs:?}");
        let rootfs = d.path().join("rootfs");
        let made = std::fs::create_dir_all(rootfs.join("bin"))
            .map_err(anyhow::Error::from)
            .and_then(|()| fill_rootfs(&rootfs, &p, &libs));
        assert!(made.is_ok(), "{made:?}");
        let chroot = |args: &[&str]| {
            let mut cmd = Command::new("chroot");
            cmd.arg(&rootfs).arg(IN_CONTAINER).args(args);
            container::run_command(cmd, "wgpu in the rootfs", Duration::from_secs(30))
                .err()
                .map(|e| format!("{e:#}"))
        };
        // No driver in the rootfs: the probe starts (so glibc is complete) and says so.
        let e = chroot(&["info"]);
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("cannot open libcuda.so.1")),
            "{e:?}"
        );
        // A driver where the runtime puts it is found by the loader's default search.
        let Some(libc_dir) = libs
            .iter()
            .find(|l| l.ends_with("libc.so.6"))
            .and_then(|l| l.parent())
        else {
            return;
        };
        let in_root = rootfs.join(libc_dir.strip_prefix("/").unwrap_or(libc_dir));
        assert!(stub_libcuda(&in_root, 100).is_ok());
        let e = chroot(&["copy", "htod", "1", "2"]);
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("cuInit returned 100")),
            "{e:?}"
        );
    }
}
