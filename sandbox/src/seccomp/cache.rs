//! Compiled filters cached by content hash, so that a container start only loads a filter.
//!
//! The key is the SHA-256 of a canonical serialization of the input (the OCI object or the
//! profile's seccomp policy, as typed values re-serialized to JSON), the target architecture
//! and the compiler version. A poisoned cache would mean no seccomp, so:
//! - the directory must be owned by root and not writable by group or others; it is opened
//!   once (no symlink) and every file is reached through that descriptor (`openat`);
//! - an entry must be a regular file (no symlink) owned by root and not writable by group
//!   or others, carry the right magic, version, key and architecture, and its SHA-256
//!   (over header and program) must match; the program must also pass the structural
//!   checks. Anything else is refused ([`CacheError::Poisoned`]);
//! - entries are written to a temporary file, synced, and renamed into place.
//!
//! Entry layout (little endian): `"WRNBPF\0" 1` (8 bytes: magic and format version 1) ·
//! key (32) · audit arch (4) · install flags (4) · instruction count (4) · warnings length
//! (4) · SHA-256 of everything else (32) · program (8 per instruction: code u16, jt u8,
//! jf u8, k u32) · warnings (UTF-8, one per line).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::sock_filter;
use sha2::{Digest, Sha256};

use super::{CompiledFilter, FilterSource, InstallFlags, SeccompError};
use crate::filter::check_program;
use crate::profile::SeccompPolicy;
use crate::syscalls::Arch;

