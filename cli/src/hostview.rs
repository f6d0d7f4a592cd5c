//! The default root filesystem when no image is given: a read-only view of the host's
//! programs and libraries, a safe subset of /etc, a fresh /tmp and the workspace.
//!
//! This is what makes `warren run -- python3 x.py` work on a fresh machine with nothing
//! built: the sandbox sees the host's Python, but none of the host's files beyond system
//! directories, and can write only its workspace and /tmp.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Mount, MountBuilder};

/// Top-level system directories shown read-only (those that are real directories; the
/// merged-/usr symlinks such as /bin -> usr/bin are recreated as symlinks).
pub const SYSTEM_DIRS: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt",
];

/// Entries of /etc that programs need and that hold no secrets (no shadow, no ssh keys,
/// no credentials of package managers).
pub const ETC_ALLOW: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "protocols",
    "python3",
    "python3.11",
    "R",
    "resolv.conf",
    "rpc",
    "services",
    "ssl",
    "timezone",
    "xdg",
    "matplotlibrc",
];

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

fn tmpfs(dst: &str, opts: &[&str]) -> Option<Mount> {
    MountBuilder::default()
        .destination(PathBuf::from(dst))
        .typ("tmpfs")
        .source("tmpfs")
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .ok()
}

/// Builds the host view from the host root `host_root` (normally `/`).
pub fn build(host_root: &Path) -> HostView {
    let mut v = HostView::default();
    for d in SYSTEM_DIRS {
        let p = host_root.join(d);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(&p) {
                    v.symlinks.push((d.to_string(), t));
                }
            }
            Ok(m) if m.is_dir() => v.mounts.extend(bind_ro(&p, &Path::new("/").join(d))),
            _ => {}
        }
    }
    // /etc is a fresh tmpfs holding only the allowed entries.
    v.mounts.extend(tmpfs(
        "/etc",
        &["nosuid", "nodev", "noexec", "mode=755", "size=1m"],
    ));
    for e in ETC_ALLOW {
        let p = host_root.join("etc").join(e);
        if p.exists() {
            v.mounts.extend(bind_ro(&p, &Path::new("/etc").join(e)));
        }
    }
    v.mounts
        .extend(tmpfs("/tmp", &["nosuid", "nodev", "mode=1777", "size=50%"]));
    v.mounts.extend(tmpfs(
        "/var/tmp",
        &["nosuid", "nodev", "mode=1777", "size=10%"],
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_view_has_no_secrets() {
        for secret in ["shadow", "gshadow", "ssh", "sudoers", "machine-id"] {
            assert!(!ETC_ALLOW.contains(&secret), "{secret}");
        }
    }

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
