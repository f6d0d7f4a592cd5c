//! `run`: create and start in one step; in the foreground, stay attached until the
//! container's init exits, then delete it and return its exit code.

use std::sync::Arc;

use crate::Runtime;
use crate::console;
use crate::error::{Result, RuntimeError};
use crate::supervise::{self, Relay};
use crate::verbs::create::{CreateOpts, create, create_from};
use crate::verbs::delete::destroy;
use crate::verbs::start::start;

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    pub create: CreateOpts,
    pub detach: bool,
    /// Keep the container (state, cgroups) after it exits.
    pub keep: bool,
    pub no_subreaper: bool,
}

/// Runs a container. Returns the exit code to exit with (0 when detached).
pub fn run(rt: &Runtime, o: &RunOpts) -> Result<i32> {
    if o.detach {
        let mut c = o.create.clone();
        c.foreground = false;
        create(rt, &c)?;
        if let Err(e) = start(rt, &c.id) {
            let _ = crate::verbs::delete::delete(rt, &c.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    let old_mask = supervise::block_signals()?;
    let r = run_foreground(rt, o, old_mask);
    supervise::restore_signals(&old_mask);
    r
}

fn run_foreground(rt: &Runtime, o: &RunOpts, old_mask: nix::sys::signal::SigSet) -> Result<i32> {
    if !o.no_subreaper {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let mut c = o.create.clone();
    c.foreground = true;
    c.sigmask = Some(old_mask);
    let cfg = crate::spec::load_bundle(&c.bundle)?;
    let cfg_terminal = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let pair = if cfg_terminal && c.console_socket.is_none() {
        let p = console::pair()?;
        c.console_fd = Some(Arc::new(p.container_end));
        Some(p.runtime_end)
    } else {
        None
    };
    let created = create_from(rt, &c, &cfg)?;
    c.console_fd = None;
    let relay = match &pair {
        Some(sock) => match console::recv_master(sock) {
            Ok(master) => Some(Relay { master }),
            Err(e) => {
                let _ = destroy(&created.dir, &created.state, crate::state::Status::Created);
                return Err(e);
            }
        },
        None => None,
    };
    if let Err(e) = start(rt, &c.id) {
        let _ = destroy(&created.dir, &created.state, crate::state::Status::Created);
        return Err(e);
    }
    tracing::debug!("run: started");
    let code = supervise::wait(created.pid, relay);
    tracing::debug!("run: init exited");
    if !o.keep {
        // We reaped the init ourselves: the container has stopped.
        let status = if code.is_ok() {
            crate::state::Status::Stopped
        } else {
            created.state.status(&created.dir)
        };
        if let Err(e) = destroy(&created.dir, &created.state, status) {
            return Err(RuntimeError::status(format!(
                "container exited ({code:?}) but cleanup failed: {e}"
            )));
        }
    }
    tracing::debug!("run: destroyed");
    code
}
