//! warren's sandbox layer: profiles (TOML, with built-ins `agent`, `experiment` and
//! `trusted`), seccomp compiled to BPF once and installed per container, Landlock rulesets,
//! kernel feature probing, and profile → OCI spec edits.
//!
//! # Integration
//!
//! At create time, in the runtime process:
//! 1. [`profile::load_builtin`] or [`profile::load_file`] → [`profile::Profile`];
//! 2. [`spec::apply_profile`] edits the spec (capabilities, rlimits, cgroup limits,
//!    namespaces, `run.warren.*` annotations including `run.warren.landlock`);
//! 3. [`seccomp::filter_for_profile`] gives the profile's program (precompiled for
//!    built-ins, else from the [`seccomp::FilterCache`]); a spec's own `linux.seccomp` goes
//!    through [`seccomp::FilterCache::get_or_compile_oci`] (on
//!    [`seccomp::SeccompError::Unsupported`], leave it to libcontainer's libseccomp path).
//!
//! In the container's init, right before `execve`:
//! 1. [`landlock::LandlockRules::from_annotation`] on the spec's `run.warren.landlock`,
//!    then [`landlock::apply`];
//! 2. [`seccomp::CompiledFilter::install`] for each filter, last (so that the filters need
//!    not allow the Landlock syscalls).
//!
//! See the crate README for the profile format and the built-in profiles.

pub mod error;
pub mod filter;
pub mod hostview;
pub mod landlock;
pub mod probe;
pub mod profile;
pub mod seccomp;
pub mod spec;
pub mod syscalls;

pub use error::Error;
