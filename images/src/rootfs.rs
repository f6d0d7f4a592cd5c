//! Container root filesystems: an overlay of an image's unpacked layers with a
//! per-container upper directory, under `<root>/containers/<id>/`.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{IoContext, IoError};
use crate::fsutil;
use crate::store::Store;

/// Errors setting up or tearing down a rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The container id is unusable as a directory name.
    #[error(
        "invalid container id {0:?}: want 1-128 of letters, digits, '_', '-', '.', not starting with '.'"
    )]
    BadId(String),
    /// A rootfs for this id already exists.
    #[error("a rootfs for container {0:?} already exists")]
    Exists(String),
    /// The image has no layers.
    #[error("image {0:?} has no layers")]
    NoLayers(String),
    /// The overlay mount options do not fit in a page.
    #[error("overlay mount options for {0} layers are {1} bytes, over the kernel's page limit")]
    OptionsTooLong(usize, usize),
    /// mount(2) or umount(2) failed.
    #[error("{op} {path}: {source}")]
    Mount {
        /// The operation.
        op: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The error.
        #[source]
        source: nix::Error,
    },
}

/// How to set up a rootfs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootfsOptions {
    /// A read-only rootfs with no upper directory. With one layer this is a read-only
    /// bind mount of the layer (overlayfs needs two lower layers without an upper).
    pub readonly: bool,
    /// The container's writable layer is thrown away when it exits (`warren run --rm`,
    /// pooled sandboxes, benchmarks): mount the overlay with `volatile` (Linux 5.10+),
    /// which skips every sync to the upper filesystem — above all the `syncfs` of the
    /// whole upper filesystem that unmounting an overlay otherwise does (0.4 ms against
    /// 0.1 ms measured on ext4 here). After a host crash such an upper layer is not
    /// reusable, which does not matter for a layer that is deleted anyway. Ignored when
    /// `readonly`; kernels without the option get a normal overlay.
    pub volatile: bool,
}

/// A mounted container rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// The container id.
    pub id: String,
    /// The mounted root filesystem to give the runtime (`root.path` in config.json).
    pub merged: PathBuf,
    /// The container's writable layer (None when read-only).
    pub upper: Option<PathBuf>,
    /// The container's directory.
    pub dir: PathBuf,
}

/// What we record per container (which layers it pins against gc).
#[derive(Debug, Serialize, Deserialize)]
struct RootfsRecord {
    version: u32,
    image: String,
    diff_ids: Vec<Digest>,
}

fn check_id(id: &str) -> Result<(), RootfsError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RootfsError::BadId(id.to_string()))
    }
}

/// Escapes a path for overlayfs's option parser (`,` `:` and `\` are special).
fn escape(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Builds overlay mount data: `lowerdir` top layer first.
pub(crate) fn overlay_options(
    lower_bottom_first: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    extra: &str,
) -> Result<String, RootfsError> {
    let lower: Vec<String> = lower_bottom_first.iter().rev().map(|p| escape(p)).collect();
    let mut o = format!("lowerdir={}", lower.join(":"));
    if let Some((u, w)) = upper_work {
        o.push_str(&format!(",upperdir={},workdir={}", escape(u), escape(w)));
    }
    if !extra.is_empty() {
        o.push(',');
        o.push_str(extra);
    }
    if o.len() >= 4095 {
        return Err(RootfsError::OptionsTooLong(
            lower_bottom_first.len(),
            o.len(),
        ));
    }
    Ok(o)
}

/// Mounts an overlay at `target`.
pub(crate) fn mount_overlay(target: &Path, options: &str) -> Result<(), RootfsError> {
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options),
    )
    .map_err(|source| RootfsError::Mount {
        op: "mount overlay on",
        path: target.to_path_buf(),
        source,
    })
}

/// Unmounts `target`; not mounted is not an error.
pub(crate) fn unmount(target: &Path) -> Result<(), RootfsError> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|source| RootfsError::Mount {
                op: "unmount",
                path: target.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(RootfsError::Mount {
            op: "unmount",
            path: target.to_path_buf(),
            source,
        }),
    }
}

