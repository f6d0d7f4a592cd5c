//! Deterministic layer packing from a directory tree (an overlayfs upper directory, a
//! debootstrap root, a staged download).
//!
//! The output depends only on the tree's content: entries sorted bytewise, mtimes
//! clamped to a constant, numeric owners with no user or group names, xattrs sorted,
//! gzip header without a timestamp. Overlay whiteouts (0:0 character devices and the
//! `trusted.overlay.opaque` xattr) become OCI whiteouts.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Compression, LayerError};
use crate::digest::{Digest, HashWriter};
use crate::error::{IoContext, IoError};
use crate::fsutil;

/// A path (relative to the packed root) left out of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclude {
    /// Leave out this path and everything below it.
    Tree(PathBuf),
    /// Keep the directories below this path but leave out every other entry (caches and
    /// logs: `var/cache/apt`, `var/lib/apt/lists`, `var/log`).
    Contents(PathBuf),
    /// Leave out every entry with this file name, anywhere (`__pycache__`).
    Name(OsString),
}

/// How to pack a tree.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// mtimes newer than this (seconds since the epoch) are set to it; older ones stay
    /// (files from packages keep their own, reproducible, times).
    pub clamp_mtime: i64,
    /// What to leave out.
    pub exclude: Vec<Exclude>,
    /// Blob compression.
    pub compression: Compression,
    /// Treat 0:0 character devices and opaque xattrs as overlay whiteouts.
    pub overlay_whiteouts: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            clamp_mtime: crate::SOURCE_DATE_EPOCH,
            exclude: Vec::new(),
            compression: Compression::Gzip,
            overlay_whiteouts: true,
        }
    }
}

/// A packed layer blob on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedLayer {
    /// Where the blob was written.
    pub path: PathBuf,
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The layer's media type.
    pub media_type: &'static str,
}

/// Packs the tree at `src` into the blob file `out`.
pub fn pack_dir(src: &Path, out: &Path, opts: &PackOptions) -> Result<PackedLayer, LayerError> {
    let file = File::create(out).at("create", out)?;
    let blob = HashWriter::new(BufWriter::with_capacity(1 << 20, file));
    let (blob, diff_id) = match opts.compression {
        Compression::None => {
            let tar = pack_into(src, HashWriter::new(blob), opts)?;
            let (blob, diff_id, _) = tar.finish();
            (blob, diff_id)
        }
        Compression::Gzip => {
            let gz = flate2::GzBuilder::new().write(blob, flate2::Compression::new(6));
            let tar = pack_into(src, HashWriter::new(gz), opts)?;
            let (gz, diff_id, _) = tar.finish();
            (gz.finish().at("compress", out)?, diff_id)
        }
        Compression::Zstd => {
            let z = zstd::stream::write::Encoder::new(blob, 3).at("compress", out)?;
            let tar = pack_into(src, HashWriter::new(z), opts)?;
            let (z, diff_id, _) = tar.finish();
            (z.finish().at("compress", out)?, diff_id)
        }
    };
    let (buf, digest, size) = blob.finish();
    let file = buf
        .into_inner()
        .map_err(|e| IoError::new("write", out, e.into_error()))?;
    file.sync_all().at("fsync", out)?;
    Ok(PackedLayer {
        path: out.to_path_buf(),
        digest,
        size,
        diff_id,
        media_type: opts.compression.oci_media_type(),
    })
}

fn pack_into<W: Write>(src: &Path, w: W, opts: &PackOptions) -> Result<W, LayerError> {
    let root = fsutil::open_dir(src)?;
    let mut p = Packer {
        b: tar::Builder::new(w),
        opts,
        links: HashMap::new(),
        src,
    };
    p.b.mode(tar::HeaderMode::Deterministic);
    p.dir(root.as_fd(), &mut PathBuf::new())?;
    p.b.into_inner()
        .map_err(|e| IoError::new("write layer for", src, e).into())
}

struct Packer<'a, W: Write> {
    b: tar::Builder<W>,
    opts: &'a PackOptions,
    /// (dev, ino) of multiply-linked files already written, to their first path.
    links: HashMap<(u64, u64), PathBuf>,
    src: &'a Path,
}

