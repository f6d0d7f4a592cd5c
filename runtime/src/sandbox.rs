//! Sandbox profiles, Landlock and profile seccomp filters, reaching the runtime through
//! annotations so that they work under every engine (containerd, CRI-O, podman, CLI):
//!
//! * `warren.dev/profile: NAME|/path/profile.toml` asks for a profile: the runtime applies
//!   it to the spec (capabilities, no_new_privs, rlimits, cgroup limits, namespaces,
//!   network mode) at create time, unless `run.warren.profile` says it was applied already
//!   (the `warren` CLI does that); either way its seccomp filter — built-in ones are
//!   compiled into the binary — is installed in the init, stacked on the spec's own
//!   `linux.seccomp`;
//! * `run.warren.landlock` holds a Landlock ruleset (JSON with numeric rights) that the
//!   init applies right before the seccomp filters;
//! * `run.warren.network: none` leaves loopback down in the new network namespace.

use std::path::Path;

use libcontainer::oci_spec::runtime::Spec;
use warren_sandbox::landlock::{self, LandlockRules};
use warren_sandbox::profile;
use warren_sandbox::seccomp::{CompiledFilter, filter_for_profile};
use warren_sandbox::spec::{NETWORK_ANNOTATION, PROFILE_ANNOTATION, apply_profile};

use crate::Runtime;
use crate::error::{Result, RuntimeError, chain};

/// The annotation asking for a profile (Kubernetes pod annotations reach the runtime
/// through containerd and CRI-O unchanged).
pub const REQUEST_ANNOTATION: &str = "warren.dev/profile";

/// What the init must apply for the sandbox.
#[derive(Debug, Default)]
pub struct SandboxPlan {
    /// Applied profile name, if any.
    pub profile: Option<String>,
    pub landlock: Option<LandlockRules>,
    /// Profile seccomp filters (installed after the spec's own).
    pub filters: Vec<CompiledFilter>,
    /// Leave loopback down (network mode "none").
    pub loopback_down: bool,
}

impl SandboxPlan {
    /// True when the init has sandbox work to do.
    pub fn is_empty(&self) -> bool {
        self.landlock.is_none() && self.filters.is_empty()
    }
}

fn err(what: &str, e: impl std::error::Error + 'static) -> RuntimeError {
    RuntimeError::ConfigInvalid {
        field: format!("annotations[{what}]"),
        msg: chain(&e),
    }
}

fn load(name: &str) -> Result<profile::Profile> {
    if name.starts_with('/') {
        profile::load_file(Path::new(name)).map_err(|e| err(REQUEST_ANNOTATION, e))
    } else {
        profile::load_builtin(name).map_err(|e| err(REQUEST_ANNOTATION, e))
    }
}

/// Whether `spec` is a Kubernetes pod's sandbox (pause) container, as containerd and
/// CRI-O mark it. Pod annotations reach it too, but profiles and devices are for the
/// pod's workload containers, not for the process that only holds the namespaces.
pub fn is_pod_sandbox(spec: &Spec) -> bool {
    spec.annotations().as_ref().is_some_and(|a| {
        a.get("io.kubernetes.cri.container-type")
            .or_else(|| a.get("io.kubernetes.cri-o.ContainerType"))
            .is_some_and(|t| t == "sandbox")
    })
}

/// Applies a requested profile to `spec` and gathers what the init must enforce.
pub fn prepare(rt: &Runtime, spec: &mut Spec) -> Result<SandboxPlan> {
    let ann = spec.annotations().clone().unwrap_or_default();
    let mut plan = SandboxPlan::default();
    if is_pod_sandbox(spec) {
        // Not applied, but a pod asking for a profile that does not exist fails now, at
        // RunPodSandbox, rather than at each container's start.
        if let Some(requested) = ann.get(REQUEST_ANNOTATION) {
            load(requested)?;
        }
        return Ok(plan);
    }
    // `warren.dev/profile` names the profile (built-in name or file path); when
    // `run.warren.profile` is also set, it has been applied to the spec already (by the
    // warren CLI) and only its filter is needed.
    let mut profile = match (ann.get(REQUEST_ANNOTATION), ann.get(PROFILE_ANNOTATION)) {
        (Some(requested), applied) => {
            let p = load(requested)?;
            if applied.is_none() {
                apply_profile(&p, spec).map_err(|e| err(REQUEST_ANNOTATION, e))?;
                for w in clamp_rlimits(spec) {
                    tracing::warn!(profile = %p.name, "{w}");
                }
            }
            Some(p)
        }
        (None, Some(applied)) => Some(profile::load_builtin(applied).map_err(|e| {
            RuntimeError::ConfigInvalid {
                field: format!("annotations[{PROFILE_ANNOTATION}]"),
                msg: format!(
                    "profile {applied:?} was applied but is not a built-in profile, so its seccomp filter cannot be installed; \
                     also set {REQUEST_ANNOTATION} to its file path ({})",
                    chain(&e)
                ),
            }
        })?),
        (None, None) => None,
    };
    if let Some(p) = &mut profile {
        // In a pod's network namespace, network mode `none` is kept by the filter.
        warren_sandbox::spec::confine_to_joined_network(p, spec);
        let cache = crate::seccomp::open_cache(rt)?;
        let f = filter_for_profile(p, Some(&cache)).map_err(|e| err(PROFILE_ANNOTATION, e))?;
        plan.filters.push(f);
        plan.profile = Some(p.name.clone());
    }
    let ann = spec.annotations().clone().unwrap_or_default();
    if let Some(json) = ann.get(landlock::ANNOTATION) {
        plan.landlock =
            Some(LandlockRules::from_annotation(json).map_err(|e| err(landlock::ANNOTATION, e))?);
    }
    plan.loopback_down = ann.get(NETWORK_ANNOTATION).is_some_and(|v| v == "none");
    Ok(plan)
}

