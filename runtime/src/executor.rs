//! The last step inside the container's init: undo what the runtime process changed about
//! signals, then exec the workload.
//!
//! Two traps from the libcontainer probe live here: Rust ignores SIGPIPE and libcontainer
//! does not reset it, and the runtime blocks signals before cloning (so that a fast exit
//! is never lost) — both would leak into the workload without this executor.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask};

/// Hook run in the container init right before `execve`, after namespaces, rootfs,
/// credentials and (libcontainer's) seccomp are in place. Used by the sandbox layer.
pub trait PreExec: Send + Sync + std::fmt::Debug {
    /// Applies late confinement (e.g. Landlock); an error aborts the start.
    fn apply(&self) -> Result<(), String>;
}

/// Executor that restores the signal state, runs optional pre-exec confinement and execs.
#[derive(Clone, Debug)]
pub struct WarrenExecutor {
    /// The signal mask the runtime had before it blocked signals for the clone.
    pub sigmask: SigSet,
    /// Confinement applied just before exec.
    pub pre_exec: Option<std::sync::Arc<dyn PreExec>>,
}

impl WarrenExecutor {
    /// An executor restoring `sigmask`.
    pub fn new(sigmask: SigSet) -> Self {
        Self {
            sigmask,
            pre_exec: None,
        }
    }
}

fn args_of(spec: &Spec) -> Option<&Vec<String>> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
}

fn env_path(spec: &Spec) -> Option<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| {
            env.iter()
                .find_map(|e| e.strip_prefix("PATH=").map(str::to_owned))
        })
}

/// Resolves `name` like execvp: names with a slash are used as they are, others are
/// searched in `path` (or the default path when PATH is unset).
pub fn lookup(name: &str, path: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| {
            if d.is_empty() {
                Path::new(".")
            } else {
                Path::new(d)
            }
            .join(name)
        })
        .find(|p| is_executable_file(p))
}

fn is_executable_file(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a valid NUL-terminated path.
    let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
    ok && p.metadata().map(|m| m.is_file()).unwrap_or(false)
}

impl Executor for WarrenExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        tracing::debug!("executor: exec");
        let args = args_of(spec).ok_or(ExecutorError::InvalidArg)?;
        for sig in Signal::iterator() {
            if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                continue;
            }
            // SAFETY: installing SIG_DFL is always sound; no handler code is involved.
            let _ = unsafe {
                sigaction(
                    sig,
                    &nix::sys::signal::SigAction::new(
                        SigHandler::SigDfl,
                        nix::sys::signal::SaFlags::empty(),
                        SigSet::empty(),
                    ),
                )
            };
        }
        if let Some(p) = &self.pre_exec {
            p.apply().map_err(ExecutorError::Other)?;
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| ExecutorError::Other("process.args contains a NUL byte".into()))?;
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.sigmask), None)
            .map_err(|e| ExecutorError::Other(format!("restore signal mask: {e}")))?;
        let err = match nix::unistd::execvp(&cargs[0], &cargs) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        Err(ExecutorError::Other(format!("exec {:?}: {err}", args[0])))
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        tracing::debug!("executor: validate");
        let args = args_of(spec).ok_or_else(|| {
            ExecutorValidationError::ArgValidationError("process.args is empty".into())
        })?;
        let name = &args[0];
        let path = env_path(spec);
        match lookup(name, path.as_deref()) {
            Some(p) if name.contains('/') => {
                if !p.exists() {
                    Err(ExecutorValidationError::ArgValidationError(format!(
                        "exec: {name:?}: stat {name}: no such file or directory"
                    )))
                } else if !is_executable_file(&p) {
                    Err(ExecutorValidationError::ArgValidationError(format!(
                        "exec: {name:?}: permission denied"
                    )))
                } else {
                    Ok(())
                }
            }
            Some(_) => Ok(()),
            None => Err(ExecutorValidationError::ArgValidationError(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))),
        }
    }
}