impl Store {
    /// Sets up the root filesystem for container `id` from `image` and returns where it
    /// is mounted. The image's layers are unpacked first if needed.
    pub fn create_rootfs(
        &self,
        image: &str,
        id: &str,
        opts: RootfsOptions,
    ) -> crate::Result<Rootfs> {
        check_id(id)?;
        let _w = self.writer_lock()?;
        let img = self.image(image)?;
        if img.layers.is_empty() {
            return Err(RootfsError::NoLayers(image.to_string()).into());
        }
        let dir = self.containers_dir().join(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RootfsError::Exists(id.to_string()).into());
            }
            Err(e) => return Err(IoError::new("create directory", &dir, e).into()),
        }
        let r = self.setup_rootfs(&img, id, &dir, opts);
        if r.is_err() {
            let _ = unmount(&dir.join("merged"));
            let _ = fsutil::remove_tree(&dir);
        }
        r
    }

    fn setup_rootfs(
        &self,
        img: &crate::Image,
        id: &str,
        dir: &Path,
        opts: RootfsOptions,
    ) -> crate::Result<Rootfs> {
        // Record first: from here on gc keeps these layers even before they exist.
        let rec = RootfsRecord {
            version: 1,
            image: img.name.clone(),
            diff_ids: img.diff_ids.clone(),
        };
        let data =
            serde_json::to_vec_pretty(&rec).map_err(|e| crate::store::StoreError::BadJson {
                what: "rootfs.json".into(),
                message: e.to_string(),
            })?;
        // No fsync: the record only matters while the container exists (it pins the
        // layers against gc, which holds the same writer lock), and a host crash ends
        // the container and its overlay mount anyway.
        fsutil::write_replace(&dir.join("rootfs.json"), &data)?;
        let cache = self.layer_cache();
        let mut lowers = Vec::new();
        for (blob, diff) in img.layers.iter().zip(&img.diff_ids) {
            lowers.push(cache.ensure(diff, &self.blob_path(blob))?.0.path);
        }
        let merged = dir.join("merged");
        std::fs::create_dir(&merged).at("create directory", &merged)?;
        let upper = if opts.readonly {
            if lowers.len() == 1 {
                let src = &lowers[0];
                mount(
                    Some(src.as_path()),
                    &merged,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|source| RootfsError::Mount {
                    op: "bind mount on",
                    path: merged.clone(),
                    source,
                })?;
                mount(
                    None::<&str>,
                    &merged,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .map_err(|source| RootfsError::Mount {
                    op: "remount read-only",
                    path: merged.clone(),
                    source,
                })?;
            } else {
                mount_overlay(&merged, &overlay_options(&lowers, None, "")?)?;
            }
            None
        } else {
            let upper = dir.join("upper");
            let work = dir.join("work");
            std::fs::create_dir(&upper).at("create directory", &upper)?;
            std::fs::create_dir(&work).at("create directory", &work)?;
            std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .at("chmod", &upper)?;
            let opts_for = |extra: &str| overlay_options(&lowers, Some((&upper, &work)), extra);
            if opts.volatile {
                match mount_overlay(&merged, &opts_for("volatile")?) {
                    Ok(()) => {}
                    // Before Linux 5.10 overlayfs has no `volatile`: a normal mount.
                    Err(RootfsError::Mount {
                        source: nix::Error::EINVAL,
                        ..
                    }) => {
                        tracing::debug!(%id, "overlayfs without volatile: a normal mount");
                        mount_overlay(&merged, &opts_for("")?)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                mount_overlay(&merged, &opts_for("")?)?;
            }
            Some(upper)
        };
        tracing::debug!(%id, image = %img.name, layers = lowers.len(), "rootfs mounted");
        Ok(Rootfs {
            id: id.to_string(),
            merged,
            upper,
            dir: dir.to_path_buf(),
        })
    }

    /// Unmounts and removes the rootfs of container `id`. Missing is not an error.
    pub fn remove_rootfs(&self, id: &str) -> crate::Result<()> {
        check_id(id)?;
        let dir = self.containers_dir().join(id);
        if !dir.exists() {
            return Ok(());
        }
        unmount(&dir.join("merged"))?;
        fsutil::remove_tree(&dir)?;
        Ok(())
    }

    /// Ids of containers that have a rootfs.
    pub fn rootfs_ids(&self) -> crate::Result<Vec<String>> {
        let d = self.containers_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&d).at("read directory", &d)? {
            let e = e.at("read directory", &d)?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }
}

/// Diff ids pinned by container rootfs records.
pub(crate) fn container_layers(s: &Store) -> crate::Result<Vec<Digest>> {
    let mut out = Vec::new();
    for id in s.rootfs_ids()? {
        let p = s.containers_dir().join(&id).join("rootfs.json");
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        if let Ok(r) = serde_json::from_slice::<RootfsRecord>(&data) {
            out.extend(r.diff_ids);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_top_layer_first_and_escaped() {
        let o = overlay_options(
            &[PathBuf::from("/l/bottom"), PathBuf::from("/l/a:b,c")],
            Some((Path::new("/u"), Path::new("/w"))),
            "",
        )
        .unwrap();
        assert_eq!(o, r"lowerdir=/l/a\:b\,c:/l/bottom,upperdir=/u,workdir=/w");
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1.2_x").is_ok());
        for bad in ["", "../x", ".x", "a/b", "a b"] {
            assert!(check_id(bad).is_err());
        }
    }
}
