//! cgroup v2: directory creation with controller delegation, and resource application
//! through libcgroups' v2 controllers (whose manager needs no discovery).

use std::fs;
use std::path::{Path, PathBuf};

use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::LinuxResources;

use super::{CgroupError, Result, read_trim, write_file};

/// Creates `dir` and missing parents; on a unified host, enables the parent's controllers
/// in each new level's parent so that limits can be set on the leaf.
pub(super) fn create_dirs(dir: &Path, unified: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir.to_path_buf();
    while !cur.is_dir() {
        missing.push(cur.clone());
        match cur.parent() {
            Some(p) => cur = p.to_path_buf(),
            None => break,
        }
    }
    for d in missing.iter().rev() {
        if unified && let Some(parent) = d.parent() {
            enable_controllers(parent);
        }
        match fs::create_dir(d) {
            Ok(()) => created.push(d.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::io("mkdir", d, e)),
        }
    }
    Ok(())
}

/// Best effort: a parent that holds processes itself cannot delegate (EBUSY), and then the
/// container simply gets no limits of its own, exactly as with runc.
fn enable_controllers(parent: &Path) {
    let Ok(avail) = read_trim(&parent.join("cgroup.controllers")) else {
        return;
    };
    let enabled = read_trim(&parent.join("cgroup.subtree_control")).unwrap_or_default();
    let want: Vec<String> = avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return;
    }
    let ctl = parent.join("cgroup.subtree_control");
    if write_file(&ctl, &want.join(" ")).is_err() {
        for w in want {
            let _ = write_file(&ctl, &w);
        }
    }
}

pub(super) fn apply(dir: &Path, res: &LinuxResources) -> Result<()> {
    let mgr = libcgroups::v2::manager::Manager::new(dir.to_path_buf(), PathBuf::new())
        .map_err(|e| CgroupError::V2(crate::error::chain(&e)))?;
    let opt = ControllerOpt {
        resources: res,
        disable_oom_killer: res
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    };
    mgr.apply(&opt).map_err(|e| {
        CgroupError::V2(format!(
            "apply resources to {}: {}",
            dir.display(),
            crate::error::chain(&e)
        ))
    })
}
