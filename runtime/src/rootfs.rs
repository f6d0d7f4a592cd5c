//! Host-side preparation of the container's root filesystem, for the parts of runc's
//! behaviour that libcontainer lacks: creating a missing working directory, and
//! `tmpcopyup` tmpfs mounts (podman's `--read-only` uses them for /run, /tmp, /var/tmp).
//!
//! Everything inside the rootfs is resolved with `pathrs` (openat2 `RESOLVE_IN_ROOT`),
//! so a symlink planted in an image can never make us write outside it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use libcontainer::oci_spec::runtime::{Mount, MountBuilder, Spec};
use nix::mount::{MntFlags, MsFlags};

use crate::error::{Result, RuntimeError};

fn under_mount(spec: &Spec, p: &Path) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() != Path::new("/") && p.starts_with(m.destination()))
}

/// Creates `process.cwd` inside the rootfs (mode 0755, owned by root) when it is
/// missing and not provided by a mount, as runc does for an image WORKDIR that does not
/// exist yet.
pub fn ensure_cwd(spec: &Spec, rootfs: &Path) -> Result<()> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd()) else {
        return Ok(());
    };
    if cwd == Path::new("/") || rootfs.join(cwd.strip_prefix("/").unwrap_or(cwd)).is_dir() {
        return Ok(());
    }
    if under_mount(spec, cwd) {
        return Ok(());
    }
    let root = pathrs::Root::open(rootfs).map_err(|e| RuntimeError::ConfigInvalid {
        field: "root.path".into(),
        msg: format!("open rootfs {}: {e}", rootfs.display()),
    })?;
    root.mkdir_all(cwd, &fs::Permissions::from_mode(0o755))
        .map_err(|e| RuntimeError::ConfigInvalid {
            field: "process.cwd".into(),
            msg: format!("create {} in the rootfs: {e}", cwd.display()),
        })?;
    Ok(())
}

/// Creates the profile's workspace (`run.warren.workspace`) in the rootfs when the image
/// lacks it: under a read-only root it is bound onto itself, and must exist.
pub fn ensure_workspace(spec: &Spec, rootfs: &Path) -> Result<()> {
    let Some(ws) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(warren_sandbox::spec::WORKSPACE_ANNOTATION))
        .map(Path::new)
    else {
        return Ok(());
    };
    if !ws.is_absolute() || rootfs.join(ws.strip_prefix("/").unwrap_or(ws)).is_dir() {
        return Ok(());
    }
    let root = pathrs::Root::open(rootfs).map_err(|e| RuntimeError::ConfigInvalid {
        field: "root.path".into(),
        msg: format!("open rootfs {}: {e}", rootfs.display()),
    })?;
    root.mkdir_all(ws, &fs::Permissions::from_mode(0o755))
        .map_err(|e| RuntimeError::ConfigInvalid {
            field: format!(
                "annotations[{}]",
                warren_sandbox::spec::WORKSPACE_ANNOTATION
            ),
            msg: format!("create the workspace {} in the rootfs: {e}", ws.display()),
        })?;
    Ok(())
}

/// tmpfs mounts staged on the host for `tmpcopyup`; unmounted once the container's mount
/// namespace holds them (or on failure).
#[derive(Debug, Default)]
pub struct CopyUps {
    staged: Vec<PathBuf>,
}

impl CopyUps {
    /// Detaches the staged mounts from the host mount namespace and removes their
    /// directories. The container keeps its own references.
    pub fn release(&mut self) {
        for p in self.staged.drain(..) {
            let _ = nix::mount::umount2(&p, MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(&p);
        }
    }
}

impl Drop for CopyUps {
    fn drop(&mut self) {
        self.release();
    }
}

const DATA_OPTS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "huge",
    "mpol",
];

