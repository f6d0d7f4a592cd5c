//! Errors of the filter compiler.

use super::ir::ArgCondition;

/// Why a filter could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// No rule differs from the default action; installing it would confine nothing, so it is
    /// refused rather than treated as "no filter".
    #[error("compile an empty seccomp filter: no rule differs from the default action")]
    Empty,
    /// An argument index outside 0..=5.
    #[error("compile a rule for syscall {nr}: argument index {index} is not in 0..=5")]
    ArgIndex {
        /// The syscall number.
        nr: u32,
        /// The index given.
        index: u8,
    },
    /// A 32-bit comparison with a value or mask that does not fit in 32 bits.
    #[error("compile a rule for syscall {nr}: {condition} compares 32 bits with a wider value")]
    ValueTooWide {
        /// The syscall number.
        nr: u32,
        /// The condition.
        condition: ArgCondition,
    },
    /// An errno (or trace value) above 4095.
    #[error("compile an errno action: {value} is above the kernel's MAX_ERRNO (4095)")]
    ErrnoRange {
        /// The value given.
        value: u32,
    },
    /// The program exceeds the kernel's 4096-instruction limit.
    #[error("compile a seccomp filter of {len} instructions: the kernel accepts at most 4096")]
    TooLarge {
        /// The program's length.
        len: usize,
    },
    /// A program from outside failed the structural checks.
    #[error("check a seccomp program: instruction {pc}: {reason}")]
    Malformed {
        /// Index of the offending instruction.
        pc: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A profile names a syscall no architecture has.
    #[error("compile the rule at {origin}: unknown syscall `{name}`")]
    UnknownSyscall {
        /// The name.
        name: String,
        /// Where the rule was written.
        origin: String,
    },
    /// seccompiler refused a rule or condition.
    #[error("compile a seccomp rule with seccompiler: {0}")]
    Backend(String),
}
