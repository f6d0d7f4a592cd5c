//! Safe layer unpacking.
//!
//! Every entry is resolved inside the destination with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` and created with `*at` calls on the parent's fd, so an entry
//! can never write outside the destination: `..` and absolute names are refused before
//! any lookup, and a parent path that leaves the destination through a symlink (absolute
//! or climbing) makes the kernel answer EXDEV, which we turn into a refusal naming the
//! entry. Symlinks that stay inside the destination are followed, as Docker does.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::EntryType;

use super::LayerError;
use crate::fsutil::{self, Confine};

/// What to do with OCI whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackMode {
    /// Unpack one layer on its own, as an overlayfs lower directory: `.wh.name` becomes a
    /// 0:0 character device `name`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on
    /// its directory.
    Overlay,
    /// Apply the layer on top of what the destination holds: whiteouts delete.
    Apply,
    /// A plain tarball (a download): `.wh.` names get no special meaning.
    Plain,
}

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Entries processed.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Unpacks the uncompressed tar stream `tar` into the existing directory `dest`.
pub fn unpack<R: Read>(tar: R, dest: &Path, mode: UnpackMode) -> Result<UnpackStats, LayerError> {
    let root = fsutil::open_dir(dest)?;
    let mut u = Unpacker {
        root,
        mode,
        created: HashSet::new(),
        dirs: Vec::new(),
        cached_parent: None,
        stats: UnpackStats::default(),
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(LayerError::Archive)?;
    for entry in entries {
        let mut entry = entry.map_err(LayerError::Archive)?;
        u.entry(&mut entry)?;
    }
    u.finish_dirs();
    Ok(u.stats)
}

struct Unpacker {
    root: OwnedFd,
    mode: UnpackMode,
    /// Paths this layer wrote (Apply mode: whiteouts only hide lower content).
    created: HashSet<Vec<u8>>,
    /// Directory mtimes, set last since writing children changes them.
    dirs: Vec<(Vec<u8>, i64)>,
    cached_parent: Option<(Vec<u8>, OwnedFd)>,
    stats: UnpackStats,
}

/// Metadata of one entry, PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn refused(entry: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Refused {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn entry_err(entry: &str, source: io::Error) -> LayerError {
    LayerError::Entry {
        entry: entry.to_string(),
        source,
    }
}

