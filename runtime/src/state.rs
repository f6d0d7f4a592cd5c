//! The per-container state directory: `ROOT/ID/state.json` (versioned) plus the saved
//! spec, the notify socket and the console-socket link.
//!
//! `state.json` is written once at create (atomically: write, fsync-free rename); the
//! status is derived on every read from the init process and the cgroup freezer, so no
//! command needs to rewrite it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Hooks, Spec};
use serde::{Deserialize, Serialize};

use crate::cgroups::{ContainerCgroup, Freezer};
use crate::error::{Result, RuntimeError};
use crate::proc;

/// Version of the `state.json` format; bump on incompatible change.
pub const STATE_FORMAT: u32 = 1;
/// OCI runtime-spec version we report (runc 1.1 reports 1.0.2-dev).
pub const OCI_VERSION: &str = "1.0.2-dev";

const STATE_FILE: &str = "state.json";
const SPEC_FILE: &str = "config.json";
/// The init process waits on this socket until `start`; its absence means started.
pub const NOTIFY_SOCKET: &str = "notify.sock";

/// Container status as reported by `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerState {
    pub format: u32,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time, UTC, nanoseconds.
    pub created: String,
    pub owner: u32,
    pub init_pid: i32,
    /// `/proc/PID/stat` start time, to recognise a recycled pid.
    pub init_start_time: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub cgroup: ContainerCgroup,
    /// Whether the container has its own pid namespace (killing init then kills all).
    pub own_pid_ns: bool,
    /// Hooks to run at start (poststart) and delete (poststop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// `--systemd-cgroup` was given.
    #[serde(default)]
    pub systemd: bool,
}

/// A container's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
    pub id: String,
}

impl StateDir {
    /// The directory for `id` under `root` (not created).
    pub fn new(root: &Path, id: &str) -> Self {
        Self {
            dir: root.join(id),
            id: id.to_owned(),
        }
    }

    /// Creates `root` (0700) if needed and the container directory, failing if it exists.
    pub fn create(root: &Path, id: &str) -> Result<Self> {
        let mut b = fs::DirBuilder::new();
        b.mode(0o700).recursive(true);
        b.create(root)
            .map_err(|e| RuntimeError::io("create state root", root, e))?;
        let me = Self::new(root, id);
        let mut b = fs::DirBuilder::new();
        b.mode(0o711);
        match b.create(&me.dir) {
            Ok(()) => Ok(me),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::Exists(id.to_owned()))
            }
            Err(e) => Err(RuntimeError::io("create state directory", &me.dir, e)),
        }
    }

    /// Path of a file inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Loads `state.json`; a missing directory means the container does not exist.
    pub fn load(&self) -> Result<ContainerState> {
        let p = self.path(STATE_FILE);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(self.id.clone()));
            }
            Err(e) => return Err(RuntimeError::io("read", &p, e)),
        };
        let st: ContainerState =
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::State {
                id: self.id.clone(),
                path: p.clone(),
                msg: e.to_string(),
            })?;
        if st.format != STATE_FORMAT {
            return Err(RuntimeError::State {
                id: self.id.clone(),
                path: p,
                msg: format!(
                    "format {} is not supported (this runtime writes {STATE_FORMAT})",
                    st.format
                ),
            });
        }
        Ok(st)
    }

    /// Writes `state.json` atomically.
    pub fn save(&self, st: &ContainerState) -> Result<()> {
        let data = serde_json::to_vec(st).map_err(|e| RuntimeError::State {
            id: self.id.clone(),
            path: self.path(STATE_FILE),
            msg: e.to_string(),
        })?;
        write_atomic(&self.path(STATE_FILE), &data)
    }

    /// Saves the spec the container was created from (used by `exec` and `update`).
    pub fn save_spec(&self, spec: &Spec) -> Result<()> {
        let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::State {
            id: self.id.clone(),
            path: self.path(SPEC_FILE),
            msg: e.to_string(),
        })?;
        write_atomic(&self.path(SPEC_FILE), &data)
    }

    /// Loads the saved spec.
    pub fn load_spec(&self) -> Result<Spec> {
        let p = self.path(SPEC_FILE);
        let bytes = fs::read(&p).map_err(|e| RuntimeError::io("read", &p, e))?;
        crate::spec::parse_spec(&p, &bytes)
    }

    /// True until `start` has consumed the notify socket.
    pub fn awaiting_start(&self) -> bool {
        self.path(NOTIFY_SOCKET).exists()
    }

    /// Removes the whole directory.
    pub fn remove(&self) -> Result<()> {
        for f in [STATE_FILE, SPEC_FILE, NOTIFY_SOCKET] {
            let _ = fs::remove_file(self.dir.join(f));
        }
        match fs::remove_dir(&self.dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {}
        }
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("remove state directory", &self.dir, e)),
        }
    }
}

impl ContainerState {
    /// The status right now: stopped once init is gone, paused while frozen, created until
    /// started.
    pub fn status(&self, dir: &StateDir) -> Status {
        if !proc::is_alive(self.init_pid, self.init_start_time) {
            return Status::Stopped;
        }
        if let Ok(Freezer::Frozen) = self.cgroup.freezer_state() {
            return Status::Paused;
        }
        if dir.awaiting_start() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The runc-shaped state printed by `state` and `list --format json`.
    pub fn to_oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION,
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            annotations: self.annotations.clone(),
            owner: String::new(),
        }
    }
}

/// runc's `containerState` JSON, field for field and in runc's order.
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

/// Writes `data` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| RuntimeError::io("create", &tmp, e))?;
    f.write_all(data)
        .map_err(|e| RuntimeError::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", path, e))
}

/// Lists container ids under `root` (directories holding a state file).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io("read directory", root, e)),
    };
    let mut ids: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    Ok(ids)
}
