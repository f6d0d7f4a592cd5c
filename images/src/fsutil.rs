//! Small fd-based filesystem helpers: `openat2` confined to a root, recursive removal
//! through directory fds, xattrs, atomic file writes.
//!
//! Everything that walks a tree an image or a container controls goes through these, so
//! no path string from that tree is ever resolved by the host's normal lookup.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{IoContext, IoError};

/// How `openat2` may resolve a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confine {
    /// `RESOLVE_BENEATH`: refuse (EXDEV) anything that would leave the directory,
    /// absolute symlinks included.
    Beneath,
}

/// `openat2(dirfd, path, flags, resolve)` with `RESOLVE_NO_MAGICLINKS` always added.
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    confine: Confine,
) -> io::Result<OwnedFd> {
    let c = cstring(path.as_os_str())?;
    let resolve = match confine {
        Confine::Beneath => libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: open_how is a plain C struct; zeroed is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode)
    } else {
        0
    };
    how.resolve = resolve;
    loop {
        // SAFETY: `c` is a valid NUL-terminated string and `how` a valid open_how that
        // both outlive the call; the size passed is the size of that struct. The
        // returned fd, when non-negative, is new and owned by nobody else.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a fresh fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // openat2 returns EAGAIN when a concurrent rename raced the lookup.
        if e.raw_os_error() != Some(libc::EAGAIN) && e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Opens a directory (not following a final symlink) for use as a dirfd.
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, IoError> {
    let c = cstring(path.as_os_str()).at("open", path)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; a non-negative result is a
    // fresh fd that we take ownership of.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(IoError::new(
            "open directory",
            path,
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, flags)` for a single path component (no `/` allowed).
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let c = component(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is a live fd.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A single path component as a C string; refuses `/`, `.`, `..` and empty names.
pub(crate) fn component(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a single path component: {name:?}"),
        ));
    }
    cstring(name)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `name` empty means `dir` itself.
pub(crate) fn lstatat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let (c, flags) = if name.is_empty() {
        (
            CString::default(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH,
        )
    } else {
        (component(name)?, libc::AT_SYMLINK_NOFOLLOW)
    };
    // SAFETY: stat is plain old data; zeroed is valid and the kernel overwrites it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated, `st` is a valid out pointer, `dir` a live fd.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Lists the names in a directory fd (without `.` and `..`), sorted bytewise.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    // Dir takes ownership of the fd it reads, so give it a duplicate opened on ".".
    let fd = reopen_dot(dir)?;
    let mut d = nix::dir::Dir::from_fd(fd.as_raw_fd()).map_err(io::Error::from)?;
    std::mem::forget(fd); // now owned by `d`
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent.map_err(io::Error::from)?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(n).to_os_string());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn reopen_dot(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // component() refuses "."; go through libc directly for this one case.
    // SAFETY: the literal is NUL-terminated; `dir` is a live fd.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `.` of a dirfd as a regular (non-`O_PATH`) directory fd.
pub(crate) fn reopen_dir(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    reopen_dot(dir)
}

/// `unlinkat(dir, name, flags)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &OsStr, flags: i32) -> io::Result<()> {
    let c = component(name)?;
    // SAFETY: `c` is NUL-terminated and outlives the call; `dir` is a live fd.
    let r = unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes `name` in `dir` whatever it is, recursing into directories through fds
/// (never following symlinks). Missing is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match unlinkat(dir, name, 0) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::EISDIR) || e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(e),
    }
    let sub = openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    clear_dir(sub.as_fd())?;
    drop(sub);
    unlinkat(dir, name, libc::AT_REMOVEDIR)
}

/// Removes everything inside the directory `dir`.
pub(crate) fn clear_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    for child in list_dir(dir)? {
        remove_all_at(dir, &child)?;
    }
    Ok(())
}

/// Removes a host path tree (a directory we created, e.g. a temp dir) without following
/// symlinks inside it. Missing is not an error.
pub(crate) fn remove_tree(path: &Path) -> Result<(), IoError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(IoError::new(
            "remove",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "no parent"),
        ));
    };
    let pfd = match open_dir(parent) {
        Ok(f) => f,
        Err(e) if e.source.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_all_at(pfd.as_fd(), name).at("remove", path)
}

/// Reads one xattr of `name` in `dir` (not following a final symlink).
pub(crate) fn lgetxattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &CStr,
) -> io::Result<Option<Vec<u8>>> {
    let p = proc_path(dir, name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `p` and `attr` are NUL-terminated; buf is valid for buf.len() bytes.
        let r = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                attr.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

/// Lists the xattr names of `name` in `dir` (not following a final symlink), sorted.
pub(crate) fn llistxattr_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<CString>> {
    let p = proc_path(dir, name)?;
    let mut buf = vec![0u8; 1024];
    let n = loop {
        // SAFETY: `p` is NUL-terminated; buf is valid for buf.len() bytes.
        let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    };
    let mut out: Vec<CString> = buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| CString::new(s).ok())
        .collect();
    out.sort();
    Ok(out)
}

/// Sets an xattr on `name` in `dir` (not following a final symlink).
pub(crate) fn lsetxattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &CStr,
    value: &[u8],
) -> io::Result<()> {
    let p = proc_path(dir, name)?;
    // SAFETY: `p` and `attr` are NUL-terminated; value is valid for value.len() bytes.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            attr.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `/proc/self/fd/<dir>/<name>`: the kernel resolves the fd link to the directory we
/// hold, then looks up exactly one component in it, so nothing in the tree can redirect
/// the lookup. Only used for the xattr calls that have no `*at` form.
fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    let mut s = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        component(name)?;
        s.push(b'/');
        s.extend_from_slice(name.as_bytes());
    }
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), IoError> {
    write_via_temp(path, data, true)
}

/// Writes `data` to `path` through a temp file and a rename, without fsync: readers never
/// see a partial file, but a host crash may lose it. For records whose life ends with a
/// crash anyway.
pub(crate) fn write_replace(path: &Path, data: &[u8]) -> Result<(), IoError> {
    write_via_temp(path, data, false)
}

fn write_via_temp(path: &Path, data: &[u8], fsync: bool) -> Result<(), IoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .at("create temp file in", dir)?;
    tmp.write_all(data).at("write", tmp.path())?;
    if fsync {
        tmp.as_file().sync_all().at("fsync", tmp.path())?;
    }
    tmp.persist(path)
        .map_err(|e| IoError::new("rename into", path, e.error))?;
    Ok(())
}

/// Creates `path` and its parents with mode 0700 for new directories.
pub(crate) fn mkdir_p(path: &Path) -> Result<(), IoError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .at("create directory", path)
}

/// Wraps an owned fd as a `File`.
pub(crate) fn fd_file(fd: OwnedFd) -> File {
    File::from(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beneath_refuses_escaping_symlinks() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", t.path().join("up")).unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", t.path().join("rel")).unwrap();
        let root = open_dir(t.path()).unwrap();
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        for bad in ["abs", "up", "../", "/etc", "d/../../x"] {
            let e = openat2(root.as_fd(), Path::new(bad), flags, 0, Confine::Beneath).unwrap_err();
            assert!(
                matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ENOENT)),
                "{bad}: {e}"
            );
        }
        openat2(root.as_fd(), Path::new("rel"), flags, 0, Confine::Beneath).unwrap();
    }

    #[test]
    fn remove_all_does_not_follow_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let keep = t.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("f"), b"x").unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir_all(victim.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&keep, victim.join("a/link")).unwrap();
        remove_tree(&victim).unwrap();
        assert!(!victim.exists());
        assert!(keep.join("f").exists());
    }
}
