//! Landlock: build a ruleset from a profile or from the `run.warren.landlock` annotation
//! and apply it to the calling process (`landlock_restrict_self`), in the container's init
//! right before `execve`.
//!
//! # The `run.warren.landlock` annotation
//!
//! JSON with the kernel's numeric access rights, after the stalled runtime-spec proposal
//! opencontainers/runtime-spec#1241:
//!
//! ```json
//! {
//!   "abi": 4,
//!   "mode": "best_effort",
//!   "handled_fs": 32767,
//!   "handled_net": 3,
//!   "scoped": 0,
//!   "fs": [{ "path": "/data", "access": 12 }],
//!   "net": [{ "port": 443, "access": 2 }]
//! }
//! ```
//!
//! - `abi` (required, 1..=7): the Landlock ABI the rules are written for.
//! - `mode`: `"best_effort"` (default: apply what the kernel supports, report the rest) or
//!   `"strict"` (fail unless the kernel supports every handled right).
//! - `handled_fs`: `LANDLOCK_ACCESS_FS_*` bits the ruleset restricts; default: every
//!   filesystem right of `abi`. `0` leaves the filesystem alone.
//! - `handled_net`: `LANDLOCK_ACCESS_NET_*` bits (BIND_TCP = 1, CONNECT_TCP = 2; ABI ≥ 4);
//!   default 0 (network not restricted).
//! - `scoped`: `LANDLOCK_SCOPE_*` bits (ABSTRACT_UNIX_SOCKET = 1, SIGNAL = 2; ABI ≥ 6).
//! - `fs`: grants, each `{ "path": absolute path, "access": bits ⊆ handled_fs }`.
//! - `net`: grants, each `{ "port": TCP port, "access": bits ⊆ handled_net }`.
//!
//! Unknown keys, unknown bits, grants outside the handled set and rights newer than `abi`
//! are errors. A grant on a path missing in the container grants nothing and is reported.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ::landlock::{
    AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use crate::profile::LandlockMode;
use crate::profile::access::{self, FS_DIR_ONLY};
use crate::profile::{LandlockPolicy, Profile};

/// The annotation key.
pub const ANNOTATION: &str = "run.warren.landlock";

/// Errors of the Landlock layer.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The annotation is not valid JSON of the documented schema.
    #[error("parse the {ANNOTATION} annotation: {0}")]
    Annotation(String),
    /// The rules are inconsistent (unknown bits, grants outside the handled set...).
    #[error("validate Landlock rules: {0}")]
    Invalid(String),
    /// Strict mode, and the kernel lacks something the rules need.
    #[error("apply Landlock rules in strict mode: {0}")]
    Unsupported(String),
    /// The landlock crate or the kernel refused the ruleset.
    #[error("apply Landlock rules: {0}")]
    Ruleset(#[from] ::landlock::RulesetError),
    /// A path could not be opened.
    #[error("open {path} for a Landlock rule: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A filesystem grant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsGrant {
    /// Absolute path.
    pub path: PathBuf,
    /// `LANDLOCK_ACCESS_FS_*` bits.
    pub access: u64,
}

/// A network grant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetGrant {
    /// TCP port.
    pub port: u16,
    /// `LANDLOCK_ACCESS_NET_*` bits.
    pub access: u64,
}

/// A Landlock ruleset description: the annotation's schema (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockRules {
    /// ABI the rules are written for.
    pub abi: u32,
    /// Best effort or strict.
    #[serde(default)]
    pub mode: LandlockMode,
    /// Handled filesystem rights; `None`: all of `abi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_fs: Option<u64>,
    /// Handled network rights.
    #[serde(default)]
    pub handled_net: u64,
    /// Scopes.
    #[serde(default)]
    pub scoped: u64,
    /// Filesystem grants.
    #[serde(default)]
    pub fs: Vec<FsGrant>,
    /// Network grants.
    #[serde(default)]
    pub net: Vec<NetGrant>,
}

