//! `pause` and `resume`: freeze and thaw every process of a container.

use crate::Runtime;
use crate::cgroups::Freezer;
use crate::error::{Result, RuntimeError};
use crate::state::Status;

/// Freezes container `id` (running or created).
pub fn pause(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    match st.status(&dir) {
        Status::Running | Status::Created => Ok(st.cgroup.set_freezer(Freezer::Frozen)?),
        Status::Paused => Ok(()),
        _ => Err(RuntimeError::status("container not running")),
    }
}

/// Thaws a paused container.
pub fn resume(rt: &Runtime, id: &str) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    match st.status(&dir) {
        Status::Paused => Ok(st.cgroup.set_freezer(Freezer::Thawed)?),
        _ => Err(RuntimeError::status("container not paused")),
    }
}
