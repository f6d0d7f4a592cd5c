//! A reader for glibc's `/etc/ld.so.cache` (the "glibc-ld.so.cache1.1" format, optionally
//! preceded by the old "ld.so-1.7.0" table), so driver libraries can be found inside any
//! driver root without running `ldconfig -p`.

use std::path::{Path, PathBuf};

use crate::error::IoError;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;

const FLAG_TYPE_MASK: i32 = 0x00ff;
const FLAG_ELF_LIBC6: i32 = 0x0003;
const FLAG_ARCH_MASK: i32 = 0xff00;
/// Architecture flags of 64-bit ABIs (sparc64, x86-64, s390x, ppc64, mips64 n64, aarch64,
/// mips64 n64 nan2008, riscv64 soft/double, loongarch64 soft/double).
const ARCH_64: [i32; 11] = [
    0x0100, 0x0300, 0x0400, 0x0500, 0x0700, 0x0a00, 0x0e00, 0x0f00, 0x1000, 0x1100, 0x1200,
];

/// Why a cache file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is not in a format we know, or is truncated.
    #[error("parse ld.so.cache {}: {reason}", path.display())]
    Format {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One library in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdCacheEntry {
    /// The soname (cache key), e.g. `libcuda.so.1`.
    pub soname: String,
    /// The path the loader would open, e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    pub path: PathBuf,
    /// Raw glibc flags (type and architecture).
    pub flags: i32,
    /// Hardware capability bits.
    pub hwcap: u64,
}

impl LdCacheEntry {
    /// Whether this is an ELF libc6 library (the only kind the loader uses today).
    pub fn is_elf_libc6(&self) -> bool {
        self.flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6
    }

    /// Whether the library is for a 64-bit ABI (otherwise 32-bit, e.g. i386).
    pub fn is_64bit(&self) -> bool {
        ARCH_64.contains(&(self.flags & FLAG_ARCH_MASK))
    }
}

/// A parsed cache: its entries in file order (the loader's preference order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    /// Every entry.
    pub entries: Vec<LdCacheEntry>,
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    let lo = u64::from(u32_at(data, off)?);
    let hi = u64::from(u32_at(data, off.checked_add(4)?)?);
    Some(if cfg!(target_endian = "little") {
        lo | (hi << 32)
    } else {
        (lo << 32) | hi
    })
}

fn cstr_at(data: &[u8], off: usize) -> Option<String> {
    let rest = data.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&rest[..end])
        .ok()
        .map(ToOwned::to_owned)
}

