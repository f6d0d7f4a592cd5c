//! Seccomp: profiles and OCI `linux.seccomp` objects compiled to BPF (through seccompiler),
//! a content-hash cache of compiled programs, the built-in profiles' programs compiled at
//! build time, and the installer the container's init calls before `execve`.
//!
//! At create time the runtime gets a [`CompiledFilter`] ([`filter_for_profile`],
//! [`FilterCache::get_or_compile_oci`]); in the init it calls [`CompiledFilter::install`]
//! (or [`install`] with the program).

mod builtin;
mod cache;
pub mod eval;
mod install;
mod oci;

pub use cache::{CacheError, CacheKey, FilterCache};
pub use install::{InstallFlags, install, set_no_new_privs};
pub use oci::{OciFilter, filter_from_oci};
pub use seccompiler::{BpfProgram, sock_filter};

pub use crate::filter::from_profile::filter_from_policy;
pub use crate::filter::{
    Action, ArgCondition, CmpOp, CompileError, Filter, Rule, Width, check_program, compile,
};

use oci_spec::runtime::LinuxSeccomp;

use crate::profile::Profile;
use crate::syscalls::Arch;

/// Errors of the seccomp layer.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The filter could not be compiled (empty, too large, bad values).
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A feature warren's compiler does not implement. The caller falls back to
    /// libcontainer's libseccomp path for this container (it must not drop the filter).
    #[error(
        "compile seccomp: {feature} is unsupported; fall back to libcontainer's libseccomp path"
    )]
    Unsupported {
        /// The feature.
        feature: String,
    },
    /// The OCI object is invalid.
    #[error("compile OCI seccomp: {0}")]
    InvalidOci(String),
    /// No syscall table for the machine this runs on.
    #[error("compile seccomp: this architecture has no syscall table in warren")]
    UnsupportedArch,
    /// The cache refused to work.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("set no_new_privs: {0}")]
    NoNewPrivs(#[source] std::io::Error),
    /// The kernel refused the filter because `no_new_privs` is unset and the caller lacks
    /// `CAP_SYS_ADMIN`.
    #[error("install seccomp filter: needs no_new_privs or CAP_SYS_ADMIN (EACCES)")]
    NeedsNoNewPrivs,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("install seccomp filter: {0}")]
    Install(#[source] std::io::Error),
    /// With TSYNC, thread `tid` could not be synchronized.
    #[error("install seccomp filter with TSYNC: thread {tid} cannot be synchronized")]
    ThreadSync {
        /// The thread.
        tid: libc::c_long,
    },
}

/// Where a compiled program came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterSource {
    /// Embedded at build time (a built-in profile).
    Builtin,
    /// Compiled just now.
    Compiled,
    /// Read from the cache.
    Cache,
}

/// A seccomp program ready to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledFilter {
    /// The architecture it was compiled for.
    pub arch: Arch,
    /// The BPF program.
    pub program: BpfProgram,
    /// Flags for the install call.
    pub flags: InstallFlags,
    /// What the compiler skipped or ignored (unknown names, foreign architectures...).
    pub warnings: Vec<String>,
    /// Where it came from.
    pub source: FilterSource,
}

impl CompiledFilter {
    /// Installs the program on the calling thread (all threads with TSYNC). See [`install`].
    pub fn install(&self) -> Result<(), SeccompError> {
        install(&self.program, self.flags)
    }

    /// What the program returns for a native syscall (`nr`, `args`): its verdict, without
    /// installing anything.
    pub fn verdict(&self, nr: u32, args: [u64; 6]) -> Option<Action> {
        let data = eval::SeccompData::new(self.arch, nr, args);
        eval::verdict(&self.program, &data).ok().flatten()
    }
}

/// The native architecture, or [`SeccompError::UnsupportedArch`].
pub fn native_arch() -> Result<Arch, SeccompError> {
    Arch::native().ok_or(SeccompError::UnsupportedArch)
}

/// Compiles a profile's seccomp policy for `arch`.
pub fn compile_profile(profile: &Profile, arch: Arch) -> Result<CompiledFilter, SeccompError> {
    let (filter, warnings) = filter_from_policy(&profile.seccomp, arch)?;
    Ok(CompiledFilter {
        arch,
        program: compile(&filter)?,
        flags: InstallFlags::default(),
        warnings,
        source: FilterSource::Compiled,
    })
}

/// Compiles an OCI `linux.seccomp` object for `arch`.
pub fn compile_oci(seccomp: &LinuxSeccomp, arch: Arch) -> Result<CompiledFilter, SeccompError> {
    let OciFilter {
        filter,
        flags,
        warnings,
    } = filter_from_oci(seccomp, arch)?;
    Ok(CompiledFilter {
        arch,
        program: compile(&filter)?,
        flags,
        warnings,
        source: FilterSource::Compiled,
    })
}

/// The program of built-in profile `name` for the native architecture, compiled at build
/// time.
pub fn builtin_filter(name: &str) -> Option<CompiledFilter> {
    let arch = Arch::native()?;
    builtin::BUILTIN_FILTERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, program, warnings)| CompiledFilter {
            arch,
            program: program.to_vec(),
            flags: InstallFlags::default(),
            warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
            source: FilterSource::Builtin,
        })
}

/// The program for `profile` on the native architecture: the build-time program of an
/// unmodified built-in profile, else the cached one (compiled and stored on a miss), else
/// a fresh compile when no cache is given.
pub fn filter_for_profile(
    profile: &Profile,
    cache: Option<&FilterCache>,
) -> Result<CompiledFilter, SeccompError> {
    if profile.is_unmodified_builtin() {
        if let Some(f) = builtin_filter(&profile.name) {
            return Ok(f);
        }
    }
    let arch = native_arch()?;
    match cache {
        Some(cache) => {
            let key = CacheKey::for_policy(&profile.seccomp, arch)?;
            cache.get_or_insert(&key, arch, || compile_profile(profile, arch))
        }
        None => compile_profile(profile, arch),
    }
}

impl FilterCache {
    /// The program for an OCI `linux.seccomp` object on `arch`, from the cache or compiled
    /// and stored.
    pub fn get_or_compile_oci(
        &self,
        seccomp: &LinuxSeccomp,
        arch: Arch,
    ) -> Result<CompiledFilter, SeccompError> {
        let key = CacheKey::for_oci(seccomp, arch)?;
        self.get_or_insert(&key, arch, || compile_oci(seccomp, arch))
    }

    /// The program for a profile on `arch`, from the cache or compiled and stored.
    pub fn get_or_compile_profile(
        &self,
        profile: &Profile,
        arch: Arch,
    ) -> Result<CompiledFilter, SeccompError> {
        let key = CacheKey::for_policy(&profile.seccomp, arch)?;
        self.get_or_insert(&key, arch, || compile_profile(profile, arch))
    }
}

#[cfg(test)]
mod tests;
