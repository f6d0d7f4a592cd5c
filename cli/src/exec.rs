//! `warren exec [-i] [-t] [-e K=V] [-u UID[:GID]] [-w DIR] NAME CMD…`: a new process in a
//! running sandbox, through the runtime library in this process (with the sandbox
//! profile's Landlock and seccomp applied again before `execve`).

use warren_runtime::verbs::exec::ExecOpts;

use crate::run::RunError;
use crate::sandbox;
use crate::state::{self, Roots};

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<(u32, u32)>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
}

/// Errors of `exec`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("sandbox {name} is not running ({status})")]
    NotRunning { name: String, status: &'static str },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Runtime(#[from] warren_runtime::RuntimeError),
}

/// Runs the command and returns its exit code.
pub fn exec(roots: &Roots, query: &str, o: &ExecOptions) -> Result<i32, ExecError> {
    let id = state::resolve(roots, query)?;
    let info = sandbox::info(roots, &id)?;
    if info.status != sandbox::Status::Running {
        return Err(ExecError::NotRunning {
            name: info.record.name,
            status: info.status.as_str(),
        });
    }
    let rt = roots.runtime();
    if !o.interactive && !o.tty {
        // Like podman: without -i the process gets no stdin.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            // SAFETY: dup2(2) of a fresh fd onto our stdin.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) };
        }
    }
    let opts = ExecOpts {
        id: id.clone(),
        args: o.command.clone(),
        env: o.env.clone(),
        cwd: o.workdir.clone(),
        tty: o.tty,
        user: o.user.or(info.record.user).map(|(u, g)| (u, Some(g))),
        ..Default::default()
    };
    Ok(warren_runtime::verbs::exec::exec(&rt, &opts)?)
}
