//! The layer unpack cache: each layer unpacked once, as an overlayfs lower directory,
//! into `<root>/layers/<diffid hex>/`, shared by every image that has it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{Compression, LayerError, UnpackMode, UnpackStats, unpack};
use crate::digest::{Digest, HashReader};
use crate::error::{IoContext, IoError};
use crate::fsutil;
use crate::store::lock;

/// The directory of unpacked layers.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    locks: PathBuf,
}

/// An unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDir {
    /// Its diff id.
    pub diff_id: Digest,
    /// Its directory (an overlayfs lower directory).
    pub path: PathBuf,
}

impl LayerCache {
    pub(crate) fn new(dir: PathBuf, locks: PathBuf) -> Self {
        Self { dir, locks }
    }

    /// Where the layer with this diff id is (or would be) unpacked.
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    /// Whether the layer is unpacked.
    pub fn contains(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).is_dir()
    }

    /// Unpacks the layer blob at `blob` unless already done. The unpack goes to a temp
    /// directory that is renamed into place, so a crash or a concurrent unpack never
    /// leaves a half-written layer under its final name; a per-layer lock keeps two
    /// processes from doing the same work.
    pub fn ensure(
        &self,
        diff_id: &Digest,
        blob: &Path,
    ) -> Result<(LayerDir, Option<UnpackStats>), LayerError> {
        let path = self.path(diff_id);
        let done = |stats| {
            Ok((
                LayerDir {
                    diff_id: diff_id.clone(),
                    path: path.clone(),
                },
                stats,
            ))
        };
        if path.is_dir() {
            return done(None);
        }
        let _lock =
            lock::Lock::exclusive(&self.locks.join(format!("layer-{}.lock", diff_id.hex())))?;
        if path.is_dir() {
            return done(None);
        }
        let stats = unpack_to(diff_id, blob, &self.dir, &path)?;
        done(Some(stats))
    }
}

/// Unpacks `blob` (compression sniffed) into a temp directory inside `tmp_parent` and
/// renames it to `dest`, checking the uncompressed stream against `diff_id`.
pub(crate) fn unpack_to(
    diff_id: &Digest,
    blob: &Path,
    tmp_parent: &Path,
    dest: &Path,
) -> Result<UnpackStats, LayerError> {
    let tmp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(tmp_parent)
        .at("create temp directory in", tmp_parent)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .at("chmod", tmp.path())?;
    let f = File::open(blob).at("open", blob)?;
    let (_, dec) = Compression::auto_decoder(BufReader::new(f)).map_err(LayerError::Archive)?;
    let mut hr = HashReader::new(dec);
    let stats = unpack(&mut hr, tmp.path(), UnpackMode::Overlay)?;
    let (actual, _) = hr.finish().map_err(LayerError::Archive)?;
    if &actual != diff_id {
        let p = tmp.keep();
        let _ = fsutil::remove_tree(&p);
        return Err(LayerError::DiffIdMismatch {
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    let p = tmp.keep();
    match std::fs::rename(&p, dest) {
        Ok(()) => Ok(stats),
        Err(e) if dest.is_dir() => {
            // Someone else finished first; theirs is identical.
            let _ = fsutil::remove_tree(&p);
            tracing::debug!(error = %e, "layer already unpacked by another process");
            Ok(stats)
        }
        Err(e) => {
            let _ = fsutil::remove_tree(&p);
            Err(IoError::new("rename into", dest, e).into())
        }
    }
}
