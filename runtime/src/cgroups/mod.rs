//! cgroups for containers: v1 (including hybrid hosts, where runc also joins the unified
//! and `name=systemd` hierarchies) and v2.
//!
//! The paths of every hierarchy are computed once at create and kept in the container's
//! state, so later commands (kill, pause, delete, events) never rediscover them.

mod devices_bpf;
pub mod layout;
pub mod stats;
pub mod systemd;
mod v1;
mod v2;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcontainer::oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use layout::{Layout, Mode};

/// cgroup errors; each names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted")]
    NoCgroups,
    #[error("invalid cgroups path {0:?}: {1}")]
    InvalidPath(String, &'static str),
    #[error("{what} requires the {controller} cgroup controller, which this host does not mount")]
    MissingController {
        what: &'static str,
        controller: &'static str,
    },
    #[error("invalid resource {field}: {msg}")]
    InvalidResource { field: &'static str, msg: String },
    #[error("cgroup v2: {0}")]
    V2(String),
    #[error(transparent)]
    Devices(#[from] devices_bpf::BpfError),
    #[error("cgroup {path} is still busy after {ms} ms")]
    Busy { path: PathBuf, ms: u128 },
    #[error("freezing {path} did not finish within {ms} ms")]
    FreezeTimeout { path: PathBuf, ms: u128 },
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

type Result<T> = std::result::Result<T, CgroupError>;

/// One directory of a container's cgroup, in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupDir {
    /// v1 controllers of the hierarchy (`["cpu","cpuacct"]`, `["name=systemd"]`); empty for v2.
    pub controllers: Vec<String>,
    /// Absolute directory.
    pub path: PathBuf,
    /// True for cgroup2.
    pub v2: bool,
}

/// A container's cgroup across all hierarchies; stored in the container state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerCgroup {
    /// Host layout when the container was created.
    pub mode: Mode,
    /// One entry per hierarchy joined.
    pub dirs: Vec<CgroupDir>,
    /// Set when systemd owns the cgroup as a transient scope (the systemd driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<SystemdScope>,
}

/// A transient systemd scope holding the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdScope {
    /// The spec's `slice:prefix:name`.
    pub cgroups_path: String,
    /// The container id (the scope's description).
    pub id: String,
}

/// Freezer states reported by [`ContainerCgroup::freezer_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    Thawed,
    Frozen,
}

/// Installs the container's device list (the spec's rules, then runc's defaults) as a
/// cgroup v2 device program on `dir`.
pub(crate) fn install_device_filter(dir: &Path, res: &LinuxResources) -> Result<()> {
    let rules = res.devices().as_deref().unwrap_or(&[]);
    devices_bpf::install(dir, &devices_bpf::DeviceList::for_container(rules))?;
    Ok(())
}

/// Installs the device program on the cgroup2 directory `pid` is in (a systemd scope,
/// whose path only systemd knows).
pub fn install_device_filter_for(pid: i32, res: Option<&LinuxResources>) -> Result<()> {
    let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = fs::read_to_string(&file).map_err(|e| CgroupError::io("read", &file, e))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or(CgroupError::NoCgroups)?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let empty = LinuxResources::default();
    install_device_filter(&dir, res.unwrap_or(&empty))
}

impl ContainerCgroup {
    /// Resolves the container cgroup `inner` (cgroupsPath, already converted from systemd
    /// form) in every hierarchy of `layout`.
    pub fn resolve(layout: &Layout, inner: &str) -> Result<Self> {
        let mut dirs = Vec::with_capacity(layout.hierarchies.len());
        for h in &layout.hierarchies {
            dirs.push(CgroupDir {
                controllers: h.controllers.clone(),
                path: h.dir_for(inner)?,
                v2: h.v2,
            });
        }
        Ok(Self {
            mode: layout.mode,
            dirs,
            systemd: None,
        })
    }

