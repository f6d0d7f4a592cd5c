//! Installing a compiled program: `seccomp(SECCOMP_SET_MODE_FILTER)`. Used in the
//! container's init right before `execve`.

use seccompiler::sock_filter;

use super::SeccompError;
use crate::filter::check_program;

/// Flags of the `seccomp(SECCOMP_SET_MODE_FILTER)` call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InstallFlags {
    /// `SECCOMP_FILTER_FLAG_TSYNC`: put every thread of the process under the filter.
    pub tsync: bool,
    /// `SECCOMP_FILTER_FLAG_LOG`: log every action but ALLOW.
    pub log: bool,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep speculative store bypass mitigation off.
    pub spec_allow: bool,
}

impl InstallFlags {
    /// The flag word of the syscall.
    pub fn bits(self) -> u32 {
        let mut bits = 0;
        if self.tsync {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
        }
        if self.log {
            bits |= libc::SECCOMP_FILTER_FLAG_LOG as u32;
        }
        if self.spec_allow {
            bits |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
        }
        bits
    }

    /// The flags of a flag word (unknown bits dropped).
    pub fn from_bits(bits: u32) -> Self {
        InstallFlags {
            tsync: bits & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0,
            log: bits & libc::SECCOMP_FILTER_FLAG_LOG as u32 != 0,
            spec_allow: bits & libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32 != 0,
        }
    }
}

/// Sets `no_new_privs` on the calling thread (inherited by children and kept across
/// `execve`). The kernel requires it (or `CAP_SYS_ADMIN`) before a filter is installed.
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers and only changes the
    // calling thread's credentials flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Installs `program` on the calling thread (on every thread with `flags.tsync`).
///
/// It does not set `no_new_privs`: that is the profile's (or the spec's) decision, and the
/// kernel refuses the filter with `EACCES` when it is unset and `CAP_SYS_ADMIN` is missing,
/// which this reports as [`SeccompError::NeedsNoNewPrivs`]. An empty or malformed program
/// is an error, never "no filter".
///
/// Safe to call after `fork` in a multi-threaded parent: it allocates nothing.
pub fn install(program: &[sock_filter], flags: InstallFlags) -> Result<(), SeccompError> {
    check_program(program)?;
    let len = u16::try_from(program.len()).map_err(|_| {
        SeccompError::Compile(crate::filter::CompileError::TooLarge { len: program.len() })
    })?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (copy_from_user).
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: seccompiler::sock_filter is #[repr(C)] with the same fields (u16, u8, u8, u32)
    // as the kernel's struct sock_filter (= libc::sock_filter); `prog` points at `len` of them,
    // alive for the duration of the call; the kernel copies the program and does not keep
    // the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags.bits()),
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return Err(if err.raw_os_error() == Some(libc::EACCES) {
            SeccompError::NeedsNoNewPrivs
        } else {
            SeccompError::Install(err)
        });
    }
    if rc > 0 {
        return Err(SeccompError::ThreadSync { tid: rc });
    }
    Ok(())
}
