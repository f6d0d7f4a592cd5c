//! The binaries the test drives, found once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Paths of everything the test runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `$WARREN_RUNTIME`, else the newest workspace build (`target/{bin,release,debug}`).
    pub warren_runtime: PathBuf,
    /// `$WARREN_CLI`, else the same search for `warren`.
    pub warren: PathBuf,
    pub runc: PathBuf,
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub umoci: PathBuf,
    pub busybox: PathBuf,
    /// For the static pause binary; `None`: the pause image runs busybox `sleep`.
    pub gcc: Option<PathBuf>,
    pub ip: PathBuf,
    /// Where Debian's CNI plugins are (bridge, host-local, loopback).
    pub cni_bin_dir: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One of warren's binaries: `$ENV`, else the newest of the workspace's `target/bin`,
/// `target/release` and `target/debug` builds.
pub fn ours(env: &str, name: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(std::path::absolute(&p).unwrap_or(p))
        } else {
            Err(Error::Other(format!(
                "${env} = {} is not a file",
                p.display()
            )))
        };
    }
    // The newest build wins: a stale release binary must not shadow a fresh debug one.
    let ws = workspace();
    let newest = ["target/bin", "target/release", "target/debug"]
        .iter()
        .map(|dir| ws.join(dir).join(name))
        .filter_map(|p| {
            let t = std::fs::metadata(&p).ok()?.modified().ok()?;
            Some((t, p))
        })
        .max_by_key(|(t, _)| *t);
    if let Some((_, p)) = newest {
        return Ok(std::path::absolute(&p).unwrap_or(p));
    }
    Err(Error::Other(format!(
        "{name} not found: set ${env} or build it (./scripts/build.sh)"
    )))
}

/// First of `names` found on a standard PATH.
pub fn which(names: &[&str]) -> Option<PathBuf> {
    let dirs = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| Path::new(d).join(n)))
        .find(|p| p.is_file())
}

fn need(names: &[&str], package: &str) -> Result<PathBuf> {
    which(names).ok_or_else(|| {
        Error::Other(format!(
            "{} not found: install the Debian package {package} (scripts/deps.sh)",
            names[0]
        ))
    })
}

impl Binaries {
    /// Finds everything; the error names what is missing and where it comes from.
    pub fn find() -> Result<Self> {
        let cni_bin_dir = ["/usr/lib/cni", "/opt/cni/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|d| {
                ["bridge", "host-local", "loopback"]
                    .iter()
                    .all(|p| d.join(p).is_file())
            })
            .ok_or_else(|| {
                Error::Other(
                    "CNI plugins bridge, host-local, loopback not found in /usr/lib/cni: install \
                     containernetworking-plugins"
                        .into(),
                )
            })?;
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Other("busybox not found: install busybox-static".into()))?;
        Ok(Self {
            warren_runtime: ours("WARREN_RUNTIME", "warren-runtime")?,
            warren: ours("WARREN_CLI", "warren")?,
            runc: need(&["runc"], "runc")?,
            containerd: need(&["containerd"], "containerd")?,
            ctr: need(&["ctr"], "containerd")?,
            umoci: need(&["umoci"], "umoci")?,
            busybox,
            gcc: which(&["gcc"]),
            ip: need(&["ip"], "iproute2")?,
            cni_bin_dir,
        })
    }
}

/// Output of a finished command.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with a timeout (killed after it); stdin is /dev/null.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let dir = tempfile::tempdir().map_err(crate::error::io("create temp dir", "/tmp"))?;
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let f = |p: &Path| std::fs::File::create(p).map_err(crate::error::io("create", p));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(f(&o)?)
        .stderr(f(&e)?)
        .spawn()
        .map_err(|e| Error::Command {
            cmd: shown.clone(),
            msg: e.to_string(),
        })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Command {
                    cmd: shown,
                    msg: format!("no exit after {timeout:?}"),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(Error::Command {
                    cmd: shown,
                    msg: e.to_string(),
                });
            }
        }
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Ok(Output {
        status: status
            .code()
            .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)),
        stdout: read(&o),
        stderr: read(&e),
    })
}

/// Runs `cmd` and requires exit status 0.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = run(cmd, timeout)?;
    if out.status != 0 {
        return Err(Error::Command {
            cmd: shown,
            msg: format!(
                "exit {}: {}{}",
                out.status,
                out.stderr.trim(),
                out.stdout.trim()
            ),
        });
    }
    Ok(out)
}
