//! The default root filesystem when no image is given: a read-only view of the host's
//! programs and libraries, a safe subset of /etc, a fresh /tmp and the workspace.
//!
//! This is what makes `warren run -- python3 x.py` work on a fresh machine with nothing
//! built: the sandbox sees the host's Python, but none of the host's files beyond system
//! directories, and can write only its workspace and /tmp.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Mount, MountBuilder};

use warren_sandbox::hostview::ViewMount;
pub use warren_sandbox::hostview::{ETC_ALLOW, SYSTEM_DIRS};

/// What the host view is made of.
#[derive(Debug, Clone, Default)]
pub struct HostView {
    /// Symlinks to create in the (empty) rootfs: name -> target.
    pub symlinks: Vec<(String, PathBuf)>,
    /// Read-only bind mounts and the fresh tmpfs mounts.
    pub mounts: Vec<Mount>,
}

fn bind_ro(src: &Path, dst: &Path) -> Option<Mount> {
    MountBuilder::default()
        .destination(dst.to_owned())
        .typ("bind")
        .source(src.to_owned())
        .options(vec![
            "rbind".into(),
            "ro".into(),
            "nosuid".into(),
            "nodev".into(),
            "rprivate".into(),
        ])
        .build()
        .ok()
}

fn tmpfs(dst: &Path, opts: &[String]) -> Option<Mount> {
    MountBuilder::default()
        .destination(dst.to_owned())
        .typ("tmpfs")
        .source("tmpfs")
        .options(opts.to_vec())
        .build()
        .ok()
}

/// Builds the host view from the host root `host_root` (normally `/`): the shared view
/// (`warren_sandbox::hostview`) as OCI mounts, plus a fresh `/tmp` and `/var/tmp`.
pub fn build(host_root: &Path) -> HostView {
    let shared = warren_sandbox::hostview::build(host_root, &[]);
    let mut mounts: Vec<Mount> = shared
        .mounts
        .iter()
        .filter_map(|m| match m {
            ViewMount::Bind { src, dst } => bind_ro(src, dst),
            ViewMount::Tmpfs { dst, options } => tmpfs(dst, options),
        })
        .collect();
    let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    mounts.extend(tmpfs(
        Path::new("/tmp"),
        &opts(&["nosuid", "nodev", "mode=1777", "size=50%"]),
    ));
    mounts.extend(tmpfs(
        Path::new("/var/tmp"),
        &opts(&["nosuid", "nodev", "mode=1777", "size=10%"]),
    ));
    HostView {
        symlinks: shared.symlinks,
        mounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_a_fake_root() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("usr/bin")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", d.path().join("bin")).expect("symlink");
        std::fs::create_dir_all(d.path().join("etc")).expect("mkdir");
        std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
        std::fs::write(d.path().join("etc/shadow"), "secret").expect("write");
        let v = build(d.path());
        assert!(
            v.symlinks
                .iter()
                .any(|(n, t)| n == "bin" && t == Path::new("usr/bin"))
        );
        let dests: Vec<_> = v.mounts.iter().map(|m| m.destination().clone()).collect();
        assert!(dests.contains(&PathBuf::from("/usr")));
        assert!(dests.contains(&PathBuf::from("/etc/passwd")));
        assert!(!dests.contains(&PathBuf::from("/etc/shadow")));
    }
}
