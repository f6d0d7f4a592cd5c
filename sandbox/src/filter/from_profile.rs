//! A profile's seccomp policy → [`Filter`] for one architecture.

use super::error::CompileError;
use super::ir::{Action, Filter, Rule};
use crate::profile::SeccompPolicy;
use crate::syscalls::{Arch, Resolution, resolve};

/// Builds the filter of `policy` for `arch`. Names that exist only on other architectures
/// are skipped and reported in the returned warnings.
pub fn filter_from_policy(
    policy: &SeccompPolicy,
    arch: Arch,
) -> Result<(Filter, Vec<String>), CompileError> {
    let mut filter = Filter::new(arch, policy.default_action);
    if policy.deny_newer_syscalls {
        filter.deny_above = Some((arch.newest_syscall_nr(), Action::Errno(libc::ENOSYS as u16)));
    }
    let mut warnings = Vec::new();
    for rule in &policy.rules {
        for name in &rule.syscalls {
            match resolve(arch, name) {
                Resolution::Nr(nr) => filter.push_rule(
                    nr,
                    Rule {
                        conditions: rule.args.clone(),
                        action: rule.action,
                    },
                ),
                Resolution::OtherArch => {
                    warnings.push(format!(
                        "{}: syscall `{name}` does not exist on {arch}: skipped",
                        rule.origin
                    ));
                }
                Resolution::Unknown => {
                    return Err(CompileError::UnknownSyscall {
                        name: name.clone(),
                        origin: rule.origin.to_string(),
                    });
                }
            }
        }
    }
    Ok((filter, warnings))
}