    /// The directory holding v1 controller `name`.
    pub fn v1_dir(&self, name: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.iter().any(|c| c == name))
            .map(|d| d.path.as_path())
    }

    /// The cgroup2 directory (unified mode, or the unified hierarchy of a hybrid host).
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|d| d.v2).map(|d| d.path.as_path())
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    pub fn procs_dir(&self) -> Option<&Path> {
        match self.mode {
            Mode::Unified => self.v2_dir(),
            _ => self
                .v1_dir("pids")
                .or_else(|| self.v1_dir("freezer"))
                .or_else(|| self.v1_dir("memory"))
                .or_else(|| self.v1_dir("devices"))
                .or_else(|| self.dirs.first().map(|d| d.path.as_path())),
        }
    }

    /// Creates just the cgroup2 directory (it must exist for `CLONE_INTO_CGROUP`).
    pub fn create_v2_dir(&self) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(());
        }
        let mut created = Vec::new();
        for d in self.dirs.iter().filter(|d| d.v2) {
            v2::create_dirs(&d.path, self.mode == Mode::Unified, &mut created)?;
        }
        Ok(())
    }

    /// Creates every directory (initialising cpuset and enabling v2 controllers on the way)
    /// and applies `resources`. On error, removes what it created.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.systemd.is_some() {
            // systemd creates the scope when the process is handed to it.
            return Ok(());
        }
        let mut created: Vec<PathBuf> = Vec::new();
        let r = self.create_inner(resources, &mut created);
        if r.is_err() {
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        r
    }

    fn create_inner(
        &self,
        resources: Option<&LinuxResources>,
        created: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for d in &self.dirs {
            if d.v2 {
                v2::create_dirs(&d.path, self.mode == Mode::Unified, created)?;
            } else {
                let cpuset = d.controllers.iter().any(|c| c == "cpuset");
                create_v1_dirs(&d.path, cpuset, created)?;
            }
        }
        let empty = LinuxResources::default();
        self.apply(resources.unwrap_or(&empty), true)
    }

    /// Applies resource limits. `initial` is true at create (device rules are installed
    /// then) and false for `update`.
    pub fn apply(&self, res: &LinuxResources, initial: bool) -> Result<()> {
        match self.mode {
            Mode::Unified => {
                let dir = self.v2_dir().ok_or(CgroupError::NoCgroups)?;
                if initial {
                    install_device_filter(dir, res)?;
                }
                v2::apply(dir, res)
            }
            Mode::Legacy | Mode::Hybrid => v1::apply(self, res, initial),
        }
    }

    /// Moves `pid` into every hierarchy. `unified_done` skips the cgroup2 directory,
    /// which `clone3(CLONE_INTO_CGROUP)` has joined already.
    pub fn join(&self, pid: i32, unified_done: bool) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(());
        }
        let s = pid.to_string();
        for d in &self.dirs {
            if unified_done && d.v2 {
                continue;
            }
            write_file(&d.path.join("cgroup.procs"), &s)?;
        }
        Ok(())
    }

    /// Moves the calling (single-threaded) process into every hierarchy by writing "0"
    /// to v1 `tasks` files: a thread migrating itself does not take the kernel's
    /// threadgroup rwsem for writing, which otherwise costs an RCU grace period.
    /// `unified_done` skips a cgroup2 directory already joined by `CLONE_INTO_CGROUP`.
    pub fn join_self(&self, unified_done: bool) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(());
        }
        for d in &self.dirs {
            if d.v2 {
                if !unified_done {
                    write_file(&d.path.join("cgroup.procs"), "0")?;
                }
            } else {
                write_file(&d.path.join("tasks"), "0")?;
            }
        }
        Ok(())
    }

    /// Pids of every process in the container cgroup, including sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Freezes or thaws the container and waits until the kernel reports the new state.
    pub fn set_freezer(&self, state: Freezer) -> Result<()> {
        let timeout = Duration::from_secs(5);
        let start = Instant::now();
        if let (Mode::Unified, Some(dir)) = (self.mode, self.v2_dir()) {
            let v = if state == Freezer::Frozen { "1" } else { "0" };
            write_file(&dir.join("cgroup.freeze"), v)?;
            loop {
                if self.freezer_state()? == state {
                    return Ok(());
                }
                if start.elapsed() > timeout {
                    return Err(CgroupError::FreezeTimeout {
                        path: dir.to_owned(),
                        ms: timeout.as_millis(),
                    });
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let dir = self
            .v1_dir("freezer")
            .ok_or(CgroupError::MissingController {
                what: "pause/resume",
                controller: "freezer",
            })?;
        let file = dir.join("freezer.state");
        let v = if state == Freezer::Frozen {
            "FROZEN"
        } else {
            "THAWED"
        };
        loop {
            write_file(&file, v)?;
            let now = read_trim(&file)?;
            if now == v {
                return Ok(());
            }
            if start.elapsed() > timeout {
                // Leave a half-frozen cgroup thawed rather than stuck.
                let _ = write_file(&file, "THAWED");
                return Err(CgroupError::FreezeTimeout {
                    path: dir.to_owned(),
                    ms: timeout.as_millis(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Current freezer state; thawed when the host has no freezer.
    pub fn freezer_state(&self) -> Result<Freezer> {
        if let (Mode::Unified, Some(dir)) = (self.mode, self.v2_dir()) {
            let p = dir.join("cgroup.events");
            let text = match fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Freezer::Thawed),
                Err(e) => return Err(CgroupError::io("read", &p, e)),
            };
            let frozen = text.lines().any(|l| l.trim() == "frozen 1");
            return Ok(if frozen {
                Freezer::Frozen
            } else {
                Freezer::Thawed
            });
        }
        let Some(dir) = self.v1_dir("freezer") else {
            return Ok(Freezer::Thawed);
        };
        match fs::read_to_string(dir.join("freezer.state")) {
            Ok(s) if s.trim() == "FROZEN" => Ok(Freezer::Frozen),
            Ok(_) => Ok(Freezer::Thawed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Freezer::Thawed),
            Err(e) => Err(CgroupError::io("read", &dir.join("freezer.state"), e)),
        }
    }

    /// Sends `sig` to every process of the container (runc's `kill --all`). The cgroup is
    /// frozen meanwhile so that no process can fork its way out of the signal.
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        let was_frozen = self.freezer_state()? == Freezer::Frozen;
        let can_freeze = self.mode == Mode::Unified || self.v1_dir("freezer").is_some();
        if can_freeze && !was_frozen {
            self.set_freezer(Freezer::Frozen)?;
        }
        let pids = self.pids();
        if let Ok(pids) = &pids {
            for &p in pids {
                // SAFETY: kill(2) with a pid read from cgroup.procs and a signal number.
                unsafe { libc::kill(p, sig) };
            }
        }
        if can_freeze && (!was_frozen || sig == libc::SIGKILL) {
            self.set_freezer(Freezer::Thawed)?;
        }
        pids.map(|_| ())
    }

    /// Removes every directory, deepest first, killing stragglers and retrying while the
    /// kernel still counts exiting tasks. Missing directories are fine.
    pub fn remove(&self) -> Result<()> {
        if let Some(sd) = &self.systemd
            && let Err(e) = systemd::stop(&sd.cgroups_path, &sd.id)
        {
            tracing::warn!(error = %e, "stop systemd scope");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut first_err = None;
        for d in &self.dirs {
            if let Err(e) = remove_tree(&d.path, deadline) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// True when no directory is left.
    pub fn is_removed(&self) -> bool {
        self.dirs.iter().all(|d| !d.path.exists())
    }
}

fn create_v1_dirs(path: &Path, cpuset: bool, created: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent()
        && !parent.is_dir()
    {
        create_v1_dirs(parent, cpuset, created)?;
    }
    match fs::create_dir(path) {
        Ok(()) => created.push(path.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(CgroupError::io("mkdir", path, e)),
    }
    if cpuset {
        // A new cpuset cgroup starts with empty cpus/mems and refuses tasks until they are
        // copied from the parent.
        if let Some(parent) = path.parent() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let cur = read_trim(&path.join(f))?;
                if cur.is_empty() {
                    let v = read_trim(&parent.join(f))?;
                    write_file(&path.join(f), &v)?;
                }
            }
        }
    }
    Ok(())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io("read", &procs, e)),
    }
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io("read directory", dir, e)),
    };
    for ent in rd.flatten() {
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&ent.path(), out)?;
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    // Fast path: a leaf cgroup without children goes with one rmdir.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for ent in rd.flatten() {
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&ent.path(), deadline)?;
            }
        }
    }
    let start = Instant::now();
    let mut delay = Duration::from_micros(100);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if Instant::now() > deadline {
                    return Err(CgroupError::Busy {
                        path: dir.to_owned(),
                        ms: start.elapsed().as_millis(),
                    });
                }
                // Tasks that are still exiting keep the directory busy; kill any that are
                // really left (a process that escaped `delete` would otherwise pin it).
                if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
                    for p in s.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill(2) with a pid read from the cgroup being removed.
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(CgroupError::io("rmdir", dir, e)),
        }
    }
}

/// Writes `value` to a cgroup file (no truncation dance: cgroup files take one write).
pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })?;
    f.write_all(value.as_bytes())
        .map_err(|source| CgroupError::Write {
            path: path.to_owned(),
            value: value.to_owned(),
            source,
        })
}

pub(crate) fn read_trim(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| CgroupError::io("read", path, e))
}
