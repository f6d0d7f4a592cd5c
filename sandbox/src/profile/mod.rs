//! Sandbox profiles: a TOML format describing namespaces, capabilities, `no_new_privs`,
//! seccomp rules, Landlock rules, resource limits, cgroup limits, the network mode and a
//! writable workspace. See the crate README for the format.
//!
//! ```
//! let agent = warren_sandbox::profile::load_builtin("agent").unwrap();
//! assert!(agent.no_new_privs);
//! assert_eq!(agent.network, warren_sandbox::profile::NetworkMode::None);
//! ```

pub mod access;
mod error;
mod load;
mod model;
mod raw;

pub use error::ProfileError;
pub use load::{builtin_names, load_builtin, load_file, load_str};
pub use model::{
    CgroupLimits, FsRule, LandlockMode, LandlockPolicy, Namespaces, NetRule, NetworkMode, Origin,
    Profile, Rlimit, SeccompPolicy, SeccompRule,
};

/// The TOML source of built-in profile `name`.
pub fn builtin_source(name: &str) -> Option<&'static str> {
    load::BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

#[cfg(test)]
mod tests;
