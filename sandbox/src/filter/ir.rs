//! The filter's intermediate representation: what a profile or an OCI object says, with
//! syscall names resolved to numbers for one architecture.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::syscalls::Arch;

/// Largest errno value the kernel treats as an error return (`MAX_ERRNO`).
pub const MAX_ERRNO: u16 = 4095;

/// What the kernel does with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run the syscall.
    Allow,
    /// Fail the syscall with this errno, without running it.
    Errno(u16),
    /// Kill the calling thread (`SECCOMP_RET_KILL_THREAD`, libseccomp's `SCMP_ACT_KILL`).
    KillThread,
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
    /// Send `SIGSYS` to the thread.
    Trap,
    /// Notify a ptrace tracer with this value (fails with `ENOSYS` when none is attached).
    Trace(u16),
    /// Run the syscall and log it.
    Log,
}

impl Action {
    /// The 32-bit value a seccomp program returns for this action.
    pub fn ret_value(self) -> u32 {
        match self {
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Trace(v) => libc::SECCOMP_RET_TRACE | u32::from(v),
            Action::Log => libc::SECCOMP_RET_LOG,
        }
    }

    /// The action a seccomp return value stands for (data bits included), if it is one of
    /// those warren emits.
    pub fn from_ret_value(ret: u32) -> Option<Action> {
        let data = (ret & libc::SECCOMP_RET_DATA) as u16;
        match ret & libc::SECCOMP_RET_ACTION_FULL {
            libc::SECCOMP_RET_ALLOW => Some(Action::Allow),
            libc::SECCOMP_RET_ERRNO => Some(Action::Errno(data)),
            libc::SECCOMP_RET_KILL_THREAD => Some(Action::KillThread),
            libc::SECCOMP_RET_KILL_PROCESS => Some(Action::KillProcess),
            libc::SECCOMP_RET_TRAP => Some(Action::Trap),
            libc::SECCOMP_RET_TRACE => Some(Action::Trace(data)),
            libc::SECCOMP_RET_LOG => Some(Action::Log),
            _ => None,
        }
    }

    /// Whether the syscall runs under this action.
    pub fn runs_syscall(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Allow => f.write_str("allow"),
            Action::Errno(e) => write!(f, "errno({e})"),
            Action::KillThread => f.write_str("kill_thread"),
            Action::KillProcess => f.write_str("kill_process"),
            Action::Trap => f.write_str("trap"),
            Action::Trace(v) => write!(f, "trace({v})"),
            Action::Log => f.write_str("log"),
        }
    }
}

/// How many bits of a syscall argument a comparison looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Width {
    /// The low 32 bits only. Use it for `int`/`unsigned int` arguments in *deny* rules: the
    /// kernel ignores the high half of such arguments, so a 64-bit comparison could be
    /// dodged by setting high bits (the TIOCSTI-with-high-bits trick).
    Bits32,
    /// All 64 bits (libseccomp's behaviour and the default).
    #[default]
    Bits64,
}

/// A comparison operator, as libseccomp's `SCMP_CMP_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `arg == value`
    Eq,
    /// `arg != value`
    Ne,
    /// `arg < value` (unsigned)
    Lt,
    /// `arg <= value` (unsigned)
    Le,
    /// `arg > value` (unsigned)
    Gt,
    /// `arg >= value` (unsigned)
    Ge,
    /// `arg & mask == value & mask`
    MaskedEq {
        /// The bits compared.
        mask: u64,
    },
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmpOp::Eq => f.write_str("=="),
            CmpOp::Ne => f.write_str("!="),
            CmpOp::Lt => f.write_str("<"),
            CmpOp::Le => f.write_str("<="),
            CmpOp::Gt => f.write_str(">"),
            CmpOp::Ge => f.write_str(">="),
            CmpOp::MaskedEq { mask } => write!(f, "&{mask:#x} =="),
        }
    }
}

/// One condition on a syscall argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArgCondition {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: CmpOp,
    /// The value compared against.
    pub value: u64,
    /// How many bits are compared.
    pub width: Width,
}

