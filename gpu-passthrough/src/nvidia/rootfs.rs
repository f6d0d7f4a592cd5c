//! The NVIDIA toolkit's createContainer hooks (`create-symlinks`, `update-ldcache`) done by
//! warren itself on the container rootfs, with no external hook binary.
//!
//! Every path is resolved inside the rootfs with `openat2(RESOLVE_IN_ROOT)` and acted on
//! through directory fds, so symlinks planted in the image cannot redirect writes to the
//! host.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};
use oci_spec::runtime::{Hook, Spec};

use super::Error;
use crate::error::IoError;

/// The ld.so.conf.d entry [`RootfsSetup::apply`] writes, inside the rootfs.
pub const LDCONFIG_FILE: &str = "/etc/ld.so.conf.d/00-warren-nvidia.conf";

/// A symlink to create inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    /// What the link points to (usually relative, e.g. `libcuda.so.1`).
    pub target: PathBuf,
    /// Absolute path of the link inside the container.
    pub link: PathBuf,
}

/// Work to do on a container rootfs after mounts and before pivot_root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsSetup {
    /// Symlinks to create (existing symlinks at those paths are replaced; other files are
    /// left alone).
    pub symlinks: Vec<Symlink>,
    /// Library folders to list in [`LDCONFIG_FILE`].
    pub ld_folders: Vec<PathBuf>,
}

fn io(op: &'static str, path: &Path, errno: Errno) -> Error {
    IoError::new(op, path, std::io::Error::from(errno)).into()
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open/openat/openat2 call in this
    // module, so it is a valid descriptor that nothing else owns or will close.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn relative(path: &Path) -> Result<PathBuf, Error> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::RootfsPath {
                    path: path.to_path_buf(),
                    reason: "must not contain '..'".into(),
                });
            }
        }
    }
    Ok(out)
}

/// Open (creating as needed, mode 0755) directory `rel` inside `root`. Symlinks are
/// resolved inside the root; a dangling one has its target created inside the root.
fn open_dir_in_root(root: &OwnedFd, rootfs: &Path, rel: &Path) -> Result<OwnedFd, Error> {
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let open = |p: &Path| -> Result<OwnedFd, Error> {
        let target = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        openat2(root.as_raw_fd(), target, how())
            .map(owned)
            .map_err(|e| io("open", &rootfs.join(p), e))
    };
    let mut pending: VecDeque<OsString> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut dir = open(&resolved)?;
    let mut hops = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            dir = open(&resolved)?;
            continue;
        }
        let candidate = resolved.join(&name);
        match openat2(root.as_raw_fd(), &candidate, how()) {
            Ok(fd) => {
                dir = owned(fd);
                resolved = candidate;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(io("open", &rootfs.join(&candidate), e)),
        }
        match readlinkat(Some(dir.as_raw_fd()), name.as_os_str()) {
            Ok(target) => {
                // A dangling symlink: continue along its target, inside the root.
                hops += 1;
                if hops > 40 {
                    return Err(io("open", &rootfs.join(&candidate), Errno::ELOOP));
                }
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    resolved = PathBuf::new();
                    dir = open(&resolved)?;
                }
                let mut parts: Vec<OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .collect();
                while let Some(p) = parts.pop() {
                    pending.push_front(p);
                }
            }
            Err(Errno::ENOENT | Errno::EINVAL) => {
                match mkdirat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io("create directory", &rootfs.join(&candidate), e)),
                }
                dir = open(&candidate)?;
                resolved = candidate;
            }
            Err(e) => return Err(io("read link", &rootfs.join(&candidate), e)),
        }
    }
    Ok(dir)
}

fn split(path: &Path) -> Result<(PathBuf, &OsStr), Error> {
    let name = path.file_name().ok_or_else(|| Error::RootfsPath {
        path: path.to_path_buf(),
        reason: "has no file name".into(),
    })?;
    let parent = relative(path.parent().unwrap_or(Path::new("/")))?;
    Ok((parent, name))
}