/// Replaces each `tmpfs` mount with option `tmpcopyup` by a bind mount of a fresh tmpfs
/// (with the same size/mode options) into which the image's directory was copied.
pub fn stage_copyups(spec: &mut Spec, rootfs: &Path, state_dir: &Path) -> Result<CopyUps> {
    let mut out = CopyUps::default();
    let Some(mounts) = spec.mounts().clone() else {
        return Ok(out);
    };
    if !mounts
        .iter()
        .any(|m| m.options().iter().flatten().any(|o| o == "tmpcopyup"))
    {
        return Ok(out);
    }
    let root = pathrs::Root::open(rootfs).map_err(|e| RuntimeError::ConfigInvalid {
        field: "root.path".into(),
        msg: format!("open rootfs {}: {e}", rootfs.display()),
    })?;
    let mut new_mounts = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.into_iter().enumerate() {
        let opts: Vec<String> = m.options().clone().unwrap_or_default();
        if !opts.iter().any(|o| o == "tmpcopyup") || m.typ().as_deref() != Some("tmpfs") {
            let mut m = m;
            if opts.iter().any(|o| o == "tmpcopyup") {
                m.set_options(Some(
                    opts.into_iter().filter(|o| o != "tmpcopyup").collect(),
                ));
            }
            new_mounts.push(m);
            continue;
        }
        let staged = state_dir.join(format!("copyup-{i}"));
        fs::create_dir(&staged).map_err(|e| RuntimeError::io("mkdir", &staged, e))?;
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for o in &opts {
            match o.as_str() {
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                o if DATA_OPTS.iter().any(|d| o.starts_with(&format!("{d}="))) => {
                    data.push(o.to_owned())
                }
                _ => {}
            }
        }
        let data = data.join(",");
        nix::mount::mount(
            Some("tmpfs"),
            &staged,
            Some("tmpfs"),
            flags,
            if data.is_empty() {
                None
            } else {
                Some(data.as_str())
            },
        )
        .map_err(|e| {
            let _ = fs::remove_dir(&staged);
            RuntimeError::sys("mount tmpfs for tmpcopyup", e)
        })?;
        out.staged.push(staged.clone());
        let _ = nix::mount::mount(
            None::<&str>,
            &staged,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        );
        if let Ok(src) = root.resolve(m.destination()) {
            let src_path = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&src))
            ));
            if src_path.is_dir() {
                copy_tree(&src_path, &staged)?;
            }
        }
        let mut bind_opts = vec!["rbind".to_owned(), "rprivate".to_owned()];
        bind_opts.extend(
            opts.iter()
                .filter(|o| matches!(o.as_str(), "nosuid" | "nodev" | "noexec" | "ro" | "rw"))
                .cloned(),
        );
        let bind: Mount = MountBuilder::default()
            .destination(m.destination().clone())
            .typ("bind")
            .source(staged)
            .options(bind_opts)
            .build()
            .map_err(|e| RuntimeError::ConfigInvalid {
                field: format!("mounts[{i}]"),
                msg: e.to_string(),
            })?;
        new_mounts.push(bind);
    }
    spec.set_mounts(Some(new_mounts));
    Ok(out)
}

/// Copies a directory tree keeping modes, owners and symlinks.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let rd = fs::read_dir(src).map_err(|e| RuntimeError::io("read directory", src, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| RuntimeError::io("read directory", src, e))?;
        let name = ent.file_name();
        if Path::new(&name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            continue;
        }
        let from = ent.path();
        let to = dst.join(&name);
        let md = fs::symlink_metadata(&from).map_err(|e| RuntimeError::io("stat", &from, e))?;
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(|e| RuntimeError::io("mkdir", &to, e))?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&from).map_err(|e| RuntimeError::io("readlink", &from, e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| RuntimeError::io("symlink", &to, e))?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(|e| RuntimeError::io("copy", &from, e))?;
        } else {
            // Device nodes, fifos and sockets are not copied up (runc skips them too).
            continue;
        }
        let _ = std::os::unix::fs::lchown(&to, Some(md.uid()), Some(md.gid()));
        if !ft.is_symlink() {
            let _ = fs::set_permissions(&to, fs::Permissions::from_mode(md.mode() & 0o7777));
        }
    }
    Ok(())
}
