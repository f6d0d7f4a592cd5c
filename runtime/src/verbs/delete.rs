//! `delete`: remove a stopped container (or, with `--force`, any container): its
//! processes, poststop hooks, cgroups and state directory.

use libcontainer::container::ContainerStatus;

use crate::cgroups::Freezer;
use crate::error::{Result, RuntimeError, chain};
use crate::spawn::hook_container;
use crate::state::{ContainerState, StateDir, Status};
use crate::{Runtime, proc};

/// Deletes container `id`. Without `force`, a created container is killed (as runc does)
/// but a running or paused one is refused.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = match dir.load() {
        Ok(st) => st,
        Err(RuntimeError::NotFound(_)) if dir.dir.is_dir() => {
            // An aborted create can leave a directory without state: clean it up.
            dir.remove()?;
            return if force {
                Ok(())
            } else {
                Err(RuntimeError::NotFound(id.to_owned()))
            };
        }
        Err(RuntimeError::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let status = st.status(&dir);
    match status {
        Status::Running | Status::Paused if !force => Err(RuntimeError::status(format!(
            "cannot delete container {id} that is not stopped: {status}"
        ))),
        _ => destroy(&dir, &st, status),
    }
}

/// Kills whatever is left of the container, runs poststop hooks and removes its cgroups
/// and state. Used by `delete` and by the foreground `run`.
pub fn destroy(dir: &StateDir, st: &ContainerState, status: Status) -> Result<()> {
    if status != Status::Stopped || !st.own_pid_ns {
        kill_all(st)?;
    }
    if let Some(hooks) = &st.hooks
        && hooks.poststop().as_ref().is_some_and(|h| !h.is_empty())
    {
        let annotations = st.annotations.clone().into_iter().collect();
        match hook_container(
            &st.id,
            &st.bundle,
            &dir.dir,
            None,
            ContainerStatus::Stopped,
            &annotations,
        ) {
            Ok(c) => {
                // The OCI spec: a failing poststop hook is logged; deletion continues.
                if let Err(e) = libcontainer::hooks::run_hooks(
                    hooks.poststop().as_ref(),
                    Some(&c.state),
                    None,
                    None,
                    None,
                ) {
                    tracing::warn!(id = %st.id, error = %chain(&e), "poststop hook failed");
                }
            }
            Err(e) => tracing::warn!(id = %st.id, error = %e, "poststop hooks skipped"),
        }
    }
    let cg = st.cgroup.remove();
    let sd = dir.remove();
    cg?;
    sd
}

fn kill_all(st: &ContainerState) -> Result<()> {
    let init = proc::pidfd_for(st.init_pid, st.init_start_time);
    if st.own_pid_ns {
        if let Some(fd) = &init {
            let _ = proc::pidfd_signal(fd, libc::SIGKILL);
            if st.cgroup.freezer_state().ok() == Some(Freezer::Frozen) {
                st.cgroup.set_freezer(Freezer::Thawed)?;
            }
            if !proc::pidfd_wait_exit(fd, 10_000) {
                return Err(RuntimeError::status(format!(
                    "container {} init {} did not die after SIGKILL",
                    st.id, st.init_pid
                )));
            }
        }
    } else {
        st.cgroup.signal_all(libc::SIGKILL)?;
        if let Some(fd) = &init {
            proc::pidfd_wait_exit(fd, 10_000);
        }
    }
    Ok(())
}
