//! What a reset does inside a pooled sandbox's mount and IPC namespaces (called through
//! [`crate::ns::with_ns`]): make `/dev` (and the host view's `/etc`) read-only once,
//! record what each fresh tmpfs looks like, and after every exec empty each tmpfs that
//! changed, remove POSIX message queues and SysV IPC objects.
//!
//! Every path is opened with `openat2(RESOLVE_NO_SYMLINKS)`, so a command cannot redirect
//! a reset through a symlink (it could not make one in a read-only root anyway).

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;

use crate::spec::Tmpfs;

const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Errors of a reset step; the sandbox is then replaced.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("{op} {path}: {source}")]
    Sys {
        op: &'static str,
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("{path} is not a tmpfs")]
    NotTmpfs { path: String },
    #[error("{path} holds too much to empty ({inodes} inodes)")]
    TooBig { path: String, inodes: u64 },
    #[error("{path} is not as new after emptying: {detail}")]
    Unclean { path: String, detail: String },
}

fn sys(op: &'static str, path: &Path, source: nix::Error) -> ResetError {
    ResetError::Sys {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// What a tmpfs looks like: when it matches the fresh one, nothing was left in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsState {
    pub inodes: u64,
    pub blocks: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: bool,
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

fn open_dir(path: &Path) -> Result<OwnedFd, ResetError> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| sys("open", path, nix::Error::EINVAL))?;
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a NUL-terminated path and a correctly sized open_how on our
    // stack; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(sys("open", path, nix::Error::last()));
    }
    // SAFETY: a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Reads the state of the tmpfs at `path`.
pub fn inspect(path: &Path) -> Result<TmpfsState, ResetError> {
    let fd = open_dir(path)?;
    let fs = nix::sys::statfs::fstatfs(&fd).map_err(|e| sys("statfs", path, e))?;
    if fs.filesystem_type().0 as i64 != TMPFS_MAGIC {
        return Err(ResetError::NotTmpfs {
            path: path.display().to_string(),
        });
    }
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| sys("stat", path, e))?;
    let mut buf = [0u8; 256];
    // SAFETY: flistxattr into our buffer of the given size; returns a length or -1.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    Ok(TmpfsState {
        inodes: fs.files().saturating_sub(fs.files_free()),
        blocks: fs.blocks().saturating_sub(fs.blocks_free()),
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        xattrs: n != 0,
    })
}

/// Makes the mount at `path` read-only in place (no second bind mount, so nothing stays
/// hidden beneath it).
pub fn make_readonly(path: &Path) -> Result<(), ResetError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| sys("statvfs", path, e))?;
    let keep = MsFlags::from_bits_truncate(st.flags().bits() as libc::c_ulong)
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
        None::<&str>,
    )
    .map_err(|e| sys("remount read-only", path, e))
}

/// Run once after the sandbox starts: read-only `paths`, and the fresh state of each
/// tmpfs.
pub fn prepare(readonly: &[&Path], mounts: &[Tmpfs]) -> Result<Vec<TmpfsState>, ResetError> {
    for p in readonly {
        make_readonly(p)?;
    }
    mounts.iter().map(|t| inspect(&t.dst)).collect()
}

/// What a reset found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// tmpfs mounts emptied.
    pub cleared: u32,
    /// Entries removed from them.
    pub removed: u64,
    pub mqueues: u32,
    pub sysv: u32,
}

/// More inodes than this left in one tmpfs: replacing the sandbox is cheaper than
/// emptying it.
pub const MAX_CLEAR_INODES: u64 = 16_384;
/// Deeper directory trees are not emptied either.
const MAX_DEPTH: usize = 256;

