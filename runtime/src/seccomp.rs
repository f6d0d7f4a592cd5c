//! The spec's `linux.seccomp`, compiled to BPF once and cached by content hash.
//!
//! libseccomp recompiles the filter for every container (10–17 ms for podman's default
//! profile, in runc and crun alike). warren compiles it with `warren-sandbox` the first
//! time, stores the program in a cache directory (default `/var/cache/warren/seccomp`; root-owned, SHA-256 keyed, verified on
//! read) and only loads it afterwards. Filters the compiler cannot express (user
//! notification) stay on libcontainer's libseccomp path; a filter that fails to compile
//! fails the create — a container never runs unconfined.
//!
//! The precompiled filter covers the native ABI only: 32-bit (i386/x32) system calls are
//! refused outright, where libseccomp would apply the same rules to them. The annotation
//! `run.warren.seccomp=libseccomp` selects libseccomp for a container that needs them.

use libcontainer::oci_spec::runtime::Spec;
use warren_sandbox::seccomp::{CompiledFilter, FilterCache, SeccompError, native_arch};

use crate::Runtime;
use crate::error::{Result, RuntimeError, chain};

/// Annotation choosing the seccomp implementation (`libseccomp` to opt out).
pub const ANNOTATION: &str = "run.warren.seccomp";

/// Compiles (or loads) the spec's filter; on success removes `linux.seccomp` from `spec`
/// (the init installs the returned program instead).
pub fn precompile(rt: &Runtime, spec: &mut Spec) -> Result<Option<CompiledFilter>> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    if spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .is_some_and(|v| v == "libseccomp")
    {
        return Ok(None);
    }
    let arch = native_arch().map_err(|e| invalid(chain(&e)))?;
    let cache = open_cache(rt)?;
    match cache.get_or_compile_oci(&sc, arch) {
        Ok(f) => {
            for w in &f.warnings {
                tracing::debug!(warning = %w, "seccomp");
            }
            if let Some(l) = spec.linux_mut() {
                l.set_seccomp(None);
            }
            Ok(Some(f))
        }
        Err(SeccompError::Unsupported { .. }) => Ok(None),
        Err(e) => Err(invalid(chain(&e))),
    }
}

fn invalid(msg: String) -> RuntimeError {
    RuntimeError::ConfigInvalid {
        field: "linux.seccomp".into(),
        msg,
    }
}

/// Opens the filter cache, creating its parent directories (root-only) when missing.
pub fn open_cache(rt: &Runtime) -> Result<FilterCache> {
    if let Some(parent) = rt.seccomp_cache.parent()
        && !parent.is_dir()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| RuntimeError::io("create seccomp cache directory", parent, e))?;
    }
    FilterCache::open(&rt.seccomp_cache)
        .map_err(|e| invalid(format!("seccomp filter cache: {}", chain(&e))))
}