impl ArgCondition {
    /// Checks the condition against an argument value, as the compiled program does.
    pub fn matches(&self, arg: u64) -> bool {
        let (arg, value, mask) = match self.width {
            Width::Bits32 => (arg & 0xffff_ffff, self.value & 0xffff_ffff, 0xffff_ffff),
            Width::Bits64 => (arg, self.value, u64::MAX),
        };
        match self.op {
            CmpOp::Eq => arg == value,
            CmpOp::Ne => arg != value,
            CmpOp::Lt => arg < value,
            CmpOp::Le => arg <= value,
            CmpOp::Gt => arg > value,
            CmpOp::Ge => arg >= value,
            CmpOp::MaskedEq { mask: m } => arg & m & mask == value & m & mask,
        }
    }
}

impl fmt::Display for ArgCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = match self.width {
            Width::Bits32 => "(u32)",
            Width::Bits64 => "",
        };
        write!(f, "{w}arg{} {} {:#x}", self.index, self.op, self.value)
    }
}

/// A rule for one syscall: when every condition holds (AND), `action` is taken. A rule
/// without conditions always matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// Conditions, all of which must hold.
    pub conditions: Vec<ArgCondition>,
    /// What happens when they do.
    pub action: Action,
}

/// A filter for one architecture.
///
/// Semantics, which the compiled program implements exactly:
/// 1. a syscall from a foreign ABI (another `seccomp_data.arch`, or on x86_64 a number at
///    or above the x32 bit, as libseccomp checks it) gets `foreign_abi_action`;
/// 2. with `deny_above`, a syscall number above the bound gets its action (syscalls newer
///    than warren's table, unknown to a deny-list profile);
/// 3. otherwise the rules listed for the syscall number are tried in order, and the first
///    whose conditions all hold decides (OR across rules, AND within one);
/// 4. if none matches, `default_action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Target architecture.
    pub arch: Arch,
    /// Action when no rule matches.
    pub default_action: Action,
    /// Action for syscalls of other ABIs. Always a kill in filters warren builds: a filter
    /// written for the native ABI must not let i386 or x32 syscalls through unconfined.
    pub foreign_abi_action: Action,
    /// Syscall numbers above the bound get the action.
    pub deny_above: Option<(u32, Action)>,
    /// Rules by syscall number, in priority order.
    pub rules: BTreeMap<u32, Vec<Rule>>,
}

impl Filter {
    /// An empty filter for `arch` with the given default action.
    pub fn new(arch: Arch, default_action: Action) -> Self {
        Filter {
            arch,
            default_action,
            foreign_abi_action: Action::KillProcess,
            deny_above: None,
            rules: BTreeMap::new(),
        }
    }

    /// Appends a rule for syscall `nr` (after the rules already there).
    pub fn push_rule(&mut self, nr: u32, rule: Rule) {
        self.rules.entry(nr).or_default().push(rule);
    }

    /// Number of rules that can make a difference (an action other than the default).
    pub fn effective_rules(&self) -> usize {
        self.rules
            .values()
            .flatten()
            .filter(|r| r.action != self.default_action)
            .count()
            + usize::from(
                self.deny_above
                    .is_some_and(|(_, a)| a != self.default_action),
            )
    }

    /// What the filter decides for a syscall: the reference semantics the compiled program
    /// is tested against.
    pub fn decide(&self, arch: u32, nr: u32, args: &[u64; 6]) -> Action {
        if arch != self.arch.audit_arch()
            || (self.arch == Arch::X86_64 && nr >= crate::syscalls::X32_SYSCALL_BIT)
        {
            return self.foreign_abi_action;
        }
        if let Some((bound, action)) = self.deny_above {
            if nr > bound {
                return action;
            }
        }
        self.rules
            .get(&nr)
            .and_then(|rules| {
                rules.iter().find(|r| {
                    r.conditions
                        .iter()
                        .all(|c| c.matches(args[usize::from(c.index)]))
                })
            })
            .map_or(self.default_action, |r| r.action)
    }
}
