//! `list`: every container under the state root.

use crate::Runtime;
use crate::error::Result;
use crate::state::{ContainerState, Status, list_ids};

/// One row of `list`.
#[derive(Debug)]
pub struct Listed {
    pub state: ContainerState,
    pub status: Status,
}

/// Containers under the root, sorted by id; unreadable entries are skipped with a warning.
pub fn list(rt: &Runtime) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for id in list_ids(&rt.root)? {
        let dir = rt.state_dir(&id)?;
        match dir.load() {
            Ok(state) => {
                let status = state.status(&dir);
                out.push(Listed { state, status });
            }
            Err(e) => tracing::warn!(%id, error = %e, "skipping unreadable container state"),
        }
    }
    Ok(out)
}
