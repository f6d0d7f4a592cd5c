//! warren's sandbox layer.

pub mod filter;
pub mod profile;
pub mod seccomp;
pub mod syscalls;
