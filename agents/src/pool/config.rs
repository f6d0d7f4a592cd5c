//! A pool's configuration: the options of `warren pool create`, validated into the
//! `pool.json` the daemon reads.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::{LoadedProfile, Tmpfs};

/// Format version of `pool.json`.
pub const CONFIG_FORMAT: u32 = 1;

/// Most sandboxes one pool may keep.
pub const MAX_SIZE: usize = 1024;

/// Default per-exec time limit.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default per-exec output limit (stdout and stderr together).
pub const DEFAULT_OUTPUT_LIMIT: u64 = 16 << 20;
/// Default memory limit when the profile sets none.
pub const DEFAULT_MEMORY: i64 = 1 << 30;
/// Default process limit when the profile sets none.
pub const DEFAULT_PIDS: i64 = 256;
/// Default size of each writable tmpfs.
pub const DEFAULT_TMPFS_SIZE: &str = "256m";
/// The writable paths when none are given (the workspace is added).
pub const DEFAULT_TMPFS: &[&str] = &["/tmp", "/var/tmp"];

/// `/dev/shm` as the runtime's default spec mounts it; reset like the others.
pub fn dev_shm() -> Tmpfs {
    Tmpfs {
        dst: PathBuf::from("/dev/shm"),
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            .map(String::from)
            .to_vec(),
    }
}

/// What `warren pool create` was asked for.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    pub name: String,
    /// `agent` (default), `experiment`, `trusted` or a profile file.
    pub profile: Option<String>,
    /// An image from the store; none = the host view.
    pub image: Option<String>,
    pub size: usize,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub cpus: Option<f64>,
    pub timeout_ms: Option<u64>,
    pub output_limit: Option<u64>,
    /// `KEY=value` for every exec.
    pub env: Vec<String>,
    /// Working directory of execs (default: the profile's workspace).
    pub workdir: Option<PathBuf>,
    /// Writable paths, each a tmpfs cleared after every exec (default /tmp, /var/tmp and
    /// the workspace).
    pub tmpfs: Vec<PathBuf>,
    pub tmpfs_size: Option<String>,
    pub user: Option<(u32, u32)>,
}

/// Per-exec limits: the pool's defaults, which are also the most a request may ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecLimits {
    pub timeout_ms: u64,
    pub memory: i64,
    pub pids: i64,
    pub output_bytes: u64,
}

/// `pool.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub format: u32,
    pub name: String,
    /// The profile as the runtime's annotation names it (built-in or absolute path).
    pub profile: String,
    pub image: Option<String>,
    pub size: usize,
    pub limits: ExecLimits,
    pub cpus: Option<f64>,
    pub env: Vec<String>,
    pub workdir: PathBuf,
    /// Writable tmpfs mounts, reset after every exec.
    pub tmpfs: Vec<Tmpfs>,
    pub user: Option<(u32, u32)>,
    /// Seconds since the epoch.
    pub created: u64,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

impl PoolOptions {
    /// Checks every option and resolves the defaults.
    pub fn validate(&self) -> Result<PoolConfig> {
        crate::paths::validate_name("pool", &self.name).map_err(invalid)?;
        if self.size == 0 {
            return Err(invalid(format!(
                "pool {}: --size must be at least 1 (a pool of size 0 could never run anything)",
                self.name
            )));
        }
        if self.size > MAX_SIZE {
            return Err(invalid(format!(
                "pool {}: --size {} is more than {MAX_SIZE}",
                self.name, self.size
            )));
        }
        let profile = LoadedProfile::load(self.profile.as_deref().unwrap_or("agent"))?;
        let memory = self
            .memory
            .or(profile.profile.cgroup.memory)
            .unwrap_or(DEFAULT_MEMORY);
        let pids = self
            .pids
            .or(profile.profile.cgroup.pids)
            .unwrap_or(DEFAULT_PIDS);
        if memory < (16 << 20) {
            return Err(invalid(format!(
                "pool {}: memory limit {memory} bytes is below 16 MiB",
                self.name
            )));
        }
        if pids < 2 {
            return Err(invalid(format!(
                "pool {}: pids limit must be at least 2 (the init and one command)",
                self.name
            )));
        }
        if let Some(c) = self.cpus
            && (!c.is_finite() || c <= 0.0)
        {
            return Err(invalid(format!(
                "pool {}: --cpus must be a positive number",
                self.name
            )));
        }
        for e in &self.env {
            if !e.contains('=') || e.starts_with('=') {
                return Err(invalid(format!("invalid -e {e:?}: expected KEY=value")));
            }
        }
        let workdir = self.workdir.clone().unwrap_or_else(|| profile.workspace());
        let size = self.tmpfs_size.as_deref().unwrap_or(DEFAULT_TMPFS_SIZE);
        crate::units::parse_size(size).map_err(|e| invalid(format!("--tmpfs-size: {e}")))?;
        let mut paths: Vec<PathBuf> = if self.tmpfs.is_empty() {
            DEFAULT_TMPFS.iter().map(PathBuf::from).collect()
        } else {
            self.tmpfs.clone()
        };
        if !paths.contains(&workdir) {
            paths.push(workdir.clone());
        }
        for p in paths.iter().chain([&workdir]) {
            check_path(p)?;
        }
        if let Some(img) = &self.image {
            warren_images::normalize_name(img).map_err(|e| Error::Image {
                name: img.clone(),
                msg: e.to_string(),
            })?;
        }
        Ok(PoolConfig {
            format: CONFIG_FORMAT,
            name: self.name.clone(),
            profile: profile.request,
            image: self.image.clone(),
            size: self.size,
            limits: ExecLimits {
                timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
                memory,
                pids,
                output_bytes: self.output_limit.unwrap_or(DEFAULT_OUTPUT_LIMIT),
            },
            cpus: self.cpus,
            env: self.env.clone(),
            workdir,
            tmpfs: paths.iter().map(|p| Tmpfs::scratch(p, size)).collect(),
            user: self.user,
            created: crate::proc::now_secs(),
        })
    }
}

