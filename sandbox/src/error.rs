//! The crate's error, rolling up each module's.

/// Any error of the sandbox layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or validating a profile.
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// Compiling, caching or installing a seccomp filter.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// Building or applying a Landlock ruleset.
    #[error(transparent)]
    Landlock(#[from] crate::landlock::LandlockError),
    /// Applying a profile to a spec.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
}