impl RootfsSetup {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.symlinks.is_empty() && self.ld_folders.is_empty()
    }

    /// Add `other`'s work to this setup (duplicates are dropped).
    pub fn merge(&mut self, other: RootfsSetup) {
        for link in other.symlinks {
            if !self.symlinks.contains(&link) {
                self.symlinks.push(link);
            }
        }
        for folder in other.ld_folders {
            if !self.ld_folders.contains(&folder) {
                self.ld_folders.push(folder);
            }
        }
    }

    /// Perform the setup on the rootfs at `rootfs` (a host path): create the symlinks and
    /// write [`LDCONFIG_FILE`] listing the library folders. Run it after the container's
    /// mounts are in place, like a createContainer hook.
    pub fn apply(&self, rootfs: &Path) -> Result<(), Error> {
        if self.is_empty() {
            return Ok(());
        }
        let root = owned(
            nix::fcntl::open(
                rootfs,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io("open", rootfs, e))?,
        );
        for link in &self.symlinks {
            self.create_symlink(&root, rootfs, link)?;
        }
        if !self.ld_folders.is_empty() {
            let (parent, name) = split(Path::new(LDCONFIG_FILE))?;
            let dir = open_dir_in_root(&root, rootfs, &parent)?;
            let host_path = rootfs.join(relative(Path::new(LDCONFIG_FILE))?);
            let fd = openat(
                Some(dir.as_raw_fd()),
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_TRUNC
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| io("create", &host_path, e))?;
            let mut file = File::from(owned(fd));
            let mut text = String::from("# written by warren: NVIDIA driver libraries\n");
            for f in &self.ld_folders {
                text.push_str(&f.to_string_lossy());
                text.push('\n');
            }
            file.write_all(text.as_bytes())
                .map_err(|e| IoError::new("write", &host_path, e))?;
        }
        Ok(())
    }

    fn create_symlink(&self, root: &OwnedFd, rootfs: &Path, link: &Symlink) -> Result<(), Error> {
        let (parent, name) = split(&link.link)?;
        let host_path = rootfs.join(relative(&link.link)?);
        let dir = open_dir_in_root(root, rootfs, &parent)?;
        match readlinkat(Some(dir.as_raw_fd()), name) {
            Ok(existing) if Path::new(&existing) == link.target => return Ok(()),
            Ok(_) => unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io("remove symlink", &host_path, e))?,
            Err(Errno::ENOENT) => {}
            Err(Errno::EINVAL) => {
                tracing::warn!(path = %link.link.display(), "not replacing a non-symlink in the container");
                return Ok(());
            }
            Err(e) => return Err(io("read link", &host_path, e)),
        }
        symlinkat(&link.target, Some(dir.as_raw_fd()), name)
            .map_err(|e| io("create symlink", &host_path, e))
    }

    /// Recognise the toolkit's hooks (`nvidia-cdi-hook create-symlinks|update-ldcache`,
    /// or `nvidia-ctk hook …`) and merge their work into this setup. Returns whether
    /// `hook` was recognised.
    pub fn absorb_hook(&mut self, hook: &Hook) -> bool {
        let program = hook
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let args = hook.args().clone().unwrap_or_default();
        let mut rest = args.iter().skip(1).map(String::as_str);
        let sub = match program.as_str() {
            "nvidia-cdi-hook" => rest.next(),
            "nvidia-ctk" => match rest.next() {
                Some("hook") => rest.next(),
                _ => None,
            },
            _ => None,
        };
        let flag_values = |flag: &str| -> Vec<String> {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < args.len() {
                let a = args[i];
                if a == flag || a == format!("-{flag}") {
                    if let Some(v) = args.get(i + 1) {
                        out.push((*v).to_owned());
                    }
                    i += 2;
                    continue;
                }
                for prefix in [format!("{flag}="), format!("-{flag}=")] {
                    if let Some(v) = a.strip_prefix(&prefix) {
                        out.push(v.to_owned());
                    }
                }
                i += 1;
            }
            out
        };
        match sub {
            Some("create-symlinks") => {
                for value in flag_values("--link") {
                    if let Some((target, link)) = value.split_once("::") {
                        self.symlinks.push(Symlink {
                            target: PathBuf::from(target),
                            link: PathBuf::from(link),
                        });
                    }
                }
                true
            }
            Some("update-ldcache") => {
                for folder in flag_values("--folder") {
                    let folder = PathBuf::from(folder);
                    if !self.ld_folders.contains(&folder) {
                        self.ld_folders.push(folder);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Remove the toolkit's recognised createContainer hooks from `spec` and return the
    /// equivalent setup, so a spec generated by `nvidia-ctk` runs without
    /// `nvidia-cdi-hook` installed. Unrecognised hooks stay.
    pub fn take_from_spec(spec: &mut Spec) -> Self {
        let mut setup = Self::default();
        if let Some(hooks) = spec.hooks_mut() {
            if let Some(list) = hooks.create_container_mut() {
                list.retain(|h| !setup.absorb_hook(h));
                if list.is_empty() {
                    *hooks.create_container_mut() = None;
                }
            }
        }
        setup
    }
}

/// Refresh the container's ld cache with `ldconfig -r <rootfs>` using the given binary
/// (ldconfig chroots into the rootfs itself). Optional: the driver libraries are found
/// without it when they live in the loader's default directories.
pub fn run_ldconfig(ldconfig: &Path, rootfs: &Path) -> Result<(), Error> {
    let status = std::process::Command::new(ldconfig)
        .arg("-r")
        .arg(rootfs)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| IoError::new("run", ldconfig, e))?;
    if !status.success() {
        return Err(Error::Ldconfig {
            ldconfig: ldconfig.to_path_buf(),
            status,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci_hook(path: &str, args: &[&str]) -> Hook {
        let mut h = Hook::default();
        h.set_path(PathBuf::from(path));
        h.set_args(Some(args.iter().map(|s| (*s).to_owned()).collect()));
        h
    }

    #[test]
    fn absorbs_toolkit_hooks_only() {
        let mut setup = RootfsSetup::default();
        assert!(setup.absorb_hook(&oci_hook(
            "/usr/bin/nvidia-cdi-hook",
            &[
                "nvidia-cdi-hook",
                "create-symlinks",
                "--link",
                "libcuda.so.1::/usr/lib64/libcuda.so"
            ],
        )));
        assert!(setup.absorb_hook(&oci_hook(
            "/usr/bin/nvidia-ctk",
            &[
                "nvidia-ctk",
                "hook",
                "update-ldcache",
                "--folder",
                "/usr/lib64",
                "--folder=/usr/lib"
            ],
        )));
        assert!(!setup.absorb_hook(&oci_hook(
            "/usr/bin/nvidia-cdi-hook",
            &[
                "nvidia-cdi-hook",
                "chmod",
                "--mode",
                "755",
                "--path",
                "/dev/dri"
            ],
        )));
        assert!(!setup.absorb_hook(&oci_hook("/bin/true", &["true", "create-symlinks"])));
        assert_eq!(
            setup.symlinks,
            vec![Symlink {
                target: "libcuda.so.1".into(),
                link: "/usr/lib64/libcuda.so".into()
            }]
        );
        assert_eq!(
            setup.ld_folders,
            vec![PathBuf::from("/usr/lib64"), PathBuf::from("/usr/lib")]
        );
    }

    #[test]
    fn rejects_dotdot_paths() {
        assert!(relative(Path::new("/usr/../etc")).is_err());
        assert_eq!(
            relative(Path::new("/usr/lib")).unwrap(),
            PathBuf::from("usr/lib")
        );
    }
}
