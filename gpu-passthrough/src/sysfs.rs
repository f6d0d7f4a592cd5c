//! Small readers for sysfs/procfs-style trees, rooted at a caller-given path so tests can
//! build fake trees.

use std::path::{Path, PathBuf};

use crate::error::IoError;

/// Errors reading a sysfs-style tree.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// A file or directory could not be read.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A file did not hold what it should.
    #[error("parse {what} in {}: {value:?}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was expected ("major:minor", "hex id", …).
        what: &'static str,
        /// What it held.
        value: String,
    },
}

/// `root` joined with an absolute path (`under("/tmp/x", "/dev/kfd")` is `/tmp/x/dev/kfd`).
pub fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Read a file and trim surrounding whitespace.
pub(crate) fn read_trimmed(path: &Path) -> Result<String, SysfsError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| IoError::new("read", path, e).into())
}

/// Like [`read_trimmed`], but a missing file is `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, SysfsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new("read", path, e).into()),
    }
}

/// Entry names in a directory, sorted; a missing directory is empty.
pub(crate) fn list_dir(path: &Path) -> Result<Vec<String>, SysfsError> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new("read directory", path, e).into()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IoError::new("read directory", path, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    Ok(names)
}

/// Order names so that `uverbs2` sorts before `uverbs10`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head.to_owned(), tail.parse::<u64>().ok())
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

/// Parse a sysfs `dev` file (`major:minor`).
pub(crate) fn read_dev_numbers(path: &Path) -> Result<(i64, i64), SysfsError> {
    let value = read_trimmed(path)?;
    parse_dev_numbers(&value).ok_or(SysfsError::Parse {
        path: path.to_path_buf(),
        what: "major:minor",
        value,
    })
}

pub(crate) fn parse_dev_numbers(value: &str) -> Option<(i64, i64)> {
    let (maj, min) = value.split_once(':')?;
    Some((maj.trim().parse().ok()?, min.trim().parse().ok()?))
}

/// Parse a sysfs hex id file (`0x10de`).
pub(crate) fn read_hex_id(path: &Path) -> Result<u32, SysfsError> {
    let value = read_trimmed(path)?;
    let digits = value.trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(digits, 16).map_err(|_| SysfsError::Parse {
        path: path.to_path_buf(),
        what: "hex id",
        value: value.clone(),
    })
}

/// Like [`read_hex_id`], but a missing file is `None`.
pub(crate) fn read_hex_id_optional(path: &Path) -> Result<Option<u32>, SysfsError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    read_hex_id(path).map(Some)
}

/// The last component of a symlink's target (e.g. the PCI address a `device` link names).
pub(crate) fn link_basename(path: &Path) -> Result<Option<String>, SysfsError> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target
            .file_name()
            .and_then(|n| n.to_str())
            .map(ToOwned::to_owned)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new("read link", path, e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["uverbs10", "uverbs2", "issm0", "uverbs1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["issm0", "uverbs1", "uverbs2", "uverbs10"]);
    }

    #[test]
    fn dev_numbers() {
        assert_eq!(parse_dev_numbers("231:192\n".trim()), Some((231, 192)));
        assert_eq!(parse_dev_numbers("x:1"), None);
        assert_eq!(parse_dev_numbers("231"), None);
    }

    #[test]
    fn under_joins_absolute() {
        assert_eq!(
            under(Path::new("/r"), "/dev/kfd"),
            PathBuf::from("/r/dev/kfd")
        );
        assert_eq!(under(Path::new("/"), "/dev/kfd"), PathBuf::from("/dev/kfd"));
    }
}

/// A character device found in sysfs: its `/dev` path and, when sysfs has a `dev` file,
/// its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharDev {
    /// Path under `/dev`, e.g. `/dev/infiniband/uverbs0`.
    pub path: String,
    /// `(major, minor)` from sysfs, when known.
    pub numbers: Option<(i64, i64)>,
}

impl CharDev {
    /// A device at `path` whose numbers are in the sysfs `dev` file at `dev_file` (if it
    /// exists).
    pub(crate) fn from_sysfs(path: String, dev_file: &Path) -> Result<Self, SysfsError> {
        let numbers = if std::fs::symlink_metadata(dev_file).is_ok() {
            Some(read_dev_numbers(dev_file)?)
        } else {
            None
        };
        Ok(Self { path, numbers })
    }

    /// As a CDI device node (with `hostPath` under `dev_root` when it is not `/`).
    pub fn to_node(&self, dev_root: &Path) -> crate::cdi::DeviceNode {
        crate::fsutil::char_node(dev_root, &self.path, self.numbers)
    }
}
