//! `start`: release a created container's init to exec the workload.

use libcontainer::container::ContainerStatus;

use crate::error::{Result, RuntimeError, chain};
use crate::spawn::hook_container;
use crate::state::{NOTIFY_SOCKET, Status};
use crate::{Runtime, proc};

/// Starts container `id`, then runs its poststart hooks. A failing poststart hook kills
/// the container and fails the start, as runc does.
pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    match st.status(&dir) {
        Status::Created => {}
        Status::Stopped => {
            return Err(RuntimeError::status(
                "cannot start a container that has stopped",
            ));
        }
        Status::Running => {
            return Err(RuntimeError::status(
                "cannot start an already running container",
            ));
        }
        Status::Paused => return Err(RuntimeError::status("cannot start a paused container")),
        Status::Creating => {
            return Err(RuntimeError::status(
                "cannot start a container that is still being created",
            ));
        }
    }
    let sock = dir.path(NOTIFY_SOCKET);
    libcontainer::notify_socket::NotifySocket::new(&sock)
        .notify_container_start()
        .map_err(|e| {
            RuntimeError::Init(format!(
                "release container init through {}: {}",
                sock.display(),
                chain(&e)
            ))
        })?;
    let _ = std::fs::remove_file(&sock);
    if let Some(hooks) = &st.hooks
        && hooks.poststart().as_ref().is_some_and(|h| !h.is_empty())
    {
        let annotations = st.annotations.clone().into_iter().collect();
        let c = hook_container(
            id,
            &st.bundle,
            &dir.dir,
            Some(st.init_pid),
            ContainerStatus::Running,
            &annotations,
        )?;
        if let Err(e) = libcontainer::hooks::run_hooks(
            hooks.poststart().as_ref(),
            Some(&c.state),
            None,
            None,
            None,
        ) {
            if let Some(fd) = proc::pidfd_for(st.init_pid, st.init_start_time) {
                let _ = proc::pidfd_signal(&fd, libc::SIGKILL);
            }
            return Err(RuntimeError::Hook {
                kind: "poststart",
                path: String::new(),
                msg: chain(&e),
            });
        }
    }
    Ok(())
}
