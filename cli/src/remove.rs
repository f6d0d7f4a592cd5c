//! `stop`, `rm` and the monitor's `__cleanup`: ending sandboxes and removing everything
//! they left (runtime state and cgroups, image rootfs mounts, records, logs, names).

use std::time::{Duration, Instant};

use warren_runtime::RuntimeError;

use crate::sandbox::{self, Status};
use crate::state::{self, Record, Roots, StateError};

/// Errors of stop and rm.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("sandbox {0} is running: stop it first or use rm -f")]
    Running(String),
    #[error("sandbox {0} did not exit after SIGKILL")]
    Stuck(String),
    #[error("remove image rootfs of {id}: {msg}")]
    Rootfs { id: String, msg: String },
}

type Result<T> = std::result::Result<T, RemoveError>;

/// Removes the record, name, logs, bundle and image rootfs of a sandbox whose processes
/// are gone. Best effort: used on failure paths too.
pub fn remove_state(roots: &Roots, r: &Record) {
    if r.image.is_some()
        && let Err(e) = remove_rootfs(roots, &r.id)
    {
        tracing::warn!(id = %r.id, error = %e, "remove image rootfs");
    }
    state::release_name(roots, &r.name, &r.id);
    let _ = std::fs::remove_dir_all(roots.run_dir(&r.id));
    let _ = std::fs::remove_dir_all(roots.data_dir(&r.id));
}

fn remove_rootfs(roots: &Roots, id: &str) -> Result<()> {
    let store = warren_images::Store::open(&roots.data_root).map_err(|e| RemoveError::Rootfs {
        id: id.into(),
        msg: e.to_string(),
    })?;
    store.remove_rootfs(id).map_err(|e| RemoveError::Rootfs {
        id: id.into(),
        msg: e.to_string(),
    })
}

fn delete_runtime(roots: &Roots, id: &str) -> Result<()> {
    match warren_runtime::verbs::delete::delete(&roots.runtime(), id, true) {
        Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Waits until sandbox `id` has no live processes; false on timeout.
fn wait_stopped(roots: &Roots, id: &str, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        match sandbox::info(roots, id) {
            Ok(i) if i.status.is_live() => {}
            _ => return true,
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `stop`: SIGTERM, then SIGKILL after `timeout`. Stopping a stopped sandbox is no error.
pub fn stop(roots: &Roots, query: &str, timeout: Duration) -> Result<String> {
    let id = state::resolve(roots, query)?;
    let info = sandbox::info(roots, &id)?;
    if !info.status.is_live() {
        return Ok(id);
    }
    let rt = roots.runtime();
    if info.status == Status::Paused {
        let _ = warren_runtime::verbs::pause::resume(&rt, &id);
    }
    match warren_runtime::verbs::kill::kill(&rt, &id, "TERM", false) {
        Ok(()) => {}
        Err(e) if !e.to_string().contains("not running") => return Err(e.into()),
        Err(_) => {}
    }
    if !wait_stopped(roots, &id, timeout) {
        tracing::info!(%id, "no exit after SIGTERM; sending SIGKILL");
        let _ = warren_runtime::verbs::kill::kill(&rt, &id, "KILL", true);
        if !wait_stopped(roots, &id, Duration::from_secs(10)) {
            return Err(RemoveError::Stuck(id));
        }
    }
    state::append_event(roots, "stop", &id, &info.record.name, None);
    wait_recorded(roots, &id, &info.record);
    Ok(id)
}

/// A detached sandbox's monitor writes the exit right after the init dies: give it a
/// moment so that `stop` then `ps` shows the exit code.
fn wait_recorded(roots: &Roots, id: &str, r: &Record) {
    if !r.detached {
        return;
    }
    let end = Instant::now() + Duration::from_secs(2);
    while state::ExitInfo::load(roots, id).is_none()
        && Instant::now() < end
        && roots.record_path(id).exists()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `rm [-f]`: removes a sandbox that is not running (with `force`, kills it first).
pub fn rm(roots: &Roots, query: &str, force: bool) -> Result<String> {
    let id = state::resolve(roots, query)?;
    let _lock = state::lock(roots, &id)?;
    let info = sandbox::info(roots, &id)?;
    if info.status.is_live() {
        if !force {
            return Err(RemoveError::Running(info.record.name));
        }
        let rt = roots.runtime();
        let _ = warren_runtime::verbs::kill::kill(&rt, &id, "KILL", true);
        if !wait_stopped(roots, &id, Duration::from_secs(10)) {
            return Err(RemoveError::Stuck(id));
        }
    }
    delete_runtime(roots, &id)?;
    remove_state(roots, &info.record);
    state::append_event(roots, "rm", &id, &info.record.name, None);
    Ok(id)
}

/// `__cleanup ID`, exec'd by the monitor once the exit is recorded: deletes the runtime
/// state (cgroups); removes the sandbox too when it was started with `--rm`.
pub fn cleanup(roots: &Roots, id: &str) -> Result<()> {
    warren_runtime::id::validate(id)?;
    if !roots.data_dir(id).exists() {
        // Removed by `rm -f` meanwhile: only the runtime state may be left.
        return delete_runtime(roots, id);
    }
    let _lock = state::lock(roots, id)?;
    delete_runtime(roots, id)?;
    match Record::load(roots, id) {
        Ok(r) if r.auto_remove => {
            remove_state(roots, &r);
            state::append_event(roots, "rm", id, &r.name, None);
        }
        Ok(_) | Err(StateError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
