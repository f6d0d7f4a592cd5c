//! The systemd cgroup driver (`--systemd-cgroup` on a cgroup v2 host booted with systemd):
//! the container's cgroup is a transient scope that systemd creates and owns, started over
//! D-Bus with libcgroups' native client. On hosts where systemd does not manage cgroups
//! (no `/run/systemd/system`, or cgroup v1), `slice:prefix:name` maps to the same path on
//! the cgroupfs driver instead (see [`super::layout::systemd_to_fs_path`]).

use std::path::PathBuf;
use std::time::Duration;

use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::LinuxResources;
use nix::unistd::Pid;

use super::{CgroupError, Result};

/// Whether systemd manages cgroups on this host.
pub fn available() -> bool {
    libcgroups::systemd::booted()
}

fn manager(cgroups_path: &str, id: &str) -> Result<libcgroups::systemd::manager::Manager> {
    libcgroups::systemd::manager::Manager::new(
        PathBuf::from("/sys/fs/cgroup"),
        PathBuf::from(cgroups_path),
        id.to_owned(),
        nix::unistd::geteuid().is_root(),
        Duration::from_secs(5),
    )
    .map_err(|e| {
        CgroupError::V2(format!(
            "systemd scope for {cgroups_path}: {}",
            crate::error::chain(&e)
        ))
    })
}

/// Starts the transient scope with `pid` in it and applies `resources` as unit properties.
pub fn start(
    cgroups_path: &str,
    id: &str,
    pid: i32,
    resources: Option<&LinuxResources>,
) -> Result<()> {
    let m = manager(cgroups_path, id)?;
    m.add_task(Pid::from_raw(pid)).map_err(|e| {
        CgroupError::V2(format!("start systemd scope: {}", crate::error::chain(&e)))
    })?;
    if let Some(res) = resources {
        let opt = ControllerOpt {
            resources: res,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(|e| {
            CgroupError::V2(format!(
                "set systemd scope properties: {}",
                crate::error::chain(&e)
            ))
        })?;
    }
    Ok(())
}

/// Stops the scope (systemd removes its cgroup).
pub fn stop(cgroups_path: &str, id: &str) -> Result<()> {
    manager(cgroups_path, id)?
        .remove()
        .map_err(|e| CgroupError::V2(format!("stop systemd scope: {}", crate::error::chain(&e))))
}
