//! The seccomp filter compiler core: intermediate representation, BPF code generation and
//! the profile front end. Shared with `build.rs`, which compiles the built-in profiles at
//! build time, so it depends only on [`crate::profile`] and [`crate::syscalls`].

pub mod codegen;
pub mod errno;
pub mod error;
pub mod from_profile;
pub mod ir;

pub use codegen::{check_program, compile};
pub use error::CompileError;
pub use ir::{Action, ArgCondition, CmpOp, Filter, Rule, Width};
