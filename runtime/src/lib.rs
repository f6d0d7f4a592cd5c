//! warren's OCI runtime library: the container lifecycle behind `warren-runtime`, a
//! runc-compatible runtime built on youki's `libcontainer`.
//!
//! Each runc verb lives in [`verbs`]; the pieces they share are split by subsystem:
//! [`spec`] (config.json), [`state`] (the state directory), [`cgroups`], [`spawn`] (our
//! clone and handshake around libcontainer's init), [`executor`], [`exe_guard`]
//! (CVE-2019-5736), [`proc`] and [`signal`].

pub mod cgroups;
pub mod console;
pub mod devices;
pub mod error;
pub mod exe_guard;
pub mod executor;
pub mod id;
pub mod init;
pub mod proc;
pub mod rootfs;
pub mod sandbox;
pub mod seccomp;
pub mod signal;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod verbs;

pub use error::{Result, RuntimeError};

use std::path::PathBuf;

/// Default state root, as `/run/runc` is runc's.
pub const DEFAULT_ROOT: &str = "/run/warren-runtime";

/// Default cache of compiled seccomp filters (content-addressed, shared by every state
/// root; kept out of the state root so that it only ever lists containers).
pub const DEFAULT_SECCOMP_CACHE: &str = "/var/cache/warren/seccomp";

/// Settings shared by every verb (runc's global flags).
#[derive(Debug, Clone)]
pub struct Runtime {
    /// State root (`--root`).
    pub root: PathBuf,
    /// `--systemd-cgroup`: cgroupsPath is `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// Where CDI specs and NVIDIA drivers are found.
    pub devices: devices::DeviceConfig,
    /// Cache of compiled seccomp filters.
    pub seccomp_cache: PathBuf,
}

impl Runtime {
    /// A runtime keeping state under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            systemd_cgroup: false,
            devices: devices::DeviceConfig::default(),
            seccomp_cache: PathBuf::from(DEFAULT_SECCOMP_CACHE),
        }
    }

    /// The state directory of container `id` (after validating the id).
    pub fn state_dir(&self, id: &str) -> Result<state::StateDir> {
        id::validate(id)?;
        Ok(state::StateDir::new(&self.root, id))
    }
}
