//! Safe path resolution inside the container root (openat2 `RESOLVE_IN_ROOT`), so that
//! image symlinks can never redirect a mount or a device node to the host.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_IN_ROOT: u64 = 0x10;

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("path {} contains a NUL byte", p.display()))
}

/// Opens `path` (absolute, interpreted inside `root`) as an O_PATH fd. With `no_symlinks`
/// any symlink on the way is refused (for /proc and /sys mounts, as runc does).
pub fn open_in_root(root: &OwnedFd, path: &Path, no_symlinks: bool) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = cstr(rel).map_err(|_| nix::Error::EINVAL)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT
            | RESOLVE_NO_MAGICLINKS
            | if no_symlinks { RESOLVE_NO_SYMLINKS } else { 0 },
    };
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and a correctly sized
    // open_how on our stack; returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: a fresh fd returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What to create when a mount point is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Resolves `path` inside `root`, creating it (and missing parents, as directories with
/// mode 0755) when absent.
pub fn ensure_in_root(
    root: &OwnedFd,
    path: &Path,
    kind: Kind,
    no_symlinks: bool,
) -> Result<OwnedFd, String> {
    match open_in_root(root, path, no_symlinks) {
        Ok(fd) => return Ok(fd),
        Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(format!("resolve {} in the rootfs: {e}", path.display())),
    }
    // Usually only the last component is missing: create parents first (recursively),
    // then this one.
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n,
        _ => return Err(format!("invalid path {} in the rootfs", path.display())),
    };
    let pfd = ensure_in_root(root, parent, Kind::Dir, no_symlinks)?;
    let dir = dirfd_of(&pfd)?;
    let cname = cstr(Path::new(name))?;
    let r = if kind == Kind::File {
        // SAFETY: openat on a directory fd we own with a NUL-terminated name; the
        // resulting fd is closed right away.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                cname.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            )
        };
        if fd >= 0 {
            // SAFETY: closing the fd just returned.
            unsafe { libc::close(fd) };
            0
        } else {
            -1
        }
    } else {
        // SAFETY: mkdirat on a directory fd we own with a NUL-terminated name.
        unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), 0o755) }
    };
    if r < 0 {
        let e = nix::Error::last();
        if e != nix::Error::EEXIST {
            return Err(format!("create {} in the rootfs: {e}", path.display()));
        }
    }
    open_in_root(root, path, no_symlinks)
        .map_err(|e| format!("resolve {} in the rootfs: {e}", path.display()))
}

/// Reopens an O_PATH directory fd as a real directory fd (needed by *at() calls).
fn dirfd_of(p: &OwnedFd) -> Result<OwnedFd, String> {
    let path = fd_path(p);
    let c = cstr(&path)?;
    // SAFETY: open of /proc/self/fd/N (NUL-terminated) for a directory we resolved.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!("reopen directory: {}", nix::Error::last()));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N`: mount(2) follows it to exactly the inode we resolved.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