impl LdCache {
    /// Read and parse the cache at `path`.
    pub fn load(path: &Path) -> Result<Self, LdCacheError> {
        let data = std::fs::read(path).map_err(|e| IoError::new("read", path, e))?;
        Self::parse(&data).map_err(|reason| LdCacheError::Format {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse cache bytes.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let mut start = 0usize;
        if data.starts_with(OLD_MAGIC) {
            let n =
                u32_at(data, OLD_MAGIC.len() + 1).ok_or("truncated old-format header")? as usize;
            let end = n
                .checked_mul(OLD_ENTRY)
                .and_then(|x| x.checked_add(OLD_HEADER))
                .ok_or("old-format entry count overflows")?;
            // The new table follows, aligned to 8 bytes.
            start = end.checked_add(7).ok_or("overflow")? & !7;
            if data.len() <= start {
                return Err("old-format cache without a glibc-ld.so.cache1.1 table".into());
            }
        }
        let new = data.get(start..).ok_or("truncated")?;
        if !new.starts_with(NEW_MAGIC) {
            return Err("missing glibc-ld.so.cache1.1 magic".into());
        }
        let nlibs = u32_at(new, 20).ok_or("truncated header")? as usize;
        let mut entries = Vec::with_capacity(nlibs.min(1 << 16));
        for i in 0..nlibs {
            let off = i
                .checked_mul(NEW_ENTRY)
                .and_then(|x| x.checked_add(NEW_HEADER))
                .ok_or("entry offset overflows")?;
            let flags = u32_at(new, off).ok_or("truncated entry table")? as i32;
            let key = u32_at(new, off + 4).ok_or("truncated entry table")? as usize;
            let value = u32_at(new, off + 8).ok_or("truncated entry table")? as usize;
            let hwcap = u64_at(new, off + 16).ok_or("truncated entry table")?;
            // String offsets are relative to the start of the new-format header.
            let soname = cstr_at(new, key).ok_or_else(|| format!("bad key offset in entry {i}"))?;
            let path =
                cstr_at(new, value).ok_or_else(|| format!("bad value offset in entry {i}"))?;
            entries.push(LdCacheEntry {
                soname,
                path: PathBuf::from(path),
                flags,
                hwcap,
            });
        }
        Ok(Self { entries })
    }

    /// The first entry for `soname` (64-bit preferred when `want_64bit`).
    pub fn lookup(&self, soname: &str, want_64bit: bool) -> Option<&LdCacheEntry> {
        self.entries
            .iter()
            .find(|e| e.soname == soname && e.is_elf_libc6() && e.is_64bit() == want_64bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a new-format cache by hand, as ldconfig lays it out.
    pub(crate) fn build(entries: &[(&str, &str, i32)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let table_end = NEW_HEADER + NEW_ENTRY * entries.len();
        let mut offs = Vec::new();
        for (k, v, _) in entries {
            let ko = table_end + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = table_end + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            offs.push((ko as u32, vo as u32));
        }
        let mut out = Vec::new();
        out.extend_from_slice(NEW_MAGIC);
        out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&[0u8; 16]);
        assert_eq!(out.len(), NEW_HEADER);
        for ((_, _, flags), (k, v)) in entries.iter().zip(offs) {
            out.extend_from_slice(&flags.to_ne_bytes());
            out.extend_from_slice(&k.to_ne_bytes());
            out.extend_from_slice(&v.to_ne_bytes());
            out.extend_from_slice(&0u32.to_ne_bytes());
            out.extend_from_slice(&0u64.to_ne_bytes());
        }
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn parses_handmade_cache() {
        let data = build(&[
            (
                "libcuda.so.1",
                "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
                0x0303,
            ),
            (
                "libcuda.so.1",
                "/usr/lib/i386-linux-gnu/libcuda.so.1",
                0x0003,
            ),
        ]);
        let cache = LdCache::parse(&data).unwrap();
        assert_eq!(cache.entries.len(), 2);
        assert!(cache.entries[0].is_64bit() && cache.entries[0].is_elf_libc6());
        assert!(!cache.entries[1].is_64bit());
        assert_eq!(
            cache.lookup("libcuda.so.1", false).unwrap().path,
            PathBuf::from("/usr/lib/i386-linux-gnu/libcuda.so.1")
        );
    }

    #[test]
    fn parses_old_plus_new_layout() {
        let new = build(&[("liba.so.1", "/lib/liba.so.1", 0x0303)]);
        let mut data = Vec::new();
        data.extend_from_slice(OLD_MAGIC);
        data.push(0);
        data.extend_from_slice(&1u32.to_ne_bytes());
        data.extend_from_slice(&[0u8; OLD_ENTRY]);
        while data.len() % 8 != 0 {
            data.push(0);
        }
        data.extend_from_slice(&new);
        let cache = LdCache::parse(&data).unwrap();
        assert_eq!(cache.entries[0].soname, "liba.so.1");
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(LdCache::parse(b"nonsense").is_err());
        let data = build(&[("liba.so.1", "/lib/liba.so.1", 0x0303)]);
        assert!(LdCache::parse(&data[..NEW_HEADER + 10]).is_err());
        let err = LdCache::load(Path::new("/nonexistent/ld.so.cache")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ld.so.cache"));
    }

    #[test]
    fn parses_host_cache_when_present() {
        let path = Path::new("/etc/ld.so.cache");
        if path.exists() {
            let cache = LdCache::load(path).unwrap();
            assert!(
                cache
                    .entries
                    .iter()
                    .any(|e| e.soname.starts_with("libc.so"))
            );
        }
    }
}
