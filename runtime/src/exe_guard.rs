//! Protection against CVE-2019-5736: a container process that gets hold of the runtime's
//! executable (through `/proc/PID/exe` of a runtime process that entered the container,
//! or a `#!/proc/self/exe` entrypoint) must not be able to overwrite it on the host.
//!
//! youki copies its whole binary into a sealed memfd and re-executes on every call
//! (≈10 ms). We re-execute once, only for the verbs that put a runtime process into a
//! container (create, run, exec), from a *detached, read-only bind mount of the binary
//! itself* (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`): no copy,
//! and every reopen of `/proc/PID/exe` then goes through a read-only mount and fails with
//! EROFS. A binary already installed on a read-only mount needs no re-exec at all.
//! Kernels without the new mount API fall back to youki's sealed memfd.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Result, RuntimeError};

/// How the running executable is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// `/proc/self/exe` is on a read-only mount.
    ReadOnlyMount,
    /// `/proc/self/exe` is a write-sealed memfd.
    SealedMemfd,
    /// Neither.
    None,
}

/// Reports how the current executable is protected.
pub fn protection() -> Protection {
    let Ok(f) = File::open("/proc/self/exe") else {
        return Protection::None;
    };
    // SAFETY: fcntl(F_GET_SEALS) on an fd we own; returns flags or -1.
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_WRITE != 0 {
        return Protection::SealedMemfd;
    }
    match nix::sys::statvfs::fstatvfs(&f) {
        Ok(s) if s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => {
            Protection::ReadOnlyMount
        }
        _ => Protection::None,
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

fn sealed_mount_fd() -> nix::Result<OwnedFd> {
    let path = c"/proc/self/exe";
    // SAFETY: open_tree(2) with a valid NUL-terminated path; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a fresh fd returned by the kernel, owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: mount_setattr(2) on the detached tree fd with AT_EMPTY_PATH and a correctly
    // sized attribute struct on our stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(tree)
}

fn sealed_memfd() -> Result<OwnedFd> {
    let mut exe =
        File::open("/proc/self/exe").map_err(|e| RuntimeError::io("open", "/proc/self/exe", e))?;
    let name = c"warren-runtime";
    // SAFETY: memfd_create with a NUL-terminated name; returns a new fd or -1.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(RuntimeError::sys("memfd_create", nix::Error::last()));
    }
    // SAFETY: fresh fd from memfd_create.
    let mut mem = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut exe, &mut mem).map_err(|e| RuntimeError::io("copy", "/proc/self/exe", e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) on our memfd.
    if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(RuntimeError::sys("seal memfd", nix::Error::last()));
    }
    Ok(OwnedFd::from(mem))
}

/// Makes sure the running executable cannot be overwritten from a container: returns when
/// it already is protected, otherwise re-executes `argv` (with the current environment)
/// from a protected copy and does not return. `argv` is the process's own argument list,
/// which only the binary knows.
pub fn ensure_protected(argv: &[OsString]) -> Result<()> {
    if protection() != Protection::None {
        return Ok(());
    }
    let fd = match sealed_mount_fd() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(error = %e, "read-only exe mount unavailable, using a sealed memfd");
            sealed_memfd()?
        }
    };
    let cargs: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| RuntimeError::InvalidArgument {
            what: "argument",
            value: String::new(),
            msg: "contains a NUL byte".into(),
        })?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: execveat on a valid fd with AT_EMPTY_PATH, a NULL-terminated argv of live
    // CStrings and the process's own environment block. On success it does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            ptrs.as_ptr(),
            environ,
            libc::AT_EMPTY_PATH,
        )
    };
    Err(RuntimeError::sys(
        "re-exec from a read-only view of the runtime binary",
        nix::Error::last(),
    ))
}
