//! The root filesystem of a sandbox without an image: a read-only view of the host's
//! programs and libraries and an allow-listed `/etc`. Used by `warren run` (the CLI
//! turns it into OCI mounts and adds `/tmp`) and by agent and pooled sandboxes.

use std::path::{Path, PathBuf};

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

/// One mount of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewMount {
    /// Read-only bind of a host path.
    Bind { src: PathBuf, dst: PathBuf },
    /// A fresh tmpfs.
    Tmpfs { dst: PathBuf, options: Vec<String> },
}

/// The view: symlinks to make in the empty rootfs directory, and mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    pub symlinks: Vec<(String, PathBuf)>,
    pub mounts: Vec<ViewMount>,
}

/// Builds the view of `host_root` (normally `/`); `/etc` entries named in `skip_etc`
/// are left out (the caller mounts its own, e.g. a generated `hosts`).
pub fn build(host_root: &Path, skip_etc: &[&str]) -> HostView {
    let mut v = HostView::default();
    for d in SYSTEM_DIRS {
        let p = host_root.join(d);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(&p) {
                    v.symlinks.push((d.to_string(), t));
                }
            }
            Ok(m) if m.is_dir() => v.mounts.push(ViewMount::Bind {
                src: p,
                dst: Path::new("/").join(d),
            }),
            _ => {}
        }
    }
    v.mounts.push(ViewMount::Tmpfs {
        dst: PathBuf::from("/etc"),
        options: ["nosuid", "nodev", "noexec", "mode=755", "size=1m"]
            .map(String::from)
            .to_vec(),
    });
    for e in ETC_ALLOW {
        if skip_etc.contains(e) {
            continue;
        }
        let p = host_root.join("etc").join(e);
        if p.exists() {
            v.mounts.push(ViewMount::Bind {
                src: p,
                dst: Path::new("/etc").join(e),
            });
        }
    }
    v
}

/// Makes the view's symlinks in `rootfs` (an empty directory of ours).
pub fn make_symlinks(view: &HostView, rootfs: &Path) -> std::io::Result<()> {
    for (name, target) in &view.symlinks {
        let link = rootfs.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(target, &link)?;
        }
    }
    Ok(())
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
    fn view_of_a_fake_root_skips_secrets_and_skipped_entries() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("usr/bin")).expect("mkdir");
        std::os::unix::fs::symlink("usr/bin", d.path().join("bin")).expect("symlink");
        std::fs::create_dir_all(d.path().join("etc")).expect("mkdir");
        for f in ["passwd", "shadow", "hosts"] {
            std::fs::write(d.path().join("etc").join(f), "x").expect("write");
        }
        let v = build(d.path(), &["hosts"]);
        let dsts: Vec<PathBuf> = v
            .mounts
            .iter()
            .map(|m| match m {
                ViewMount::Bind { dst, .. } | ViewMount::Tmpfs { dst, .. } => dst.clone(),
            })
            .collect();
        assert!(dsts.contains(&PathBuf::from("/usr")));
        assert!(dsts.contains(&PathBuf::from("/etc/passwd")));
        assert!(!dsts.contains(&PathBuf::from("/etc/shadow")));
        assert!(!dsts.contains(&PathBuf::from("/etc/hosts")));
        assert_eq!(
            v.symlinks,
            vec![("bin".to_string(), PathBuf::from("usr/bin"))]
        );
        let r = d.path().join("rootfs");
        std::fs::create_dir(&r).expect("mkdir");
        make_symlinks(&v, &r).expect("links");
        assert!(r.join("bin").symlink_metadata().is_ok());
    }
}