/// Splits an archive path into components, refusing absolute paths and `..`.
pub(crate) fn normalize<'a>(raw: &'a [u8], shown: &str) -> Result<Vec<&'a [u8]>, LayerError> {
    if raw.first() == Some(&b'/') {
        return Err(refused(shown, "absolute path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(refused(shown, "path contains '..'")),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        self.stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let comps = normalize(&raw, &shown)?;
        let Some((&name, parents)) = comps.split_last() else {
            return Ok(()); // the root directory itself: its attributes are the store's
        };
        let meta = self.meta(entry, &shown)?;

        // Whiteouts.
        if self.mode != UnpackMode::Plain && name.starts_with(WHITEOUT_PREFIX) {
            let parent = self.parent(parents, &shown)?;
            if name == OPAQUE {
                return self.opaque(parent.as_fd(), parents, &shown);
            }
            let target = &name[WHITEOUT_PREFIX.len()..];
            if target.starts_with(WHITEOUT_PREFIX) || target.is_empty() {
                return Ok(()); // aufs bookkeeping (.wh..wh.plnk and friends)
            }
            if target == b"." || target == b".." {
                return Err(refused(&shown, "whiteout of '.' or '..'"));
            }
            return self.whiteout(parent.as_fd(), parents, target, &shown);
        }

        let parent = self.parent(parents, &shown)?;
        let pfd = parent.as_fd();
        let leaf = os(name);
        let full = join(&comps);
        if kind != EntryType::Regular && kind != EntryType::Continuous {
            self.cached_parent = None;
        }
        match kind {
            EntryType::Directory => {
                match lstat(pfd, leaf) {
                    Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                    Some(_) => {
                        fsutil::remove_all_at(pfd, leaf).map_err(|e| entry_err(&shown, e))?;
                        mkdir(pfd, leaf, &shown)?;
                    }
                    None => mkdir(pfd, leaf, &shown)?,
                }
                let fd = fsutil::openat(
                    pfd,
                    leaf,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| entry_err(&shown, e))?;
                apply_fd_meta(fd.as_fd(), &meta, &shown)?;
                self.dirs.push((full.clone(), meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.clear_leaf(pfd, leaf, &shown)?;
                let fd = fsutil::openat(
                    pfd,
                    leaf,
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                    0o600,
                )
                .map_err(|e| entry_err(&shown, e))?;
                let mut f = fsutil::fd_file(fd);
                let n = io::copy(entry, &mut f).map_err(LayerError::Archive)?;
                self.stats.bytes += n;
                apply_fd_meta(f.as_fd(), &meta, &shown)?;
                set_times(f.as_fd(), None, meta.mtime).map_err(|e| entry_err(&shown, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&shown, "symlink without a target"))?
                    .into_owned();
                self.clear_leaf(pfd, leaf, &shown)?;
                let t = fsutil::cstring(os(&target)).map_err(|e| entry_err(&shown, e))?;
                let l = fsutil::component(leaf).map_err(|e| entry_err(&shown, e))?;
                // SAFETY: both strings are NUL-terminated and outlive the call; pfd is live.
                if unsafe { libc::symlinkat(t.as_ptr(), pfd.as_raw_fd(), l.as_ptr()) } < 0 {
                    return Err(entry_err(&shown, io::Error::last_os_error()));
                }
                apply_at_meta(pfd, leaf, &meta, false, &shown)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&shown, "hardlink without a target"))?
                    .into_owned();
                let tshown = String::from_utf8_lossy(&target).into_owned();
                let tcomps = normalize(&target, &shown).map_err(|_| {
                    refused(
                        &shown,
                        format!("hardlink target {tshown:?} leaves the destination"),
                    )
                })?;
                if tcomps.is_empty() {
                    return Err(refused(&shown, "hardlink to the root directory"));
                }
                let src = fsutil::openat2(
                    self.root.as_fd(),
                    Path::new(os(&join(&tcomps))),
                    libc::O_PATH | libc::O_NOFOLLOW,
                    0,
                    Confine::Beneath,
                )
                .map_err(|e| match errno(&e) {
                    libc::EXDEV | libc::ELOOP => refused(
                        &shown,
                        format!("hardlink target {tshown:?} leaves the destination"),
                    ),
                    _ => entry_err(
                        &shown,
                        io::Error::new(e.kind(), format!("hardlink target {tshown:?}: {e}")),
                    ),
                })?;
                self.clear_leaf(pfd, leaf, &shown)?;
                link_fd(src.as_fd(), pfd, leaf).map_err(|e| entry_err(&shown, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                self.clear_leaf(pfd, leaf, &shown)?;
                mknod(pfd, leaf, fmt, major, minor).map_err(|e| entry_err(&shown, e))?;
                apply_at_meta(pfd, leaf, &meta, true, &shown)?;
            }
            other => {
                tracing::warn!(entry = %shown, kind = ?other, "skipping unsupported tar entry type");
                return Ok(());
            }
        }
        if self.mode == UnpackMode::Apply {
            self.created.insert(full);
        }
        Ok(())
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<Meta, LayerError> {
        let h = entry.header();
        let bad = |what: &str, e: io::Error| refused(shown, format!("bad {what} in header: {e}"));
        let mut m = Meta {
            mode: h.mode().map_err(|e| bad("mode", e))? & 0o7777,
            uid: h.uid().map_err(|e| bad("uid", e))? as u32,
            gid: h.gid().map_err(|e| bad("gid", e))? as u32,
            mtime: h.mtime().map_err(|e| bad("mtime", e))? as i64,
            xattrs: Vec::new(),
        };
        if let Some(exts) = entry.pax_extensions().map_err(LayerError::Archive)? {
            for ext in exts {
                let ext = ext.map_err(LayerError::Archive)?;
                let key = ext.key_bytes();
                let val = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(val)
                        .ok()
                        .and_then(|s| s.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    b"uid" => m.uid = num().ok_or_else(|| refused(shown, "bad PAX uid"))? as u32,
                    b"gid" => m.gid = num().ok_or_else(|| refused(shown, "bad PAX gid"))? as u32,
                    b"mtime" => m.mtime = num().ok_or_else(|| refused(shown, "bad PAX mtime"))?,
                    k if k.starts_with(b"SCHILY.xattr.") => {
                        let name = &k[b"SCHILY.xattr.".len()..];
                        if name.starts_with(OVERLAY_XATTR_PREFIX) {
                            tracing::warn!(entry = %shown, "dropping overlayfs xattr from layer");
                            continue;
                        }
                        if let Ok(c) = CString::new(name) {
                            m.xattrs.push((c, val.to_vec()));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(m)
    }

    /// Resolves (creating as needed) the parent directory of an entry.
    fn parent(&mut self, comps: &[&[u8]], shown: &str) -> Result<OwnedFd, LayerError> {
        let rel = join(comps);
        if let Some((p, fd)) = &self.cached_parent {
            if *p == rel {
                return fd.try_clone().map_err(|e| entry_err(shown, e));
            }
        }
        let fd = self.resolve_parent(comps, shown)?;
        self.cached_parent = Some((rel, fd.try_clone().map_err(|e| entry_err(shown, e))?));
        Ok(fd)
    }

    fn resolve_parent(&mut self, comps: &[&[u8]], shown: &str) -> Result<OwnedFd, LayerError> {
        let open = |rel: &[u8]| {
            if rel.is_empty() {
                return fsutil::reopen_dir(self.root.as_fd());
            }
            fsutil::openat2(
                self.root.as_fd(),
                Path::new(os(rel)),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                Confine::Beneath,
            )
        };
        let classify = |e: io::Error| match errno(&e) {
            libc::EXDEV | libc::ELOOP => refused(
                shown,
                "its parent path leaves the destination through a symlink",
            ),
            libc::ENOTDIR => refused(shown, "a parent path component is not a directory"),
            _ => entry_err(shown, e),
        };
        match open(&join(comps)) {
            Ok(fd) => return Ok(fd),
            Err(e) if errno(&e) == libc::ENOENT => {}
            Err(e) => return Err(classify(e)),
        }
        let mut cur = open(b"").map_err(|e| entry_err(shown, e))?;
        for i in 0..comps.len() {
            let prefix = join(&comps[..=i]);
            match open(&prefix) {
                Ok(fd) => cur = fd,
                Err(e) if errno(&e) == libc::ENOENT => {
                    let name = os(comps[i]);
                    if lstat(cur.as_fd(), name).is_some() {
                        return Err(refused(
                            shown,
                            "a parent path component is a dangling symlink",
                        ));
                    }
                    mkdir(cur.as_fd(), name, shown)?;
                    let fd = open(&prefix).map_err(classify)?;
                    fchmod(fd.as_fd(), 0o755).map_err(|e| entry_err(shown, e))?;
                    if self.mode == UnpackMode::Apply {
                        self.created.insert(prefix);
                    }
                    cur = fd;
                }
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(cur)
    }

    /// Removes whatever sits at `leaf` so a new entry can take its place.
    fn clear_leaf(
        &mut self,
        pfd: BorrowedFd<'_>,
        leaf: &OsStr,
        shown: &str,
    ) -> Result<(), LayerError> {
        if lstat(pfd, leaf).is_some() {
            self.cached_parent = None;
            fsutil::remove_all_at(pfd, leaf).map_err(|e| entry_err(shown, e))?;
        }
        Ok(())
    }

    fn whiteout(
        &mut self,
        pfd: BorrowedFd<'_>,
        parents: &[&[u8]],
        target: &[u8],
        shown: &str,
    ) -> Result<(), LayerError> {
        let leaf = os(target);
        self.cached_parent = None;
        match self.mode {
            UnpackMode::Overlay => {
                fsutil::remove_all_at(pfd, leaf).map_err(|e| entry_err(shown, e))?;
                mknod(pfd, leaf, libc::S_IFCHR, 0, 0).map_err(|e| entry_err(shown, e))?;
            }
            UnpackMode::Apply => {
                let mut full = parents.to_vec();
                full.push(target);
                if !self.created.contains(&join(&full)) {
                    fsutil::remove_all_at(pfd, leaf).map_err(|e| entry_err(shown, e))?;
                }
            }
            UnpackMode::Plain => {}
        }
        Ok(())
    }

    fn opaque(
        &mut self,
        pfd: BorrowedFd<'_>,
        parents: &[&[u8]],
        shown: &str,
    ) -> Result<(), LayerError> {
        match self.mode {
            UnpackMode::Overlay => {
                set_xattr_fd(pfd, c"trusted.overlay.opaque", b"y")
                    .map_err(|e| entry_err(shown, e))?;
            }
            UnpackMode::Apply => {
                self.cached_parent = None;
                for child in fsutil::list_dir(pfd).map_err(|e| entry_err(shown, e))? {
                    let mut full = parents.to_vec();
                    full.push(child.as_bytes());
                    if !self.created.contains(&join(&full)) {
                        fsutil::remove_all_at(pfd, &child).map_err(|e| entry_err(shown, e))?;
                    }
                }
            }
            UnpackMode::Plain => {}
        }
        Ok(())
    }

    fn finish_dirs(&mut self) {
        // Deepest first does not matter for mtimes set with futimens on each dir's own fd.
        for (rel, mtime) in std::mem::take(&mut self.dirs) {
            let fd = fsutil::openat2(
                self.root.as_fd(),
                Path::new(os(&rel)),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
                Confine::Beneath,
            );
            if let Ok(fd) = fd {
                let _ = set_times(fd.as_fd(), None, mtime);
            }
        }
    }
}

fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> Option<libc::stat> {
    fsutil::lstatat(dir, name).ok()
}

fn mkdir(dir: BorrowedFd<'_>, name: &OsStr, shown: &str) -> Result<(), LayerError> {
    let c = fsutil::component(name).map_err(|e| entry_err(shown, e))?;
    // SAFETY: `c` is NUL-terminated and outlives the call; dir is a live fd.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) } < 0 {
        let e = io::Error::last_os_error();
        if errno(&e) != libc::EEXIST {
            return Err(entry_err(shown, e));
        }
    }
    Ok(())
}

pub(crate) fn mknod(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    fmt: u32,
    major: u32,
    minor: u32,
) -> io::Result<()> {
    let c = fsutil::component(name)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `c` is NUL-terminated and outlives the call; dir is a live fd.
    if unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), fmt | 0o600, dev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: fd is a live descriptor.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_xattr_fd(fd: BorrowedFd<'_>, name: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; value valid for its length; fd is live.
    if unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Owner, mode and xattrs of a file or directory we hold an fd to (in that order: chown
/// clears set-id bits and file capabilities).
fn apply_fd_meta(fd: BorrowedFd<'_>, m: &Meta, shown: &str) -> Result<(), LayerError> {
    // SAFETY: fd is a live descriptor.
    if unsafe { libc::fchown(fd.as_raw_fd(), m.uid, m.gid) } < 0 {
        return Err(entry_err(shown, io::Error::last_os_error()));
    }
    fchmod(fd, m.mode).map_err(|e| entry_err(shown, e))?;
    for (k, v) in &m.xattrs {
        if let Err(e) = set_xattr_fd(fd, k, v) {
            xattr_failed(shown, k, e)?;
        }
    }
    Ok(())
}

fn xattr_failed(shown: &str, k: &std::ffi::CStr, e: io::Error) -> Result<(), LayerError> {
    if matches!(errno(&e), libc::ENOTSUP | libc::EPERM) {
        tracing::warn!(entry = %shown, xattr = ?k, error = %e, "xattr not supported here; skipped");
        Ok(())
    } else {
        Err(entry_err(shown, e))
    }
}

/// Owner, mode (not for symlinks), xattrs and mtime of a symlink or device node, by name.
fn apply_at_meta(
    dir: BorrowedFd<'_>,
    leaf: &OsStr,
    m: &Meta,
    chmod: bool,
    shown: &str,
) -> Result<(), LayerError> {
    let c = fsutil::component(leaf).map_err(|e| entry_err(shown, e))?;
    // SAFETY: `c` is NUL-terminated and outlives the call; dir is live.
    if unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            c.as_ptr(),
            m.uid,
            m.gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } < 0
    {
        return Err(entry_err(shown, io::Error::last_os_error()));
    }
    if chmod {
        // The node was just created by us in a directory we hold; it is not a symlink.
        // SAFETY: as above.
        if unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), m.mode, 0) } < 0 {
            return Err(entry_err(shown, io::Error::last_os_error()));
        }
    }
    for (k, v) in &m.xattrs {
        if let Err(e) = fsutil::lsetxattr_at(dir, leaf, k, v) {
            xattr_failed(shown, k, e)?;
        }
    }
    set_times(dir, Some(&c), m.mtime).map_err(|e| entry_err(shown, e))
}

/// Sets atime and mtime to `mtime`; on `name` in `dir` (not following it) or on `dir`.
pub(crate) fn set_times(fd: BorrowedFd<'_>, name: Option<&CString>, mtime: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: `times` is a valid array of two timespecs; the name, when given, is
    // NUL-terminated and outlives the call; fd is live.
    let r = unsafe {
        match name {
            Some(n) => libc::utimensat(
                fd.as_raw_fd(),
                n.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            ),
            None => libc::futimens(fd.as_raw_fd(), times.as_ptr()),
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Hardlinks the inode behind the `O_PATH` fd `src` as `name` in `dir`.
fn link_fd(src: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = fsutil::component(name)?;
    // SAFETY: the empty string and `c` are NUL-terminated; both fds are live.
    let r = unsafe {
        libc::linkat(
            src.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if errno(&e) != libc::ENOENT && errno(&e) != libc::EPERM {
        return Err(e);
    }
    // Without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH is refused; the fd's procfs link works.
    let p = CString::new(format!("/proc/self/fd/{}", src.as_raw_fd())).map_err(|_| e)?;
    // SAFETY: both strings are NUL-terminated; dir is live.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            p.as_ptr(),
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
