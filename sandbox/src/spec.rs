//! Profile → OCI spec edits: capabilities, `noNewPrivileges`, rlimits, cgroup resources,
//! namespaces (the network one by network mode) and annotations. Deterministic: the same
//! profile and spec always give the same edits.
//!
//! Seccomp is not written into `linux.seccomp`: the runtime installs the profile's
//! precompiled filter itself ([`crate::seccomp::filter_for_profile`]). Landlock travels as
//! the `run.warren.landlock` annotation for the init to apply.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType,
    LinuxPids, LinuxResources, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::landlock::{ANNOTATION as LANDLOCK_ANNOTATION, LandlockRules};
use crate::profile::{NetworkMode, Profile};

/// Annotation naming the profile applied.
pub const PROFILE_ANNOTATION: &str = "run.warren.profile";
/// Annotation with the network mode (`none`, `loopback`, `host`): with `loopback` the
/// runtime brings `lo` up in the new network namespace; with `none` it leaves it down.
pub const NETWORK_ANNOTATION: &str = "run.warren.network";
/// Annotation with the workspace path.
pub const WORKSPACE_ANNOTATION: &str = "run.warren.workspace";

/// Why a profile could not be applied to a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec has no `process`.
    #[error("apply profile {0}: the spec has no process")]
    NoProcess(String),
    /// The spec and the profile disagree in a way that cannot be resolved safely.
    #[error("apply profile {profile}: {message}")]
    Conflict {
        /// The profile.
        profile: String,
        /// What conflicts.
        message: String,
    },
    /// A name in the profile has no OCI equivalent.
    #[error("apply profile {profile}: {message}")]
    Name {
        /// The profile.
        profile: String,
        /// What is wrong.
        message: String,
    },
}

fn capability(name: &str, profile: &str) -> Result<Capability, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|e| {
        SpecError::Name {
            profile: profile.to_owned(),
            message: format!("capability {name}: {e}"),
        }
    })
}

fn rlimit_type(name: &str, profile: &str) -> Result<PosixRlimitType, SpecError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|e| {
        SpecError::Name {
            profile: profile.to_owned(),
            message: format!("rlimit {name}: {e}"),
        }
    })
}