/// Clears everything a command may have left: the contents of every tmpfs that changed
/// (emptied in place: a fresh mount would lose the Landlock rules granted on the old one),
/// message queues, SysV IPC. Runs inside the sandbox's namespaces, after its processes
/// are gone.
pub fn clean(mounts: &[Tmpfs], base: &[TmpfsState]) -> Result<Cleaned, ResetError> {
    let mut c = Cleaned::default();
    for (t, b) in mounts.iter().zip(base) {
        let now = inspect(&t.dst)?;
        if now == *b {
            continue;
        }
        if now.inodes > MAX_CLEAR_INODES {
            return Err(ResetError::TooBig {
                path: t.dst.display().to_string(),
                inodes: now.inodes,
            });
        }
        let fd = open_dir(&t.dst)?;
        c.removed += clear_dir(&fd, &t.dst, 0)?;
        restore_root(&fd, &t.dst, b)?;
        c.cleared += 1;
        let after = inspect(&t.dst)?;
        if after != *b {
            return Err(ResetError::Unclean {
                path: t.dst.display().to_string(),
                detail: format!("{after:?} instead of {b:?}"),
            });
        }
    }
    c.mqueues = clear_mqueues(Path::new("/dev/mqueue"))?;
    c.sysv = clear_sysv();
    Ok(c)
}

fn open_at(dir: &OwnedFd, name: &CStr, path: &Path) -> Result<OwnedFd, ResetError> {
    // SAFETY: openat relative to a directory fd we own, with a NUL-terminated entry name;
    // O_NOFOLLOW: a symlink is never followed.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(sys("open", path, nix::Error::last()));
    }
    // SAFETY: a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes everything below the directory `fd` (at `path`, for messages), never following
/// a symlink. Returns how many entries were removed.
fn clear_dir(fd: &OwnedFd, path: &Path, depth: usize) -> Result<u64, ResetError> {
    if depth > MAX_DEPTH {
        return Err(ResetError::TooBig {
            path: path.display().to_string(),
            inodes: 0,
        });
    }
    let dup = fd.try_clone().map_err(|e| {
        sys(
            "dup",
            path,
            nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })?;
    let raw = dup.as_raw_fd();
    std::mem::forget(dup);
    // The Dir owns the duplicate from here on (closes it on drop).
    let mut d = nix::dir::Dir::from_fd(raw).map_err(|e| sys("read", path, e))?;
    let entries: Vec<(CString, Option<nix::dir::Type>)> = d
        .iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_bytes();
            n != b"." && n != b".."
        })
        .map(|e| (e.file_name().to_owned(), e.file_type()))
        .collect();
    drop(d);
    let mut removed = 0;
    for (name, typ) in entries {
        let is_dir = match typ {
            Some(t) => t == nix::dir::Type::Directory,
            None => nix::sys::stat::fstatat(
                Some(fd.as_raw_fd()),
                name.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .unwrap_or(false),
        };
        let child_path = path.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let flags = if is_dir {
            let child = open_at(fd, &name, &child_path)?;
            removed += clear_dir(&child, &child_path, depth + 1)?;
            libc::AT_REMOVEDIR
        } else {
            0
        };
        // SAFETY: unlinkat relative to a directory fd we own, with an entry name.
        if unsafe { libc::unlinkat(fd.as_raw_fd(), name.as_ptr(), flags) } != 0 {
            return Err(sys("remove", &child_path, nix::Error::last()));
        }
        removed += 1;
    }
    Ok(removed)
}

/// Gives the tmpfs root back its original mode and owner, and no extended attributes.
fn restore_root(fd: &OwnedFd, path: &Path, b: &TmpfsState) -> Result<(), ResetError> {
    // SAFETY: fchmod/fchown on a directory fd we own.
    if unsafe { libc::fchmod(fd.as_raw_fd(), b.mode & 0o7777) } != 0 {
        return Err(sys("chmod", path, nix::Error::last()));
    }
    // SAFETY: as above.
    if unsafe { libc::fchown(fd.as_raw_fd(), b.uid, b.gid) } != 0 {
        return Err(sys("chown", path, nix::Error::last()));
    }
    let mut buf = vec![0u8; 65536];
    // SAFETY: flistxattr into our buffer of the given size.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        for name in buf[..n as usize]
            .split(|&c| c == 0)
            .filter(|n| !n.is_empty())
        {
            let Ok(c) = CString::new(name) else { continue };
            // SAFETY: fremovexattr with a NUL-terminated attribute name.
            if unsafe { libc::fremovexattr(fd.as_raw_fd(), c.as_ptr()) } != 0 {
                return Err(sys(
                    "remove extended attribute of",
                    path,
                    nix::Error::last(),
                ));
            }
        }
    }
    Ok(())
}

