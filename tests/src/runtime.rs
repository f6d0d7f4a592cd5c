//! A runtime under test (warren-runtime, or runc as the oracle) with its own private
//! `--root`, and the runc verbs as methods.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::bundle::Bundle;
use crate::command::{Invocation, Output, wait_until};
use crate::error::{HarnessError, Result};
use crate::ids::unique_id;

/// runc, the reference implementation (override with `E2E_RUNC`).
pub fn runc_binary() -> PathBuf {
    std::env::var_os("E2E_RUNC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"))
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_owned()
}

/// Finds the warren-runtime binary: `$WARREN_RUNTIME`, else the workspace's release
/// build, else its debug build.
pub fn warren_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("WARREN_RUNTIME") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(HarnessError::NoRuntime {
                tried: format!("WARREN_RUNTIME={}", p.display()),
            })
        };
    }
    let target = workspace_root().join("target");
    let candidates = [
        target.join("release/warren-runtime"),
        target.join("debug/warren-runtime"),
    ];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(HarnessError::NoRuntime {
        tried: candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// One runtime binary with a private state root (a temp dir removed on drop).
#[derive(Debug)]
pub struct Runtime {
    name: String,
    bin: PathBuf,
    root: TempDir,
}

/// Status of a container as `state` reports it, or `None` when `state` fails (no such
/// container).
pub type Status = Option<String>;

impl Runtime {
    /// warren-runtime, found by [`warren_binary`].
    pub fn warren() -> Result<Self> {
        Self::new("warren", warren_binary()?)
    }

    /// runc, the oracle.
    pub fn runc() -> Result<Self> {
        Self::new("runc", runc_binary())
    }

    /// Any runc-compatible binary, named `name` in messages.
    pub fn new(name: &str, bin: impl Into<PathBuf>) -> Result<Self> {
        if !nix::unistd::geteuid().is_root() {
            return Err(HarnessError::Other(
                "the e2e tests must run as root: they create namespaces, cgroups and mounts".into(),
            ));
        }
        let root = tempfile::Builder::new()
            .prefix(&format!("warren-e2e-root-{name}-"))
            .tempdir()
            .map_err(|e| HarnessError::io("create state root in", std::env::temp_dir(), e))?;
        Ok(Self {
            name: name.to_owned(),
            bin: bin.into(),
            root,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The private `--root`.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `BIN --root ROOT ARGS…`, ready to run.
    pub fn cmd<I, S>(&self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Invocation::new(&self.bin)
            .arg("--root")
            .arg(self.root())
            .args(args)
    }

    /// `create --bundle B ID`.
    pub fn create(&self, bundle: &Path, id: &str) -> Result<Output> {
        self.cmd(["create", "--bundle"])
            .arg(bundle)
            .arg(id)
            .output()
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Result<Output> {
        self.cmd(["start", id]).output()
    }

    /// `kill ID SIG`.
    pub fn kill(&self, id: &str, sig: &str) -> Result<Output> {
        self.cmd(["kill", id, sig]).output()
    }

    /// `delete ID`.
    pub fn delete(&self, id: &str) -> Result<Output> {
        self.cmd(["delete", id]).output()
    }

    /// `delete --force ID`.
    pub fn delete_force(&self, id: &str) -> Result<Output> {
        self.cmd(["delete", "--force", id]).output()
    }

    /// Foreground `run --bundle B ID` with a deadline.
    pub fn run(&self, bundle: &Path, id: &str, timeout: Duration) -> Result<Output> {
        self.cmd(["run", "--bundle"])
            .arg(bundle)
            .arg(id)
            .timeout(timeout)
            .output()
    }

    /// `state ID` parsed as JSON; fails when `state` fails.
    pub fn state(&self, id: &str) -> Result<serde_json::Value> {
        self.cmd(["state", id]).output()?.check()?.json()
    }

    /// The `status` field of `state ID`, or `None` when there is no such container.
    pub fn status(&self, id: &str) -> Result<Status> {
        let out = self.cmd(["state", id]).output()?;
        if !out.success() {
            return Ok(None);
        }
        Ok(out
            .json()?
            .get("status")
            .and_then(|s| s.as_str())
            .map(str::to_owned))
    }

    /// Polls `state` until the status is `want`.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Result<()> {
        let mut last: Status = None;
        let mut err = None;
        let ok = wait_until(timeout, Duration::from_millis(20), || {
            match self.status(id) {
                Ok(s) => last = s,
                Err(e) => err = Some(e),
            }
            err.is_some() || last.as_deref() == Some(want)
        });
        if let Some(e) = err {
            return Err(e);
        }
        if ok {
            Ok(())
        } else {
            Err(HarnessError::WaitTimeout {
                what: format!(
                    "{} container {id} to be {want} (last status: {last:?})",
                    self.name
                ),
                after: timeout,
            })
        }
    }

    /// Entries left in the state root (container directories, stray files).
    pub fn state_entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    /// Creates and starts a container running `args` in a fresh bundle edited by `edit`;
    /// it is force-deleted when the returned value is dropped.
    pub fn start_container(
        &self,
        tag: &str,
        args: &[&str],
        edit: impl FnOnce(&mut Bundle) -> Result<()>,
    ) -> Result<Container<'_>> {
        let mut bundle = Bundle::new()?;
        bundle.set_args(args);
        edit(&mut bundle)?;
        bundle.save()?;
        let id = unique_id(tag);
        let guard = self.guard(&id);
        self.create(bundle.path(), &id)?.check()?;
        self.start(&id)?.check()?;
        Ok(Container { guard, id, bundle })
    }

    /// A guard that force-deletes container `id` when dropped.
    pub fn guard(&self, id: &str) -> ContainerGuard<'_> {
        ContainerGuard {
            rt: self,
            id: id.to_owned(),
            armed: true,
        }
    }
}

/// Force-deletes a container on drop, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct ContainerGuard<'a> {
    rt: &'a Runtime,
    id: String,
    armed: bool,
}

impl ContainerGuard<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container is gone already: do nothing on drop.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = self
            .rt
            .cmd(["delete", "--force", &self.id])
            .timeout(Duration::from_secs(20))
            .output();
    }
}

/// A started container, force-deleted on drop (the bundle is removed after it).
#[derive(Debug)]
pub struct Container<'a> {
    // Fields drop in order: the container goes before its bundle.
    guard: ContainerGuard<'a>,
    pub id: String,
    pub bundle: Bundle,
}

impl Container<'_> {
    /// The init's host pid, from `state`.
    pub fn pid(&self) -> Result<i64> {
        let st = self.guard.rt.state(&self.id)?;
        st["pid"].as_i64().ok_or_else(|| {
            HarnessError::Other(format!("state of {} has no numeric pid: {st}", self.id))
        })
    }

    /// The runtime that runs it.
    pub fn runtime(&self) -> &Runtime {
        self.guard.rt
    }
}
