//! Late confinement from a sandbox profile, applied in the sandbox's init right before
//! `execve` (the runtime's `PreExec` hook): Landlock first, then the profile's seccomp
//! filter, stacked on whatever filter the spec itself carries.
//!
//! The runtime installs only the spec's `linux.seccomp`; a profile's precompiled filter
//! and its Landlock annotation are installed here until the runtime does it itself.

use std::path::Path;

use libcontainer::oci_spec::runtime::Spec;
use warren_sandbox::landlock::{self, LandlockRules};
use warren_sandbox::seccomp::{self, CompiledFilter, FilterCache};

use crate::run::RunError;

/// What to apply before `execve`.
#[derive(Debug)]
pub struct Confine {
    pub profile: String,
    pub landlock: Option<LandlockRules>,
    pub filter: CompiledFilter,
    pub no_new_privs: bool,
}

impl Confine {
    /// Compiles (or loads from the cache under `cache_dir`) the profile's filter and reads
    /// its Landlock rules from the spec's annotation.
    pub fn for_profile(
        p: &warren_sandbox::profile::Profile,
        spec: &Spec,
        cache_dir: &Path,
    ) -> Result<Self, RunError> {
        if let Some(parent) = cache_dir.parent() {
            std::fs::create_dir_all(parent).map_err(|source| RunError::Io {
                op: "create",
                path: parent.to_owned(),
                source,
            })?;
        }
        let cache = FilterCache::open(cache_dir)
            .map_err(|e| RunError::Profile(format!("seccomp cache: {e}")))?;
        let filter = seccomp::filter_for_profile(p, Some(&cache))
            .map_err(|e| RunError::Profile(format!("compile seccomp filter of {}: {e}", p.name)))?;
        for w in &filter.warnings {
            tracing::debug!(profile = %p.name, warning = %w, "seccomp");
        }
        let landlock = match spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(landlock::ANNOTATION))
        {
            Some(json) => Some(
                LandlockRules::from_annotation(json)
                    .map_err(|e| RunError::Profile(format!("landlock: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            profile: p.name.clone(),
            landlock,
            filter,
            no_new_privs: p.no_new_privs,
        })
    }
}

impl warren_runtime::executor::PreExec for Confine {
    fn apply(&self) -> Result<(), String> {
        if let Some(rules) = &self.landlock {
            landlock::apply(rules)
                .map_err(|e| format!("profile {}: landlock: {e}", self.profile))?;
        }
        self.filter
            .install()
            .map_err(|e| format!("profile {}: install seccomp filter: {e}", self.profile))
    }
}