/// Applies `profile` to `spec`:
/// - `process.capabilities`: bounding = effective = permitted = the profile's set;
///   inheritable and ambient empty;
/// - `process.noNewPrivileges`;
/// - `process.rlimits`: the profile's limits replace those of the same type, others stay;
/// - `linux.resources`: memory (limit, swap), pids, cpu (quota, period, cpus, mems) where
///   the profile sets them;
/// - `linux.namespaces`: added or removed as the profile says; network: `none` and
///   `loopback` need a new network namespace (refused if the spec joins an existing one),
///   `host` removes it; a user namespace needs uid and gid mappings in the spec;
/// - annotations: `run.warren.profile`, `run.warren.network`, `run.warren.workspace`, and
///   `run.warren.landlock` (removed when the profile has no Landlock).
pub fn apply_profile(profile: &Profile, spec: &mut Spec) -> Result<(), SpecError> {
    let name = profile.name.as_str();
    let process = spec
        .process_mut()
        .as_mut()
        .ok_or_else(|| SpecError::NoProcess(name.to_owned()))?;

    let caps: HashSet<Capability> = profile
        .capabilities
        .iter()
        .map(|c| capability(c, name))
        .collect::<Result<_, _>>()?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(caps.clone()));
    lc.set_effective(Some(caps.clone()));
    lc.set_permitted(Some(caps));
    lc.set_inheritable(Some(HashSet::new()));
    lc.set_ambient(Some(HashSet::new()));
    process.set_capabilities(Some(lc));
    process.set_no_new_privileges(Some(profile.no_new_privs));

    let mut rlimits: Vec<PosixRlimit> = process.rlimits().clone().unwrap_or_default();
    for (n, l) in &profile.rlimits {
        let typ = rlimit_type(n, name)?;
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(l.soft)
            .hard(l.hard)
            .build()
            .map_err(|e| SpecError::Name {
                profile: name.to_owned(),
                message: format!("rlimit {n}: {e}"),
            })?;
        match rlimits.iter_mut().find(|x| x.typ() == typ) {
            Some(existing) => *existing = r,
            None => rlimits.push(r),
        }
    }
    process.set_rlimits(if rlimits.is_empty() {
        None
    } else {
        Some(rlimits)
    });

    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let c = &profile.cgroup;
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    if c.memory.is_some() || c.memory_swap.is_some() {
        let mut m: LinuxMemory = (*resources.memory()).unwrap_or_default();
        if let Some(v) = c.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = c.memory_swap {
            m.set_swap(Some(v));
        }
        resources.set_memory(Some(m));
    }
    if let Some(p) = c.pids {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        resources.set_pids(Some(pids));
    }
    if c.cpu_quota.is_some()
        || c.cpu_period.is_some()
        || c.cpuset_cpus.is_some()
        || c.cpuset_mems.is_some()
    {
        let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
        if let Some(q) = c.cpu_quota {
            cpu.set_quota(Some(q));
        }
        if let Some(p) = c.cpu_period {
            cpu.set_period(Some(p));
        }
        if let Some(s) = &c.cpuset_cpus {
            cpu.set_cpus(Some(s.clone()));
        }
        if let Some(s) = &c.cpuset_mems {
            cpu.set_mems(Some(s.clone()));
        }
        resources.set_cpu(Some(cpu));
    }
    linux.set_resources(Some(resources));

    let mut namespaces: Vec<LinuxNamespace> = linux.namespaces().clone().unwrap_or_default();
    let ns = &profile.namespaces;
    let wanted = [
        (LinuxNamespaceType::Pid, ns.pid),
        (LinuxNamespaceType::Ipc, ns.ipc),
        (LinuxNamespaceType::Uts, ns.uts),
        (LinuxNamespaceType::Mount, ns.mount),
        (LinuxNamespaceType::Cgroup, ns.cgroup),
        (LinuxNamespaceType::User, ns.user),
        (LinuxNamespaceType::Time, ns.time),
        (
            LinuxNamespaceType::Network,
            Some(profile.network != NetworkMode::Host),
        ),
    ];
    for (typ, want) in wanted {
        match want {
            None => {}
            Some(false) => namespaces.retain(|n| n.typ() != typ),
            Some(true) => match namespaces.iter().find(|n| n.typ() == typ) {
                Some(existing)
                    if typ == LinuxNamespaceType::Network && existing.path().is_some() =>
                {
                    return Err(SpecError::Conflict {
                        profile: name.to_owned(),
                        message: format!(
                            "network mode {} needs a new network namespace, the spec joins {}",
                            profile.network.as_str(),
                            existing
                                .path()
                                .as_ref()
                                .map_or(String::new(), |p| p.display().to_string())
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    let mut n = LinuxNamespace::default();
                    n.set_typ(typ);
                    namespaces.push(n);
                }
            },
        }
    }
    if ns.user == Some(true)
        && (linux.uid_mappings().as_ref().is_none_or(Vec::is_empty)
            || linux.gid_mappings().as_ref().is_none_or(Vec::is_empty))
    {
        return Err(SpecError::Conflict {
            profile: name.to_owned(),
            message: "a user namespace needs uid and gid mappings in the spec".to_owned(),
        });
    }
    linux.set_namespaces(Some(namespaces));

    let annotations = spec.annotations_mut().get_or_insert_with(Default::default);
    annotations.insert(PROFILE_ANNOTATION.to_owned(), profile.name.clone());
    annotations.insert(
        NETWORK_ANNOTATION.to_owned(),
        profile.network.as_str().to_owned(),
    );
    match &profile.workspace {
        Some(w) => annotations.insert(WORKSPACE_ANNOTATION.to_owned(), w.display().to_string()),
        None => annotations.remove(WORKSPACE_ANNOTATION),
    };
    match LandlockRules::from_profile(profile) {
        Some(rules) => annotations.insert(LANDLOCK_ANNOTATION.to_owned(), rules.to_annotation()),
        None => annotations.remove(LANDLOCK_ANNOTATION),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{load_builtin, load_str};

    fn spec() -> Spec {
        Spec::default()
    }

    fn ns_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let mut t: Vec<_> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        t.sort_by_key(|t| format!("{t:?}"));
        t
    }

    #[test]
    fn agent_edits() {
        let agent = load_builtin("agent").unwrap();
        let mut s = spec();
        apply_profile(&agent, &mut s).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        let want: HashSet<Capability> = agent
            .capabilities
            .iter()
            .map(|c| capability(c, "t").unwrap())
            .collect();
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.permitted().as_ref(), Some(&want));
        assert_eq!(caps.ambient().as_ref().map(HashSet::len), Some(0));
        assert!(!want.contains(&Capability::SysAdmin));
        let rl = p.rlimits().as_ref().unwrap();
        let nofile = rl
            .iter()
            .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
            .unwrap();
        assert_eq!((nofile.soft(), nofile.hard()), (1024, 4096));
        assert_eq!(
            rl.iter()
                .filter(|r| r.typ() == PosixRlimitType::RlimitNofile)
                .count(),
            1
        );
        let res = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(4 << 30));
        assert_eq!(res.memory().unwrap().swap(), Some(4 << 30));
        assert_eq!(res.pids().unwrap().limit(), 512);
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(200_000));
        assert_eq!(res.cpu().as_ref().unwrap().period(), Some(100_000));
        assert_eq!(
            ns_types(&s),
            [
                LinuxNamespaceType::Cgroup,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Uts,
            ]
        );
        let a = s.annotations().as_ref().unwrap();
        assert_eq!(a[PROFILE_ANNOTATION], "agent");
        assert_eq!(a[NETWORK_ANNOTATION], "none");
        assert_eq!(a[WORKSPACE_ANNOTATION], "/workspace");
        let rules = LandlockRules::from_annotation(&a[LANDLOCK_ANNOTATION]).unwrap();
        assert_eq!(rules, LandlockRules::from_profile(&agent).unwrap());
    }

    #[test]
    fn edits_are_deterministic_and_idempotent() {
        let agent = load_builtin("agent").unwrap();
        let mut a = spec();
        apply_profile(&agent, &mut a).unwrap();
        let mut b = a.clone();
        apply_profile(&agent, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn host_network_removes_the_namespace_and_landlock_annotation() {
        let mut s = spec();
        apply_profile(&load_builtin("agent").unwrap(), &mut s).unwrap();
        apply_profile(&load_builtin("trusted").unwrap(), &mut s).unwrap();
        assert!(!ns_types(&s).contains(&LinuxNamespaceType::Network));
        let a = s.annotations().as_ref().unwrap();
        assert_eq!(a[NETWORK_ANNOTATION], "host");
        assert!(!a.contains_key(LANDLOCK_ANNOTATION));
        assert!(!a.contains_key(WORKSPACE_ANNOTATION));
        assert_eq!(
            s.process().as_ref().unwrap().no_new_privileges(),
            Some(false)
        );
    }

    #[test]
    fn conflicts_are_refused() {
        // Network mode none, but the spec joins an existing network namespace.
        let mut s = spec();
        let mut joined = LinuxNamespace::default();
        joined.set_typ(LinuxNamespaceType::Network);
        joined.set_path(Some("/run/netns/cni-1".into()));
        s.linux_mut()
            .as_mut()
            .unwrap()
            .set_namespaces(Some(vec![joined]));
        let err = apply_profile(&load_builtin("agent").unwrap(), &mut s).unwrap_err();
        assert!(err.to_string().contains("/run/netns/cni-1"), "{err}");

        // A user namespace without mappings.
        let p = load_str(
            "u",
            "u.toml",
            "[namespaces]\nuser = true\n[seccomp]\ndefault_action = \"allow\"\n",
            None,
        )
        .unwrap();
        let err = apply_profile(&p, &mut spec()).unwrap_err();
        assert!(err.to_string().contains("mappings"), "{err}");

        let mut s = spec();
        s.set_process(None);
        assert!(matches!(
            apply_profile(&p, &mut s),
            Err(SpecError::NoProcess(_))
        ));
    }

    #[test]
    fn existing_rlimits_and_namespaces_not_named_are_kept() {
        let p = load_str(
            "r",
            "r.toml",
            "[namespaces]\nipc = false\n[network]\nmode = \"host\"\n[rlimits]\ncore = 0\n[seccomp]\ndefault_action = \"allow\"\n",
            None,
        )
        .unwrap();
        let mut s = spec();
        apply_profile(&p, &mut s).unwrap();
        let rl = s.process().as_ref().unwrap().rlimits().as_ref().unwrap();
        assert!(
            rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitNofile),
            "runc's default kept"
        );
        assert!(
            rl.iter()
                .any(|r| r.typ() == PosixRlimitType::RlimitCore && r.hard() == 0)
        );
        let t = ns_types(&s);
        assert!(!t.contains(&LinuxNamespaceType::Ipc));
        assert!(t.contains(&LinuxNamespaceType::Pid), "untouched");
    }
}