impl LandlockRules {
    /// The rules of a profile's Landlock policy; `None` when the policy is disabled.
    pub fn from_policy(policy: &LandlockPolicy) -> Option<Self> {
        if !policy.enabled {
            return None;
        }
        Some(LandlockRules {
            abi: policy.abi,
            mode: policy.mode,
            handled_fs: Some(if policy.restrict_fs {
                access::fs_rights(policy.abi)
            } else {
                0
            }),
            handled_net: if policy.restrict_net {
                access::net_rights(policy.abi)
            } else {
                0
            },
            scoped: policy.scope,
            fs: if policy.restrict_fs {
                policy
                    .fs
                    .iter()
                    .map(|r| FsGrant {
                        path: r.path.clone(),
                        access: r.access,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            net: policy
                .net
                .iter()
                .map(|r| NetGrant {
                    port: r.port,
                    access: r.access,
                })
                .collect(),
        })
    }

    /// The rules of `profile`; `None` when its Landlock policy is disabled.
    pub fn from_profile(profile: &Profile) -> Option<Self> {
        Self::from_policy(&profile.landlock)
    }

    /// Parses and validates the annotation's JSON.
    pub fn from_annotation(json: &str) -> Result<Self, LandlockError> {
        let rules: LandlockRules =
            serde_json::from_str(json).map_err(|e| LandlockError::Annotation(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// The annotation's JSON.
    pub fn to_annotation(&self) -> String {
        // Serializing plain integers, strings and paths cannot fail; fall back to an
        // invalid document rather than panicking so that a bug cannot drop the rules.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"invalid\":true}"))
    }

    /// Handled filesystem rights.
    pub fn handled_fs(&self) -> u64 {
        self.handled_fs
            .unwrap_or_else(|| access::fs_rights(self.abi))
    }

    /// Checks consistency without touching the kernel.
    pub fn validate(&self) -> Result<(), LandlockError> {
        let bad = |m: String| Err(LandlockError::Invalid(m));
        if !(1..=access::MAX_ABI).contains(&self.abi) {
            return bad(format!(
                "abi {} is not in 1..={}",
                self.abi,
                access::MAX_ABI
            ));
        }
        let fs = self.handled_fs();
        if fs & !access::fs_rights(self.abi) != 0 {
            return bad(format!(
                "handled_fs {fs:#x} has rights unknown to abi {}",
                self.abi
            ));
        }
        if self.handled_net & !access::net_rights(self.abi) != 0 {
            return bad(format!(
                "handled_net {:#x} has rights unknown to abi {}",
                self.handled_net, self.abi
            ));
        }
        if self.scoped & !access::scopes(self.abi) != 0 {
            return bad(format!(
                "scoped {:#x} has scopes unknown to abi {}",
                self.scoped, self.abi
            ));
        }
        for g in &self.fs {
            if !g.path.is_absolute() {
                return bad(format!(
                    "fs grant {}: not an absolute path",
                    g.path.display()
                ));
            }
            if g.access == 0 || g.access & !fs != 0 {
                return bad(format!(
                    "fs grant {}: access {:#x} is empty or not within handled_fs {fs:#x}",
                    g.path.display(),
                    g.access
                ));
            }
        }
        for g in &self.net {
            if g.access == 0 || g.access & !self.handled_net != 0 {
                return bad(format!(
                    "net grant {}: access {:#x} is empty or not within handled_net {:#x}",
                    g.port, g.access, self.handled_net
                ));
            }
        }
        if fs == 0 && self.handled_net == 0 && self.scoped == 0 {
            return bad("nothing is handled: the ruleset would restrict nothing".to_owned());
        }
        Ok(())
    }
}

/// How much of a ruleset the kernel enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Enforcement {
    /// Everything asked for.
    Full,
    /// Some of it (best effort on an older kernel).
    Partial,
    /// Nothing (no Landlock in this kernel).
    None,
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandlockReport {
    /// ABI the rules were written for.
    pub requested_abi: u32,
    /// The kernel's ABI (0: no Landlock).
    pub kernel_abi: u32,
    /// The ABI level actually applied: the lower of the two.
    pub applied_abi: u32,
    /// How much is enforced.
    pub enforcement: Enforcement,
    /// Handled filesystem rights the kernel lacks (not enforced).
    pub dropped_fs: u64,
    /// Handled network rights the kernel lacks.
    pub dropped_net: u64,
    /// Scopes the kernel lacks.
    pub dropped_scopes: u64,
    /// Grants skipped: the path and why (missing in the container...).
    pub skipped: Vec<(PathBuf, String)>,
}

impl LandlockReport {
    /// Lines saying what was degraded; empty when fully enforced.
    pub fn degradations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.enforcement == Enforcement::None {
            out.push("landlock: not enforced (the kernel has no Landlock)".to_owned());
        } else if self.applied_abi < self.requested_abi {
            out.push(format!(
                "landlock: rules for abi {} applied at abi {}",
                self.requested_abi, self.applied_abi
            ));
        }
        if self.dropped_fs != 0 {
            out.push(format!(
                "landlock: filesystem rights not enforced: {}",
                access::names(access::FS_NAMES, self.dropped_fs).join(", ")
            ));
        }
        if self.dropped_net != 0 {
            out.push(format!(
                "landlock: network rights not enforced: {}",
                access::names(access::NET_NAMES, self.dropped_net).join(", ")
            ));
        }
        if self.dropped_scopes != 0 {
            out.push(format!(
                "landlock: scopes not enforced: {}",
                access::names(access::SCOPE_NAMES, self.dropped_scopes).join(", ")
            ));
        }
        for (p, why) in &self.skipped {
            out.push(format!("landlock: grant on {} skipped: {why}", p.display()));
        }
        out
    }
}

fn open_path(path: &Path) -> std::io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated and alive for the call; O_PATH opens no file content.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_dir(fd: &OwnedFd) -> std::io::Result<bool> {
    Ok(std::fs::File::from(fd.try_clone()?).metadata()?.is_dir())
}

fn fs_flags(bits: u64) -> Result<BitFlags<AccessFs>, LandlockError> {
    BitFlags::<AccessFs>::from_bits(bits).map_err(|_| {
        LandlockError::Invalid(format!("filesystem access {bits:#x} has unknown bits"))
    })
}

fn net_flags(bits: u64) -> Result<BitFlags<AccessNet>, LandlockError> {
    BitFlags::<AccessNet>::from_bits(bits)
        .map_err(|_| LandlockError::Invalid(format!("network access {bits:#x} has unknown bits")))
}

fn scope_flags(bits: u64) -> Result<BitFlags<Scope>, LandlockError> {
    BitFlags::<Scope>::from_bits(bits)
        .map_err(|_| LandlockError::Invalid(format!("scopes {bits:#x} has unknown bits")))
}

/// Applies `rules` to the calling process (and its future children). Sets
/// `no_new_privs` (Landlock requires it, or `CAP_SYS_ADMIN`). Irreversible: call it in the
/// container's init, or in a forked child.
pub fn apply(rules: &LandlockRules) -> Result<LandlockReport, LandlockError> {
    rules.validate()?;
    let kernel_abi = crate::probe::landlock_abi().unwrap_or(0);
    let applied_abi = kernel_abi.min(rules.abi);
    let handled_fs = rules.handled_fs();
    let dropped_fs = handled_fs & !access::fs_rights(kernel_abi);
    let dropped_net = rules.handled_net & !access::net_rights(kernel_abi);
    let dropped_scopes = rules.scoped & !access::scopes(kernel_abi);
    let strict = rules.mode == LandlockMode::Strict;
    if strict && (kernel_abi == 0 || dropped_fs | dropped_net | dropped_scopes != 0) {
        return Err(LandlockError::Unsupported(format!(
            "the kernel has Landlock abi {kernel_abi}; the rules need fs {:#x}, net {:#x}, scopes {:#x} beyond it",
            dropped_fs, dropped_net, dropped_scopes
        )));
    }
    let level = if strict {
        CompatLevel::HardRequirement
    } else {
        CompatLevel::BestEffort
    };

    let mut ruleset = Ruleset::default().set_compatibility(level);
    if handled_fs != 0 {
        ruleset = ruleset.handle_access(fs_flags(handled_fs)?)?;
    }
    if rules.handled_net != 0 {
        ruleset = ruleset.handle_access(net_flags(rules.handled_net)?)?;
    }
    if rules.scoped != 0 {
        ruleset = ruleset.scope(scope_flags(rules.scoped)?)?;
    }
    let mut created = ruleset.create()?;
    let mut skipped = Vec::new();
    for g in &rules.fs {
        let fd = match open_path(&g.path) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES)
                ) =>
            {
                skipped.push((g.path.clone(), e.to_string()));
                continue;
            }
            Err(source) => {
                return Err(LandlockError::Path {
                    path: g.path.clone(),
                    source,
                });
            }
        };
        let dir = is_dir(&fd).map_err(|source| LandlockError::Path {
            path: g.path.clone(),
            source,
        })?;
        // Directory-only rights mean nothing on a file (and the kernel refuses them).
        let access = if dir {
            g.access
        } else {
            g.access & !FS_DIR_ONLY
        };
        if access == 0 {
            skipped.push((
                g.path.clone(),
                "only directory rights granted on a file".to_owned(),
            ));
            continue;
        }
        created = created.add_rule(PathBeneath::new(fd.as_fd(), fs_flags(access)?))?;
    }
    for g in &rules.net {
        created = created.add_rule(NetPort::new(g.port, net_flags(g.access)?))?;
    }
    let status: RestrictionStatus = created.restrict_self()?;
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        RulesetStatus::NotEnforced => Enforcement::None,
    };
    if strict && enforcement != Enforcement::Full {
        return Err(LandlockError::Unsupported(format!(
            "the kernel enforced the ruleset only {enforcement:?}"
        )));
    }
    Ok(LandlockReport {
        requested_abi: rules.abi,
        kernel_abi,
        applied_abi,
        enforcement,
        dropped_fs,
        dropped_net,
        dropped_scopes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::load_builtin;

    #[test]
    fn annotation_round_trip_from_a_profile() {
        let agent = load_builtin("agent").unwrap();
        let rules = LandlockRules::from_profile(&agent).unwrap();
        assert_eq!(rules.abi, 7);
        assert_eq!(rules.handled_fs(), access::fs_rights(7));
        assert_eq!(
            rules.handled_net,
            access::NET_BIND_TCP | access::NET_CONNECT_TCP
        );
        assert!(rules.net.is_empty());
        let json = rules.to_annotation();
        assert_eq!(LandlockRules::from_annotation(&json).unwrap(), rules);
        assert!(LandlockRules::from_profile(&load_builtin("trusted").unwrap()).is_none());
    }

    #[test]
    fn annotation_schema_defaults_and_errors() {
        let r = LandlockRules::from_annotation(
            r#"{"abi": 4, "fs": [{"path": "/data", "access": 12}]}"#,
        )
        .unwrap();
        assert_eq!(r.mode, LandlockMode::BestEffort);
        assert_eq!(r.handled_fs(), access::fs_rights(4));
        assert_eq!(r.handled_net, 0);
        let strict = LandlockRules::from_annotation(
            r#"{"abi": 6, "mode": "strict", "handled_fs": 0, "scoped": 3}"#,
        )
        .unwrap();
        assert_eq!(strict.mode, LandlockMode::Strict);

        let bad = [
            (r#"{"abi": 4, "extra": 1}"#, "unknown field"),
            (r#"{"abi": 0}"#, "abi 0"),
            (r#"{"abi": 9}"#, "abi 9"),
            (r#"{"abi": 4, "mode": "lax"}"#, "unknown variant"),
            (r#"{"abi": 3, "handled_net": 3}"#, "handled_net"),
            (r#"{"abi": 5, "scoped": 1}"#, "scoped"),
            (r#"{"abi": 2, "handled_fs": 32767}"#, "handled_fs"),
            (
                r#"{"abi": 4, "fs": [{"path": "data", "access": 4}]}"#,
                "absolute",
            ),
            (
                r#"{"abi": 4, "handled_fs": 4, "fs": [{"path": "/d", "access": 8}]}"#,
                "not within",
            ),
            (
                r#"{"abi": 4, "handled_net": 2, "net": [{"port": 80, "access": 1}]}"#,
                "not within",
            ),
            (
                r#"{"abi": 4, "net": [{"port": 70000, "access": 2}]}"#,
                "70000",
            ),
            (r#"{"abi": 4, "handled_fs": 0}"#, "restrict nothing"),
            ("not json", "expected"),
        ];
        for (json, needle) in bad {
            let err = LandlockRules::from_annotation(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn report_says_what_was_degraded() {
        let r = LandlockReport {
            requested_abi: 7,
            kernel_abi: 3,
            applied_abi: 3,
            enforcement: Enforcement::Partial,
            dropped_fs: access::FS_IOCTL_DEV,
            dropped_net: access::NET_CONNECT_TCP,
            dropped_scopes: access::SCOPE_SIGNAL,
            skipped: vec![("/data".into(), "missing".to_owned())],
        };
        let d = r.degradations().join("\n");
        for needle in [
            "abi 7 applied at abi 3",
            "ioctl_dev",
            "connect",
            "signal",
            "/data",
        ] {
            assert!(d.contains(needle), "{d}");
        }
    }
}
