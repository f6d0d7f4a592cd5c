//! The validated profile: what a profile file and the files it extends add up to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::filter::{Action, ArgCondition};

/// Where a rule or setting was written: the file (or `builtin:NAME`) and the line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    /// The file, as given, or `builtin:NAME` for a built-in profile.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The container's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// A new network namespace with no interface up, not even loopback.
    #[default]
    None,
    /// A new network namespace with only loopback, brought up by the runtime.
    Loopback,
    /// The host's network namespace.
    Host,
}

impl NetworkMode {
    /// The name used in profiles and in the `run.warren.network` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Loopback => "loopback",
            NetworkMode::Host => "host",
        }
    }
}

/// Namespaces a profile asks for. `None` leaves the spec's choice alone; `Some(true)` adds
/// a new namespace of the kind; `Some(false)` removes it (shares the runtime's). The
/// network namespace follows [`NetworkMode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Namespaces {
    /// PID namespace.
    pub pid: Option<bool>,
    /// IPC namespace.
    pub ipc: Option<bool>,
    /// UTS namespace.
    pub uts: Option<bool>,
    /// Mount namespace.
    pub mount: Option<bool>,
    /// Cgroup namespace.
    pub cgroup: Option<bool>,
    /// User namespace (needs uid/gid mappings in the spec).
    pub user: Option<bool>,
    /// Time namespace.
    pub time: Option<bool>,
}

/// One seccomp rule of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SeccompRule {
    /// Syscall names.
    pub syscalls: Vec<String>,
    /// Action when the conditions hold.
    pub action: Action,
    /// Conditions, all of which must hold.
    pub args: Vec<ArgCondition>,
    /// Where the rule was written.
    pub origin: Origin,
}

/// A profile's seccomp policy. For each syscall the rules are tried in order (rules of the
/// extending file before those of the file it extends, each file top to bottom); the first
/// whose conditions hold decides; otherwise `default_action`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SeccompPolicy {
    /// Action for syscalls no rule decides.
    pub default_action: Action,
    /// Fail syscalls newer than warren's syscall table with `ENOSYS` (a deny-list profile
    /// would otherwise allow whatever a future kernel adds).
    pub deny_newer_syscalls: bool,
    /// Rules in priority order.
    pub rules: Vec<SeccompRule>,
}

/// How strictly Landlock is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LandlockMode {
    /// Apply what the kernel supports and report what was left out.
    #[default]
    BestEffort,
    /// Fail unless the kernel supports every right asked for.
    Strict,
}

/// A Landlock filesystem rule: `access` granted beneath `path`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FsRule {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// `LANDLOCK_ACCESS_FS_*` bits.
    pub access: u64,
    /// Where the rule was written.
    pub origin: Origin,
}

/// A Landlock network rule: `access` granted for TCP `port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct NetRule {
    /// TCP port.
    pub port: u16,
    /// `LANDLOCK_ACCESS_NET_*` bits.
    pub access: u64,
    /// Where the rule was written.
    pub origin: Origin,
}

/// A profile's Landlock policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LandlockPolicy {
    /// Whether Landlock is applied at all.
    pub enabled: bool,
    /// Best effort or strict.
    pub mode: LandlockMode,
    /// The ABI the rules are written for: the handled rights are all those of this ABI.
    pub abi: u32,
    /// Handle every filesystem right of `abi`: only what `fs` grants is allowed.
    pub restrict_fs: bool,
    /// Handle TCP bind/connect (ABI ≥ 4): only the ports in `net` are allowed.
    pub restrict_net: bool,
    /// `LANDLOCK_SCOPE_*` bits (ABI ≥ 6).
    pub scope: u64,
    /// Filesystem grants.
    pub fs: Vec<FsRule>,
    /// Network grants.
    pub net: Vec<NetRule>,
}

/// A resource limit; `u64::MAX` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Rlimit {
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Cgroup limits (`linux.resources`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct CgroupLimits {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory + swap limit in bytes (equal to `memory`: no swap).
    pub memory_swap: Option<i64>,
    /// Maximum number of tasks.
    pub pids: Option<i64>,
    /// CPU quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    pub cpu_period: Option<u64>,
    /// cpuset CPUs, e.g. `0-3`.
    pub cpuset_cpus: Option<String>,
    /// cpuset memory nodes.
    pub cpuset_mems: Option<String>,
}

/// A validated profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Profile {
    /// The profile's name: the built-in's name or the file's stem.
    pub name: String,
    /// The files it was made of, the extending file first (`builtin:NAME` for built-ins).
    pub chain: Vec<String>,
    /// Free text.
    pub description: String,
    /// Set `no_new_privs` (setuid binaries and file capabilities stop working).
    pub no_new_privs: bool,
    /// Mount the container's root filesystem read-only. Landlock (up to ABI 7) cannot stop
    /// chmod, chown, utimes or xattr changes, so this is what keeps the image's files as
    /// they were; the workspace and a fresh tmpfs on `/tmp` stay writable.
    pub readonly_root: bool,
    /// The writable workspace inside the container (granted read-write by Landlock).
    pub workspace: Option<PathBuf>,
    /// Namespaces.
    pub namespaces: Namespaces,
    /// Network mode.
    pub network: NetworkMode,
    /// Capabilities kept (bounding, effective, permitted); `CAP_*` names.
    pub capabilities: BTreeSet<String>,
    /// Seccomp.
    pub seccomp: SeccompPolicy,
    /// Landlock.
    pub landlock: LandlockPolicy,
    /// Resource limits by `RLIMIT_*` name.
    pub rlimits: BTreeMap<String, Rlimit>,
    /// Cgroup limits.
    pub cgroup: CgroupLimits,
}

impl Profile {
    /// Whether this is a built-in profile used as shipped (its filter is precompiled).
    pub fn is_unmodified_builtin(&self) -> bool {
        self.chain.len() == 1 && self.chain[0] == format!("builtin:{}", self.name)
    }
}
