//! Entering a sandbox's mount and IPC namespaces from one thread of a daemon, to reset
//! what its commands left there (tmpfs contents, POSIX message queues, SysV IPC).
//!
//! `setns(CLONE_NEWNS)` needs a thread whose filesystem context (root, cwd, umask) is its
//! own, so such a thread first calls [`prepare_thread`] (`unshare(CLONE_FS)`); the rest of
//! the process is unaffected. [`with_ns`] always returns to the daemon's own namespaces;
//! if that fails the process aborts rather than keep working inside a sandbox.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// A mount and an IPC namespace, held open by fd.
#[derive(Debug)]
pub struct NsFds {
    pub mnt: OwnedFd,
    pub ipc: OwnedFd,
}

fn open_ns(path: PathBuf) -> Result<OwnedFd> {
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| Error::io("open namespace", path, e))
}

impl NsFds {
    /// The namespaces of process `pid` (a sandbox's init).
    pub fn of_pid(pid: i32) -> Result<Self> {
        Ok(Self {
            mnt: open_ns(PathBuf::from(format!("/proc/{pid}/ns/mnt")))?,
            ipc: open_ns(PathBuf::from(format!("/proc/{pid}/ns/ipc")))?,
        })
    }

    /// The calling thread's namespaces (open before any `setns`).
    pub fn current() -> Result<Self> {
        Ok(Self {
            mnt: open_ns(PathBuf::from("/proc/thread-self/ns/mnt"))?,
            ipc: open_ns(PathBuf::from("/proc/thread-self/ns/ipc"))?,
        })
    }
}

/// Gives the calling thread its own filesystem context, so that it may `setns` into
/// mount namespaces. Call once per thread.
pub fn prepare_thread() -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_FS).map_err(|source| Error::Namespace {
        what: "unshare(CLONE_FS)".into(),
        source,
    })
}

fn setns(fd: &OwnedFd, flag: CloneFlags, what: &str) -> Result<()> {
    nix::sched::setns(fd, flag).map_err(|source| Error::Namespace {
        what: what.to_owned(),
        source,
    })
}

/// Runs `f` inside `target`'s mount and IPC namespaces, then returns to `home` (the
/// daemon's). The thread must have called [`prepare_thread`].
pub fn with_ns<T>(target: &NsFds, home: &NsFds, f: impl FnOnce() -> T) -> Result<T> {
    setns(
        &target.mnt,
        CloneFlags::CLONE_NEWNS,
        "enter mount namespace",
    )?;
    if let Err(e) = setns(&target.ipc, CloneFlags::CLONE_NEWIPC, "enter IPC namespace") {
        back(home);
        return Err(e);
    }
    let r = f();
    back(home);
    Ok(r)
}

fn back(home: &NsFds) {
    for (fd, flag) in [
        (&home.ipc, CloneFlags::CLONE_NEWIPC),
        (&home.mnt, CloneFlags::CLONE_NEWNS),
    ] {
        if let Err(e) = nix::sched::setns(fd, flag) {
            // Carrying on inside a sandbox's namespaces would act on the wrong files.
            tracing::error!(error = %e, fd = fd.as_raw_fd(), "cannot return to the daemon's namespaces");
            std::process::abort();
        }
    }
}
