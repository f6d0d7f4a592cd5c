//! Helpers shared by the integration tests: real device nodes and files in temp trees.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

/// Create a real character device node (we run as root; the kernel does not care that
/// the numbers alias /dev/null or a GPU that is not there, as long as nobody opens it).
pub fn char_dev(path: &Path, major: u64, minor: u64, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {} (tests need root): {e}", path.display()));
    // mknod is subject to the umask; set the mode we asked for.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Write a file, creating its parents.
pub fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Create a symlink, creating the link's parents.
pub fn symlink(target: &str, link: &Path) {
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}
