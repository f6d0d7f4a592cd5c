//! Profile → OCI spec edits: capabilities, `noNewPrivileges`, rlimits, cgroup resources,
//! namespaces (the network one by network mode) and annotations. Deterministic: the same
//! profile and spec always give the same edits.
//!
//! Seccomp is not written into `linux.seccomp`: the runtime installs the profile's
//! precompiled filter itself ([`crate::seccomp::filter_for_profile`]). Landlock travels as
//! the `run.warren.landlock` annotation for the init to apply.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType,
    LinuxPids, LinuxResources, Mount, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::filter::{Action, ArgCondition, CmpOp, Width};
use crate::landlock::{ANNOTATION as LANDLOCK_ANNOTATION, LandlockRules};
use crate::profile::{NetworkMode, Origin, Profile, SeccompRule};

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

/// `run.warren.network` for a container that joins a network namespace made by its
/// engine (a Kubernetes pod): the runtime neither creates one nor touches interfaces.
pub const POD_NETWORK: &str = "pod";

/// The profile's `cgroup` value, or the spec's when that is already lower: a profile
/// tightens limits an engine set, never loosens them (`None`, 0 or negative: no limit).
fn tighter(existing: Option<i64>, profile: i64) -> i64 {
    match existing {
        Some(e) if e > 0 && (profile <= 0 || e < profile) => e,
        _ => profile,
    }
}

fn joins_network(namespaces: &[LinuxNamespace]) -> bool {
    namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_some())
}

/// For a container that joins its engine's network namespace (a Kubernetes pod), where
/// the profile cannot get a namespace of its own: network mode `none` is kept by refusing
/// IPv4 and IPv6 sockets (EACCES) in the profile's seccomp filter instead. Unix sockets
/// and netlink stay. Modes `loopback` and `host` get the pod's network as it is. Returns
/// whether `profile` changed.
pub fn confine_to_joined_network(profile: &mut Profile, spec: &Spec) -> bool {
    let joined = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| joins_network(ns));
    if !joined || profile.network != NetworkMode::None {
        return false;
    }
    let origin = Origin {
        file: format!(
            "{}+pod-network",
            profile.chain.last().map_or("", |s| s.as_str())
        ),
        line: 0,
    };
    for family in [libc::AF_INET, libc::AF_INET6] {
        profile.seccomp.rules.insert(
            0,
            SeccompRule {
                syscalls: vec!["socket".to_owned()],
                action: Action::Errno(libc::EACCES as u16),
                args: vec![ArgCondition {
                    index: 0,
                    op: CmpOp::Eq,
                    value: family as u64,
                    width: Width::Bits32,
                }],
                origin: origin.clone(),
            },
        );
    }
    profile.chain.push("pod-network".to_owned());
    true
}

/// Makes the root read-only, keeping writable what the profile lets the workload write:
/// a tmpfs on `/tmp` and the workspace (bound from the rootfs onto itself when no mount
/// of the spec provides it; the runtime creates the directory if the image lacks it).
fn readonly_root(profile: &Profile, spec: &mut Spec) {
    let root_path = {
        let root = spec.root_mut().get_or_insert_with(Default::default);
        root.set_readonly(Some(true));
        root.path().clone()
    };
    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    let has_mount = |mounts: &[Mount], dest: &Path| {
        mounts
            .iter()
            .any(|m| dest.starts_with(m.destination()) && m.destination() != Path::new("/"))
    };
    let tmp = Path::new("/tmp");
    if !has_mount(&mounts, tmp) {
        let mut m = Mount::default();
        m.set_destination(tmp.to_owned())
            .set_typ(Some("tmpfs".to_owned()))
            .set_source(Some("tmpfs".into()))
            .set_options(Some(
                ["nosuid", "nodev", "mode=1777"].map(String::from).to_vec(),
            ));
        mounts.push(m);
    }
    if let Some(ws) = &profile.workspace
        && !has_mount(&mounts, ws)
    {
        let mut m = Mount::default();
        m.set_destination(ws.clone())
            .set_typ(Some("bind".to_owned()))
            .set_source(Some(root_path.join(ws.strip_prefix("/").unwrap_or(ws))))
            .set_options(Some(["rbind", "rw"].map(String::from).to_vec()));
        mounts.push(m);
    }
    spec.set_mounts(Some(mounts));
}