impl<W: Write> Packer<'_, W> {
    fn err(&self, rel: &Path, op: &'static str, e: io::Error) -> LayerError {
        IoError::new(op, self.src.join(rel), e).into()
    }

    fn excluded(&self, rel: &Path, is_dir: bool) -> bool {
        self.opts.exclude.iter().any(|x| match x {
            Exclude::Tree(p) => rel.starts_with(p),
            Exclude::Contents(p) => !is_dir && rel.starts_with(p) && rel != p,
            Exclude::Name(n) => rel.file_name() == Some(n.as_os_str()),
        })
    }

    fn dir(&mut self, dir: BorrowedFd<'_>, rel: &mut PathBuf) -> Result<(), LayerError> {
        let names = fsutil::list_dir(dir).map_err(|e| self.err(rel, "list", e))?;
        for name in names {
            rel.push(&name);
            let r = self.entry(dir, &name, rel);
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn header(&self, st: &libc::stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.min(self.opts.clamp_mtime).max(0) as u64);
        h.set_size(0);
        h
    }

    fn xattrs(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<(), LayerError> {
        let names =
            fsutil::llistxattr_at(dir, name).map_err(|e| self.err(rel, "list xattrs of", e))?;
        let mut exts: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names {
            let nb = n.as_bytes();
            if nb.starts_with(b"trusted.overlay.") || nb == b"security.selinux" {
                continue;
            }
            if let Some(v) = fsutil::lgetxattr_at(dir, name, &n)
                .map_err(|e| self.err(rel, "read xattr of", e))?
            {
                exts.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(nb)), v));
            }
        }
        if !exts.is_empty() {
            let it = exts.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
            self.b
                .append_pax_extensions(it)
                .map_err(|e| self.err(rel, "write pax header for", e))?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<(), LayerError> {
        let st = fsutil::lstatat(dir, name).map_err(|e| self.err(rel, "stat", e))?;
        let fmt = st.st_mode & libc::S_IFMT;
        if self.excluded(rel, fmt == libc::S_IFDIR) {
            return Ok(());
        }
        let empty: &[u8] = &[];
        match fmt {
            libc::S_IFDIR => {
                let fd = fsutil::openat(
                    dir,
                    name,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| self.err(rel, "open", e))?;
                self.xattrs(dir, name, rel)?;
                let mut h = self.header(&st, tar::EntryType::Directory);
                let mut p = rel.as_os_str().as_bytes().to_vec();
                p.push(b'/');
                self.b
                    .append_data(&mut h, OsStr::from_bytes(&p), empty)
                    .map_err(|e| self.err(rel, "write", e))?;
                if self.opts.overlay_whiteouts {
                    let opaque = fsutil::lgetxattr_at(dir, name, c"trusted.overlay.opaque")
                        .map_err(|e| self.err(rel, "read xattr of", e))?;
                    if opaque.as_deref() == Some(b"y") {
                        let mut h = self.header(&st, tar::EntryType::Regular);
                        h.set_mode(0o600);
                        let wh = rel.join(".wh..wh..opq");
                        self.b
                            .append_data(&mut h, &wh, empty)
                            .map_err(|e| self.err(rel, "write", e))?;
                    }
                }
                let mut r = rel.to_path_buf();
                self.dir(fd.as_fd(), &mut r)?;
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = self.header(&st, tar::EntryType::Link);
                        self.b
                            .append_link(&mut h, rel, &first)
                            .map_err(|e| self.err(rel, "write", e))?;
                        return Ok(());
                    }
                    self.links.insert(key, rel.to_path_buf());
                }
                let fd = fsutil::openat(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
                    .map_err(|e| self.err(rel, "open", e))?;
                self.xattrs(dir, name, rel)?;
                let mut h = self.header(&st, tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                let f = fsutil::fd_file(fd);
                // A file that changes size while we read it would corrupt the archive;
                // read exactly st_size bytes and fail if it is short.
                let mut r = io::Read::take(f, st.st_size as u64);
                self.b
                    .append_data(&mut h, rel, &mut r)
                    .map_err(|e| self.err(rel, "write", e))?;
                if r.limit() != 0 {
                    return Err(self.err(
                        rel,
                        "read",
                        io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while packing"),
                    ));
                }
            }
            libc::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&dir)), name)
                        .map_err(|e| self.err(rel, "readlink", e.into()))?;
                self.xattrs(dir, name, rel)?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                self.b
                    .append_link(&mut h, rel, &target)
                    .map_err(|e| self.err(rel, "write", e))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                let (maj, min) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                if fmt == libc::S_IFCHR && maj == 0 && min == 0 && self.opts.overlay_whiteouts {
                    let mut wh = OsString::from(".wh.");
                    wh.push(name);
                    let p = rel.with_file_name(wh);
                    let mut h = self.header(&st, tar::EntryType::Regular);
                    h.set_mode(0o600);
                    self.b
                        .append_data(&mut h, &p, empty)
                        .map_err(|e| self.err(rel, "write", e))?;
                    return Ok(());
                }
                let kind = match fmt {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                self.xattrs(dir, name, rel)?;
                let mut h = self.header(&st, kind);
                h.set_device_major(maj)
                    .map_err(|e| self.err(rel, "write", e))?;
                h.set_device_minor(min)
                    .map_err(|e| self.err(rel, "write", e))?;
                self.b
                    .append_data(&mut h, rel, empty)
                    .map_err(|e| self.err(rel, "write", e))?;
            }
            _ => {
                tracing::debug!(path = %rel.display(), "skipping socket while packing");
            }
        }
        Ok(())
    }
}