const MAGIC: &[u8; 8] = b"WRNBPF\x00\x01";
const HEADER_LEN: usize = 8 + 32 + 4 + 4 + 4 + 4 + 32;
const MAX_WARNINGS_LEN: usize = 64 * 1024;
/// Bumped whenever the compiler's output for the same input changes.
const COMPILER_VERSION: &str = concat!("warren-seccomp/1/", env!("CARGO_PKG_VERSION"));

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// An I/O error on the cache directory or an entry.
    #[error("access seccomp cache {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The directory is not safe to trust.
    #[error("use seccomp cache directory {path}: {reason}")]
    Insecure {
        /// The directory.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// An entry was refused.
    #[error("use seccomp cache entry {path}: {reason}")]
    Poisoned {
        /// The entry.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// The input could not be serialized for hashing.
    #[error("hash a seccomp filter's input: {0}")]
    Key(String),
}

/// The content hash an entry is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    fn hash(kind: &str, arch: Arch, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        for part in [
            COMPILER_VERSION.as_bytes(),
            kind.as_bytes(),
            arch.name().as_bytes(),
        ] {
            h.update(part);
            h.update([0u8]);
        }
        h.update(body);
        CacheKey(h.finalize().into())
    }

    /// The key of an OCI seccomp object compiled for `arch`.
    pub fn for_oci(seccomp: &LinuxSeccomp, arch: Arch) -> Result<Self, CacheError> {
        let body = serde_json::to_vec(seccomp).map_err(|e| CacheError::Key(e.to_string()))?;
        Ok(Self::hash("oci", arch, &body))
    }

    /// The key of a profile's seccomp policy compiled for `arch`.
    pub fn for_policy(policy: &SeccompPolicy, arch: Arch) -> Result<Self, CacheError> {
        let body = serde_json::to_vec(policy).map_err(|e| CacheError::Key(e.to_string()))?;
        Ok(Self::hash("profile", arch, &body))
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// A cache directory, opened and checked.
#[derive(Debug)]
pub struct FilterCache {
    path: PathBuf,
    dir: File,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Refuses metadata not owned by root or writable by group or others.
fn check_owner(meta: &std::fs::Metadata) -> Result<(), String> {
    if meta.uid() != 0 {
        return Err(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:o} is writable by group or others",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

impl FilterCache {
    /// Opens (creating it with mode 0700 if missing) the cache directory `path`.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        match std::fs::create_dir(path) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err(path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR)
                {
                    CacheError::Insecure {
                        path: path.to_owned(),
                        reason: "not a directory (or a symlink to one)".to_owned(),
                    }
                } else {
                    io_err(path)(e)
                }
            })?;
        let meta = dir.metadata().map_err(io_err(path))?;
        check_owner(&meta).map_err(|reason| CacheError::Insecure {
            path: path.to_owned(),
            reason,
        })?;
        Ok(FilterCache {
            path: path.to_owned(),
            dir,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of the entry for `key`.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.path.join(format!("{}.bpf", key.hex()))
    }

    fn openat(&self, name: &str, flags: i32, mode: libc::mode_t) -> std::io::Result<File> {
        let c = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a NUL-terminated name alive for the call; the directory fd is open
        // (owned by `self.dir`); the returned fd, if any, is new and owned by nobody else.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                libc::c_uint::from(mode),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat and is owned by this File from now on.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// The entry for `key` and `arch`: `Ok(None)` when there is none, an error when one
    /// exists but is refused.
    pub fn lookup(&self, key: &CacheKey, arch: Arch) -> Result<Option<CompiledFilter>, CacheError> {
        let name = format!("{}.bpf", key.hex());
        let path = self.path.join(&name);
        let poisoned = |reason: String| CacheError::Poisoned {
            path: path.clone(),
            reason,
        };
        let mut file = match self.openat(&name, libc::O_RDONLY, 0) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(poisoned("a symlink".to_owned()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let meta = file.metadata().map_err(io_err(&path))?;
        if !meta.file_type().is_file() {
            return Err(poisoned("not a regular file".to_owned()));
        }
        check_owner(&meta).map_err(&poisoned)?;
        let max = HEADER_LEN + 8 * crate::filter::codegen::BPF_MAXINSNS + MAX_WARNINGS_LEN;
        if meta.len() > max as u64 {
            return Err(poisoned(format!("{} bytes is too large", meta.len())));
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut data).map_err(io_err(&path))?;
        decode(&data, key, arch).map(Some).map_err(poisoned)
    }

    /// Stores `filter` under `key`, atomically.
    pub fn store(&self, key: &CacheKey, filter: &CompiledFilter) -> Result<(), CacheError> {
        let name = format!("{}.bpf", key.hex());
        let tmp = format!(
            ".{}.{}.{}.tmp",
            key.hex(),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp_path = self.path.join(&tmp);
        let bytes = encode(key, filter);
        let mut f = self
            .openat(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o644)
            .map_err(io_err(&tmp_path))?;
        let written = f.write_all(&bytes).and_then(|()| f.sync_all());
        drop(f);
        let renamed = written.and_then(|()| {
            let from = CString::new(tmp.as_str())
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let to = CString::new(name.as_str())
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let fd = self.dir.as_raw_fd();
            // SAFETY: both names are NUL-terminated and alive for the call; `fd` is the open
            // cache directory.
            let rc = unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            self.dir.sync_all()
        });
        if let Err(e) = renamed {
            if let Ok(c) = CString::new(tmp.as_str()) {
                // SAFETY: `c` is NUL-terminated; unlinking our own temporary file.
                unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) };
            }
            return Err(io_err(&tmp_path)(e));
        }
        Ok(())
    }

    /// Looks `key` up; on a miss (or a refused entry, reported in the warnings and
    /// replaced) compiles with `compile` and stores the result.
    pub fn get_or_insert(
        &self,
        key: &CacheKey,
        arch: Arch,
        compile: impl FnOnce() -> Result<CompiledFilter, SeccompError>,
    ) -> Result<CompiledFilter, SeccompError> {
        let mut notes = Vec::new();
        match self.lookup(key, arch) {
            Ok(Some(hit)) => return Ok(hit),
            Ok(None) => {}
            Err(e @ CacheError::Poisoned { .. }) => {
                notes.push(format!("refused and replaced: {e}"))
            }
            Err(e) => notes.push(format!("cache not read: {e}")),
        }
        let mut filter = compile()?;
        if let Err(e) = self.store(key, &filter) {
            notes.push(format!("cache not written: {e}"));
        }
        filter.warnings.extend(notes);
        Ok(filter)
    }
}

fn encode(key: &CacheKey, filter: &CompiledFilter) -> Vec<u8> {
    let warnings: String = filter
        .warnings
        .iter()
        .map(|w| w.replace('\n', " "))
        .collect::<Vec<_>>()
        .join("\n");
    let mut warnings = warnings.into_bytes();
    warnings.truncate(MAX_WARNINGS_LEN);
    let mut head = Vec::with_capacity(HEADER_LEN);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&key.0);
    head.extend_from_slice(&filter.arch.audit_arch().to_le_bytes());
    head.extend_from_slice(&filter.flags.bits().to_le_bytes());
    head.extend_from_slice(&(filter.program.len() as u32).to_le_bytes());
    head.extend_from_slice(&(warnings.len() as u32).to_le_bytes());
    let mut body = Vec::with_capacity(filter.program.len() * 8 + warnings.len());
    for i in &filter.program {
        body.extend_from_slice(&i.code.to_le_bytes());
        body.push(i.jt);
        body.push(i.jf);
        body.extend_from_slice(&i.k.to_le_bytes());
    }
    body.extend_from_slice(&warnings);
    let digest: [u8; 32] = Sha256::new()
        .chain_update(&head)
        .chain_update(&body)
        .finalize()
        .into();
    head.extend_from_slice(&digest);
    head.extend_from_slice(&body);
    head
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

fn decode(data: &[u8], key: &CacheKey, arch: Arch) -> Result<CompiledFilter, String> {
    if data.len() < HEADER_LEN {
        return Err(format!("{} bytes is shorter than the header", data.len()));
    }
    if &data[..8] != MAGIC {
        return Err("bad magic or format version".to_owned());
    }
    if data[8..40] != key.0 {
        return Err("stored under another key".to_owned());
    }
    if u32_at(data, 40) != arch.audit_arch() {
        return Err(format!("compiled for another architecture than {arch}"));
    }
    let flags = InstallFlags::from_bits(u32_at(data, 44));
    let n = u32_at(data, 48) as usize;
    let wlen = u32_at(data, 52) as usize;
    if data.len() != HEADER_LEN + n * 8 + wlen {
        return Err("length does not match the header".to_owned());
    }
    let stored: &[u8] = &data[56..88];
    let digest: [u8; 32] = Sha256::new()
        .chain_update(&data[..56])
        .chain_update(&data[HEADER_LEN..])
        .finalize()
        .into();
    if stored != digest {
        return Err("SHA-256 mismatch: the content was altered or corrupted".to_owned());
    }
    let program: Vec<sock_filter> = data[HEADER_LEN..HEADER_LEN + n * 8]
        .chunks_exact(8)
        .map(|c| sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    check_program(&program).map_err(|e| e.to_string())?;
    let warnings = std::str::from_utf8(&data[HEADER_LEN + n * 8..])
        .map_err(|_| "warnings are not UTF-8".to_owned())?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(CompiledFilter {
        arch,
        program,
        flags,
        warnings,
        source: FilterSource::Cache,
    })
}
