//! `kill`: send a signal to a container's init, or to all of its processes.

use crate::cgroups::Freezer;
use crate::error::{Result, RuntimeError};
use crate::state::Status;
use crate::{Runtime, proc, signal};

/// Sends `sig` (a name or number) to container `id`; with `all`, to every process in its
/// cgroup.
pub fn kill(rt: &Runtime, id: &str, sig: &str, all: bool) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    let signo = signal::parse(sig)?;
    let status = st.status(&dir);
    if status == Status::Stopped && !all {
        return Err(RuntimeError::status("container not running"));
    }
    if all {
        if status == Status::Stopped && st.own_pid_ns {
            return Ok(());
        }
        st.cgroup.signal_all(signo)?;
        return Ok(());
    }
    let fd = proc::pidfd_for(st.init_pid, st.init_start_time)
        .ok_or_else(|| RuntimeError::status("container not running"))?;
    proc::pidfd_signal(&fd, signo).map_err(|e| RuntimeError::sys("signal container init", e))?;
    if signo == libc::SIGKILL && status == Status::Paused {
        // A v1-frozen task only dies once thawed.
        st.cgroup.set_freezer(Freezer::Thawed)?;
    }
    Ok(())
}
