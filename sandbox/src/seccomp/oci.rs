//! An OCI `linux.seccomp` object (what podman and docker pass) → [`Filter`].
//!
//! Mapping, and where it differs from libseccomp-based runtimes (runc, crun):
//! - actions: `SCMP_ACT_ALLOW`, `ERRNO` (`errnoRet`, EPERM when absent, as runc),
//!   `KILL`/`KILL_THREAD`, `KILL_PROCESS`, `TRAP`, `TRACE` (`errnoRet` as its data, EPERM
//!   when absent), `LOG`; `defaultErrnoRet` for the default action. `SCMP_ACT_NOTIFY`,
//!   `listenerPath`/`listenerMetadata` and the `WAIT_KILLABLE_RECV` flag are
//!   [`SeccompError::Unsupported`]: the caller falls back to libcontainer's libseccomp path.
//! - flags `TSYNC`, `LOG` and `SPEC_ALLOW` become [`InstallFlags`].
//! - operators: `SCMP_CMP_EQ/NE/LT/LE/GT/GE` compare all 64 bits (as libseccomp);
//!   `SCMP_CMP_MASKED_EQ` takes `value` as the mask and `valueTwo` as the datum.
//! - several `args` in one rule are ANDed, except (as runc does) when two of them name the
//!   same argument index: then each condition becomes a rule of its own (ORed).
//! - rules for the same syscall: the conditional ones are tried first, in the order given,
//!   then the unconditional ones (the first of those wins; later ones with another action
//!   are reported). libseccomp has no order; this one gives the more specific rule
//!   priority, which matches how profiles are written (e.g. "allow personality(0), else
//!   the default").
//! - names: resolved for the target architecture; a name it lacks is skipped with a
//!   warning, as libseccomp skips names it cannot resolve.
//! - `architectures`: the filter covers the native ABI only. Syscalls of any other ABI
//!   (i386 via `int 0x80`, x32, AArch32) are killed: a filter written for x86_64 must not
//!   let i386 syscalls through unconfined, and warren has no i386/x32 tables to filter them
//!   by name. libseccomp would instead filter them with the same names; 32-bit binaries do
//!   not run under warren's filter. A listed sub-architecture is reported in the warnings.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::{InstallFlags, SeccompError};
use crate::filter::{Action, ArgCondition, CmpOp, Filter, Rule, Width};
use crate::syscalls::{Arch, Resolution, resolve};

/// What [`filter_from_oci`] produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciFilter {
    /// The filter.
    pub filter: Filter,
    /// Flags for the install call.
    pub flags: InstallFlags,
    /// Skipped names, ignored architectures, shadowed rules.
    pub warnings: Vec<String>,
}

fn action(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &str,
) -> Result<Action, SeccompError> {
    let data = |default: u32| -> Result<u16, SeccompError> {
        let v = errno_ret.unwrap_or(default);
        u16::try_from(v)
            .ok()
            .filter(|v| *v <= crate::filter::ir::MAX_ERRNO)
            .ok_or_else(|| SeccompError::InvalidOci(format!("{what}: errnoRet {v} is above 4095")))
    };
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
        LinuxSeccompAction::ScmpActErrno => Action::Errno(data(libc::EPERM as u32)?),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
        LinuxSeccompAction::ScmpActTrap => Action::Trap,
        LinuxSeccompAction::ScmpActTrace => Action::Trace(data(libc::EPERM as u32)?),
        LinuxSeccompAction::ScmpActLog => Action::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                feature: format!("{what}: SCMP_ACT_NOTIFY"),
            });
        }
    })
}

