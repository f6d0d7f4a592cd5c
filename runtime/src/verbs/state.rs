//! `state`: the runc-shaped JSON state of one container.

use crate::Runtime;
use crate::error::Result;
use crate::state::OciState;

/// The state object printed by `state ID`.
pub fn state(rt: &Runtime, id: &str) -> Result<OciState> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    let status = st.status(&dir);
    Ok(st.to_oci(status))
}
