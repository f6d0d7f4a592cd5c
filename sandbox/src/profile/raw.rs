//! The profile file format as written: every table rejects unknown keys, and values that
//! can be wrong keep their position so that errors name the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub extends: Option<Spanned<String>>,
    pub description: Option<String>,
    pub no_new_privs: Option<bool>,
    pub readonly_root: Option<bool>,
    pub workspace: Option<Spanned<String>>,
    pub namespaces: Option<RawNamespaces>,
    pub network: Option<RawNetwork>,
    pub capabilities: Option<RawCapabilities>,
    pub seccomp: Option<RawSeccomp>,
    pub landlock: Option<RawLandlock>,
    pub rlimits: Option<BTreeMap<String, Spanned<RawRlimit>>>,
    pub cgroup: Option<RawCgroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNamespaces {
    pub pid: Option<bool>,
    pub ipc: Option<bool>,
    pub uts: Option<bool>,
    pub mount: Option<bool>,
    pub cgroup: Option<bool>,
    pub user: Option<bool>,
    pub time: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapabilities {
    /// Replaces the inherited set.
    pub set: Option<Vec<Spanned<String>>>,
    /// Added to it.
    pub add: Option<Vec<Spanned<String>>>,
    /// Removed from it.
    pub drop: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeccomp {
    pub default_action: Option<Spanned<String>>,
    pub default_errno: Option<Spanned<RawErrno>>,
    pub deny_newer_syscalls: Option<bool>,
    pub rule: Option<Vec<Spanned<RawRule>>>,
}

/// An errno by name (`"EPERM"`) or number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawErrno {
    Number(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub syscalls: Vec<Spanned<String>>,
    pub action: Spanned<String>,
    /// For `errno` (default EPERM) and `trace` (default 0) actions.
    pub errno: Option<Spanned<RawErrno>>,
    pub args: Option<Vec<Spanned<RawArg>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArg {
    pub index: i64,
    pub op: String,
    pub value: i64,
    pub mask: Option<i64>,
    pub width: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLandlock {
    pub enabled: Option<bool>,
    pub mode: Option<Spanned<String>>,
    pub abi: Option<Spanned<i64>>,
    pub restrict_fs: Option<bool>,
    pub restrict_net: Option<Spanned<bool>>,
    pub scope: Option<Spanned<Vec<String>>>,
    pub fs: Option<Vec<Spanned<RawFsRule>>>,
    pub net: Option<Vec<Spanned<RawNetRule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFsRule {
    pub path: String,
    pub access: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetRule {
    pub port: i64,
    pub access: Vec<String>,
}

/// A limit: a number (soft = hard), `"unlimited"`, or `{ soft, hard }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRlimit {
    Both(RawLimitValue),
    Pair(RawPair),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPair {
    pub soft: RawLimitValue,
    pub hard: RawLimitValue,
}

/// A limit value: a number or `"unlimited"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawLimitValue {
    Number(i64),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCgroup {
    /// Bytes, or a size like `"4GiB"`.
    pub memory: Option<Spanned<RawLimitValue>>,
    pub memory_swap: Option<Spanned<RawLimitValue>>,
    pub pids: Option<Spanned<i64>>,
    /// CPUs worth of time, e.g. `2.5` (quota = cpus × period).
    pub cpus: Option<Spanned<f64>>,
    pub cpu_period_us: Option<Spanned<i64>>,
    pub cpuset_cpus: Option<Spanned<String>>,
    pub cpuset_mems: Option<Spanned<String>>,
}