fn check_path(p: &Path) -> Result<()> {
    let bad = |m: &str| invalid(format!("path {}: {m}", p.display()));
    if !p.is_absolute() {
        return Err(bad("must be absolute"));
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad("must not contain .."));
    }
    if p == Path::new("/") {
        return Err(bad("the root cannot be a tmpfs"));
    }
    for reserved in ["/proc", "/sys", "/dev", "/etc", "/.warren"] {
        if p.starts_with(reserved) {
            return Err(bad(&format!("{reserved} is managed by warren")));
        }
    }
    Ok(())
}

impl PoolConfig {
    /// Reads `pool.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let c: Self = serde_json::from_slice(&data)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        if c.format != CONFIG_FORMAT {
            return Err(invalid(format!(
                "{}: format {} is not {CONFIG_FORMAT}",
                path.display(),
                c.format
            )));
        }
        Ok(c)
    }

    /// Writes `pool.json` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).map_err(|e| invalid(e.to_string()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, data).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    }

    /// Every tmpfs a reset clears: the writable paths and `/dev/shm`.
    pub fn reset_mounts(&self) -> Vec<Tmpfs> {
        let mut v = self.tmpfs.clone();
        v.push(dev_shm());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> PoolOptions {
        PoolOptions {
            name: "py".into(),
            size: 4,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_come_from_the_profile() {
        let c = opts().validate().expect("valid");
        assert_eq!(c.profile, "agent");
        assert_eq!(c.limits.memory, 4 << 30);
        assert_eq!(c.limits.pids, 512);
        assert_eq!(c.workdir, PathBuf::from("/workspace"));
        let dsts: Vec<_> = c.tmpfs.iter().map(|t| t.dst.clone()).collect();
        assert_eq!(
            dsts,
            ["/tmp", "/var/tmp", "/workspace"]
                .map(PathBuf::from)
                .to_vec()
        );
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("pool.json");
        c.save(&p).expect("save");
        assert_eq!(PoolConfig::load(&p).expect("load"), c);
    }

    #[test]
    fn bad_options_are_named() {
        let e = PoolOptions { size: 0, ..opts() }
            .validate()
            .expect_err("size 0");
        assert!(e.to_string().contains("--size must be at least 1"), "{e}");
        let e = PoolOptions {
            name: "Bad Name".into(),
            ..opts()
        }
        .validate()
        .expect_err("name");
        assert!(e.to_string().contains("invalid pool name"), "{e}");
        let e = PoolOptions {
            profile: Some("nosuch".into()),
            ..opts()
        }
        .validate()
        .expect_err("profile");
        assert!(e.to_string().contains("nosuch"), "{e}");
        let e = PoolOptions {
            tmpfs: vec!["/etc/x".into()],
            ..opts()
        }
        .validate()
        .expect_err("tmpfs");
        assert!(e.to_string().contains("/etc"), "{e}");
        let e = PoolOptions {
            env: vec!["NOVALUE".into()],
            ..opts()
        }
        .validate()
        .expect_err("env");
        assert!(e.to_string().contains("KEY=value"), "{e}");
    }
}