/// Applies `profile` to `spec`:
/// - `process.capabilities`: bounding = effective = permitted = the profile's set;
///   inheritable and ambient empty;
/// - `process.noNewPrivileges`;
/// - `process.rlimits`: the profile's limits replace those of the same type, others stay;
/// - `linux.resources`: memory (limit, swap), pids and the CPU quota where the profile
///   sets them, each only when lower than the spec's own; cpuset cpus and mems where the
///   spec has none;
/// - `linux.namespaces`: added or removed as the profile says, except that a namespace the
///   spec joins by path (an engine's, such as a Kubernetes pod's) is kept as it is; network:
///   `none` and `loopback` need a new network namespace, `host` removes it; a user
///   namespace needs uid and gid mappings in the spec;
/// - annotations: `run.warren.profile`, `run.warren.network` ([`POD_NETWORK`] in a joined
///   network namespace), `run.warren.workspace`, and
///   `run.warren.landlock` (removed when the profile has no Landlock);
/// - with `readonly_root`: `root.readonly`, a tmpfs on `/tmp` and the workspace bound
///   from the rootfs onto itself, each unless a mount of the spec already covers it.
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
            m.set_limit(Some(tighter(m.limit(), v)));
        }
        if let Some(v) = c.memory_swap {
            m.set_swap(Some(tighter(m.swap(), v)));
        }
        // memory+swap can never be below memory.
        if let (Some(l), Some(sw)) = (m.limit(), m.swap())
            && l > 0
            && sw > 0
            && sw < l
        {
            m.set_swap(Some(l));
        }
        resources.set_memory(Some(m));
    }
    if let Some(p) = c.pids {
        let existing = resources.pids().as_ref().map(|x| x.limit());
        let mut pids = LinuxPids::default();
        pids.set_limit(tighter(existing, p));
        resources.set_pids(Some(pids));
    }
    if c.cpu_quota.is_some()
        || c.cpu_period.is_some()
        || c.cpuset_cpus.is_some()
        || c.cpuset_mems.is_some()
    {
        let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
        // The profile's share of CPU time replaces the spec's only when it is smaller.
        let share = |q: Option<i64>, p: Option<u64>| match q {
            Some(q) if q > 0 => Some(q as f64 / p.filter(|p| *p > 0).unwrap_or(100_000) as f64),
            _ => None,
        };
        let theirs = share(cpu.quota(), cpu.period());
        let ours = share(c.cpu_quota.or(cpu.quota()), c.cpu_period.or(cpu.period()));
        if c.cpu_quota.is_some() || c.cpu_period.is_some() {
            let take = match (theirs, ours) {
                (Some(t), Some(o)) => o < t,
                (None, _) => true,
                (Some(_), None) => false,
            };
            if take {
                if let Some(q) = c.cpu_quota {
                    cpu.set_quota(Some(q));
                }
                if let Some(p) = c.cpu_period {
                    cpu.set_period(Some(p));
                }
            }
        }
        // CPU and memory node pinning the spec already has (an orchestrator's) stays.
        if let Some(s) = &c.cpuset_cpus
            && cpu.cpus().as_deref().is_none_or(str::is_empty)
        {
            cpu.set_cpus(Some(s.clone()));
        }
        if let Some(s) = &c.cpuset_mems
            && cpu.mems().as_deref().is_none_or(str::is_empty)
        {
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
    // A namespace the spec joins by path (a Kubernetes pod's network, IPC or pid
    // namespace) belongs to the engine: a profile neither drops nor replaces it.
    let joined_net = joins_network(&namespaces);
    for (typ, want) in wanted {
        match want {
            None => {}
            Some(false) => namespaces.retain(|n| n.typ() != typ || n.path().is_some()),
            Some(true) => match namespaces.iter().find(|n| n.typ() == typ) {
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
    if profile.readonly_root {
        readonly_root(profile, spec);
    }

    let annotations = spec.annotations_mut().get_or_insert_with(Default::default);
    annotations.insert(PROFILE_ANNOTATION.to_owned(), profile.name.clone());
    // In a joined network namespace the runtime leaves the interfaces alone.
    let mode = if joined_net {
        POD_NETWORK
    } else {
        profile.network.as_str()
    };
    annotations.insert(NETWORK_ANNOTATION.to_owned(), mode.to_owned());
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

    fn pod_spec() -> Spec {
        let mut s = spec();
        let mut nss = Vec::new();
        for (typ, path) in [
            (LinuxNamespaceType::Network, Some("/run/netns/cni-1")),
            (LinuxNamespaceType::Ipc, Some("/proc/42/ns/ipc")),
            (LinuxNamespaceType::Pid, None),
            (LinuxNamespaceType::Mount, None),
        ] {
            let mut n = LinuxNamespace::default();
            n.set_typ(typ);
            n.set_path(path.map(Into::into));
            nss.push(n);
        }
        let linux = s.linux_mut().as_mut().unwrap();
        linux.set_namespaces(Some(nss));
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(128 << 20));
        let mut pids = LinuxPids::default();
        pids.set_limit(100);
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(Some(50_000)).set_period(Some(100_000));
        let mut r = LinuxResources::default();
        r.set_memory(Some(mem))
            .set_pids(Some(pids))
            .set_cpu(Some(cpu));
        linux.set_resources(Some(r));
        s
    }

    #[test]
    fn joined_namespaces_and_engine_limits_stay() {
        for name in ["agent", "experiment", "trusted"] {
            let mut s = pod_spec();
            apply_profile(&load_builtin(name).unwrap(), &mut s).unwrap();
            let linux = s.linux().as_ref().unwrap();
            let nss = linux.namespaces().as_ref().unwrap();
            let path = |t| {
                nss.iter()
                    .find(|n| n.typ() == t)
                    .and_then(|n| n.path().clone())
            };
            assert_eq!(
                path(LinuxNamespaceType::Network),
                Some("/run/netns/cni-1".into()),
                "{name} keeps the pod network (never the host's)"
            );
            assert_eq!(
                path(LinuxNamespaceType::Ipc),
                Some("/proc/42/ns/ipc".into()),
                "{name}"
            );
            let r = linux.resources().as_ref().unwrap();
            assert_eq!(r.memory().unwrap().limit(), Some(128 << 20), "{name}");
            assert_eq!(r.pids().as_ref().unwrap().limit(), 100, "{name}");
            let cpu = r.cpu().as_ref().unwrap();
            assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
            assert_eq!(
                s.annotations().as_ref().unwrap()[NETWORK_ANNOTATION],
                POD_NETWORK
            );
        }
    }

    #[test]
    fn profile_limits_tighten_an_engine_s_looser_ones() {
        let mut s = pod_spec();
        let r = s
            .linux_mut()
            .as_mut()
            .unwrap()
            .resources_mut()
            .as_mut()
            .unwrap();
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(64 << 30)).set_swap(Some(64 << 30));
        r.set_memory(Some(mem));
        let mut pids = LinuxPids::default();
        pids.set_limit(0);
        r.set_pids(Some(pids));
        r.set_cpu(None);
        let agent = load_builtin("agent").unwrap();
        apply_profile(&agent, &mut s).unwrap();
        let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), agent.cgroup.memory, "agent's limit is lower");
        assert!(m.swap().unwrap() >= m.limit().unwrap());
        assert_eq!(Some(r.pids().as_ref().unwrap().limit()), agent.cgroup.pids);
    }

    #[test]
    fn network_none_in_a_pod_refuses_inet_sockets() {
        let s = pod_spec();
        let mut agent = load_builtin("agent").unwrap();
        assert!(confine_to_joined_network(&mut agent, &s));
        assert!(
            !agent.is_unmodified_builtin(),
            "the precompiled filter no longer fits"
        );
        let first = &agent.seccomp.rules[0];
        assert_eq!(first.syscalls, ["socket"]);
        assert_eq!(first.action, Action::Errno(libc::EACCES as u16));
        let mut experiment = load_builtin("experiment").unwrap();
        assert!(!confine_to_joined_network(&mut experiment, &s));
        let mut agent = load_builtin("agent").unwrap();
        assert!(!confine_to_joined_network(&mut agent, &spec()), "own netns");
    }

    #[test]
    fn conflicts_are_refused() {
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