/// Applies Landlock then the filters (in the init, after capabilities are dropped and
/// no_new_privs is set). Returns a one-line report of what Landlock enforced.
pub fn enforce(plan: &SandboxPlan) -> std::result::Result<Option<String>, String> {
    let mut report = None;
    if let Some(rules) = &plan.landlock {
        let r = landlock::apply(rules).map_err(|e| format!("landlock: {}", chain(&e)))?;
        report = Some(format!("{r:?}"));
    }
    for f in &plan.filters {
        f.install()
            .map_err(|e| format!("seccomp ({:?}): {}", f.source, chain(&e)))?;
    }
    Ok(report)
}

/// The same, as a pre-exec hook for libcontainer's init (processes entered with `exec`,
/// and the fallback init). It runs after libcontainer dropped the capabilities, so without
/// CAP_SYS_ADMIN a filter can only be installed under no_new_privs: a profile that keeps
/// setuid working (`trusted`) still gets no_new_privs in such a process.
/// `then` is a further hook to run first (a caller's own).
#[derive(Debug)]
pub struct PlanHook {
    pub plan: SandboxPlan,
    pub then: Option<std::sync::Arc<dyn crate::executor::PreExec>>,
}

impl crate::executor::PreExec for PlanHook {
    fn apply(&self) -> std::result::Result<(), String> {
        if let Some(h) = &self.then {
            h.apply()?;
        }
        let set_nnp = || {
            // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes integer arguments only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(format!("set no_new_privs: {}", nix::Error::last()));
            }
            Ok(())
        };
        let can_filter = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .unwrap_or(false);
        if self.plan.landlock.is_some() || !can_filter {
            set_nnp()?;
        }
        enforce(&self.plan).map(|_| ())
    }
}

/// A profile's rlimits are ceilings chosen for typical hosts; where this process cannot
/// raise a hard limit (no CAP_SYS_RESOURCE), lowers them to the current hard limit
/// instead of failing the start. Returns one warning per change. (Limits written in an OCI
/// spec by an engine are never touched: only call this right after applying a profile.)
pub fn clamp_rlimits(spec: &mut Spec) -> Vec<String> {
    let mut warnings = Vec::new();
    let can_raise = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if can_raise {
        return warnings;
    }
    let Some(process) = spec.process_mut().as_mut() else {
        return warnings;
    };
    let Some(rlimits) = process.rlimits().clone() else {
        return warnings;
    };
    let mut out = Vec::with_capacity(rlimits.len());
    for mut rl in rlimits {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit struct we own; the resource number comes from
        // the spec's enum, as setrlimit will use it.
        let ok = unsafe { libc::getrlimit(rl.typ() as u32, &mut cur) } == 0;
        if ok && rl.hard() > cur.rlim_max {
            warnings.push(format!(
                "{:?}: hard limit {} lowered to {} (raising it needs CAP_SYS_RESOURCE)",
                rl.typ(),
                rl.hard(),
                cur.rlim_max
            ));
            let soft = rl.soft().min(cur.rlim_max);
            match libcontainer::oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(rl.typ())
                .hard(cur.rlim_max)
                .soft(soft)
                .build()
            {
                Ok(clamped) => rl = clamped,
                Err(e) => warnings.push(format!("{:?}: {e}", rl.typ())),
            }
        }
        out.push(rl);
    }
    process.set_rlimits(Some(out));
    warnings
}