fn clear_mqueues(dir: &Path) -> Result<u32, ResetError> {
    let fd = match open_dir(dir) {
        Ok(fd) => fd,
        Err(ResetError::Sys {
            source: nix::Error::ENOENT,
            ..
        }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let raw = fd.as_raw_fd();
    std::mem::forget(fd);
    // The Dir owns the fd from here on (closes it on drop).
    let mut d = nix::dir::Dir::from_fd(raw).map_err(|e| sys("read", dir, e))?;
    let names: Vec<CString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    let dfd = d.as_raw_fd();
    for n in &names {
        // SAFETY: unlinkat relative to the directory fd with a NUL-terminated name without
        // slashes (a directory entry).
        if unsafe { libc::unlinkat(dfd, n.as_ptr(), 0) } != 0 {
            return Err(sys("remove message queue in", dir, nix::Error::last()));
        }
    }
    Ok(names.len() as u32)
}

// Not all of these are in the libc crate.
const IPC_RMID: i32 = 0;
const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;

/// Room for any of shmid_ds/shm_info, semid_ds/seminfo, msqid_ds/msginfo, read as ints.
#[repr(C, align(8))]
struct IpcBuf([i32; 64]);

/// Removes every SysV shared memory segment, semaphore set and message queue of the
/// current IPC namespace; returns how many.
fn clear_sysv() -> u32 {
    let mut removed = 0;
    let mut b = IpcBuf([0; 64]);
    // shm_info.used_ids is the first int.
    // SAFETY: shmctl(SHM_INFO) writes a struct shm_info (smaller than `b`).
    let max = unsafe { libc::shmctl(0, SHM_INFO, (&mut b as *mut IpcBuf).cast()) };
    if max >= 0 && b.0[0] > 0 {
        for i in 0..=max {
            // SAFETY: SHM_STAT writes a shmid_ds (smaller than `b`); returns the id.
            let id = unsafe { libc::shmctl(i, SHM_STAT, (&mut b as *mut IpcBuf).cast()) };
            // SAFETY: IPC_RMID takes no buffer.
            if id >= 0 && unsafe { libc::shmctl(id, IPC_RMID, std::ptr::null_mut()) } == 0 {
                removed += 1;
            }
        }
    }
    b.0 = [0; 64];
    // seminfo.semusz (sets in use, with SEM_INFO) is the eighth int.
    // SAFETY: semctl(SEM_INFO) writes a struct seminfo (smaller than `b`).
    let max = unsafe { libc::semctl(0, 0, SEM_INFO, &mut b as *mut IpcBuf) };
    if max >= 0 && b.0[7] > 0 {
        for i in 0..=max {
            // SAFETY: SEM_STAT writes a semid_ds (smaller than `b`); returns the id.
            let id = unsafe { libc::semctl(i, 0, SEM_STAT, &mut b as *mut IpcBuf) };
            // SAFETY: IPC_RMID takes no buffer.
            if id >= 0 && unsafe { libc::semctl(id, 0, IPC_RMID) } == 0 {
                removed += 1;
            }
        }
    }
    b.0 = [0; 64];
    // msginfo.msgpool (queues in use, with MSG_INFO) is the first int.
    // SAFETY: msgctl(MSG_INFO) writes a struct msginfo (smaller than `b`).
    let max = unsafe { libc::msgctl(0, MSG_INFO, (&mut b as *mut IpcBuf).cast()) };
    if max >= 0 && b.0[0] > 0 {
        for i in 0..=max {
            // SAFETY: MSG_STAT writes a msqid_ds (smaller than `b`); returns the id.
            let id = unsafe { libc::msgctl(i, MSG_STAT, (&mut b as *mut IpcBuf).cast()) };
            // SAFETY: IPC_RMID takes no buffer.
            if id >= 0 && unsafe { libc::msgctl(id, IPC_RMID, std::ptr::null_mut()) } == 0 {
                removed += 1;
            }
        }
    }
    removed
}