fn condition(arg: &LinuxSeccompArg, what: &str) -> Result<ArgCondition, SeccompError> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| {
            SeccompError::InvalidOci(format!(
                "{what}: argument index {} is not in 0..=5",
                arg.index()
            ))
        })?;
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpEq => (CmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpNe => (CmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (CmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (CmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (CmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (CmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            CmpOp::MaskedEq { mask: arg.value() },
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(ArgCondition {
        index,
        op,
        value,
        width: Width::Bits64,
    })
}

/// Converts `seccomp` into a filter for `arch`.
pub fn filter_from_oci(seccomp: &LinuxSeccomp, arch: Arch) -> Result<OciFilter, SeccompError> {
    if seccomp.listener_path().is_some() {
        return Err(SeccompError::Unsupported {
            feature: "listenerPath (seccomp user notification)".to_owned(),
        });
    }
    if seccomp.listener_metadata().is_some() {
        return Err(SeccompError::Unsupported {
            feature: "listenerMetadata (seccomp user notification)".to_owned(),
        });
    }
    let mut flags = InstallFlags::default();
    for f in seccomp.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => flags.tsync = true,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flags.log = true,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flags.spec_allow = true,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Unsupported {
                    feature: "flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV".to_owned(),
                });
            }
        }
    }

    let default_action = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "defaultAction",
    )?;
    let mut warnings = Vec::new();
    let native = match arch {
        Arch::X86_64 => OciArch::ScmpArchX86_64,
        Arch::Aarch64 => OciArch::ScmpArchAarch64,
    };
    for a in seccomp.architectures().iter().flatten() {
        if *a == native || *a == OciArch::ScmpArchNative {
            continue;
        }
        let killed = matches!(
            (arch, a),
            (Arch::X86_64, OciArch::ScmpArchX86 | OciArch::ScmpArchX32)
                | (Arch::Aarch64, OciArch::ScmpArchArm)
        );
        warnings.push(if killed {
            format!("architecture {a}: its syscalls are killed; warren filters the native {arch} ABI only")
        } else {
            format!("architecture {a}: not this machine's ({arch}); ignored")
        });
    }

    let mut filter = Filter::new(arch, default_action);
    let mut unconditional: BTreeMap<u32, (Action, usize)> = BTreeMap::new();
    let syscalls = seccomp.syscalls().as_deref().unwrap_or_default();
    // Pass 1: conditional rules in order. Pass 2: unconditional rules.
    for pass in [true, false] {
        for (i, sc) in syscalls.iter().enumerate() {
            let what = format!("syscalls[{i}]");
            let args = sc.args().as_deref().unwrap_or_default();
            if args.is_empty() == pass {
                continue;
            }
            let act = action(sc.action(), sc.errno_ret(), &what)?;
            let conds = args
                .iter()
                .map(|a| condition(a, &what))
                .collect::<Result<Vec<_>, _>>()?;
            let mut indexes: Vec<u8> = conds.iter().map(|c| c.index).collect();
            indexes.sort_unstable();
            let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
            let rules: Vec<Rule> = if repeated {
                conds
                    .iter()
                    .map(|c| Rule {
                        conditions: vec![*c],
                        action: act,
                    })
                    .collect()
            } else {
                vec![Rule {
                    conditions: conds,
                    action: act,
                }]
            };
            for name in sc.names() {
                let nr = match resolve(arch, name) {
                    Resolution::Nr(nr) => nr,
                    Resolution::OtherArch => {
                        warnings.push(format!(
                            "{what}: syscall `{name}` does not exist on {arch}: skipped"
                        ));
                        continue;
                    }
                    Resolution::Unknown => {
                        warnings.push(format!("{what}: unknown syscall `{name}`: skipped"));
                        continue;
                    }
                };
                if !pass {
                    if let Some((prev, at)) = unconditional.get(&nr) {
                        if *prev != act {
                            warnings.push(format!(
                                "{what}: `{name}` already has action {prev} from syscalls[{at}]; {act} ignored"
                            ));
                        }
                        continue;
                    }
                    unconditional.insert(nr, (act, i));
                }
                for r in &rules {
                    filter.push_rule(nr, r.clone());
                }
            }
        }
    }
    Ok(OciFilter {
        filter,
        flags,
        warnings,
    })
}
