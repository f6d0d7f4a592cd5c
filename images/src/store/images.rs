//! Listing, inspecting, tagging and removing images.

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::index::{self, IndexEntry};
use super::{Store, StoreError};
use crate::digest::Digest;
use crate::error::IoContext;
use crate::layer::{LayerDir, LayerMediaType, UnpackStats};
use crate::reference::normalize_name;

/// An image name and the manifest it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `name:tag`.
    pub name: String,
    /// Digest of the image manifest.
    pub digest: Digest,
    /// Media type of the manifest.
    pub media_type: String,
}

/// An image with its manifest and config parsed.
#[derive(Debug, Clone)]
pub struct Image {
    /// `name:tag`.
    pub name: String,
    /// Digest of the manifest.
    pub digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config.
    pub config: ImageConfiguration,
    /// Layer blob digests, bottom first.
    pub layers: Vec<Digest>,
    /// Layer diff ids, bottom first.
    pub diff_ids: Vec<Digest>,
}

impl Image {
    /// Total size of the layer blobs (compressed, as stored).
    pub fn size(&self) -> u64 {
        self.manifest.layers().iter().map(|l| l.size()).sum()
    }
}

pub(crate) fn bad_json(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StoreError {
    StoreError::BadJson {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Parses a manifest and its config blob (read with `read`), checking that every layer
/// has a usable media type and that layers and diff ids match up.
pub(crate) fn parse_image(
    name: &str,
    digest: &Digest,
    manifest_bytes: &[u8],
    read: &dyn Fn(&Digest, &str) -> crate::Result<Vec<u8>>,
) -> crate::Result<Image> {
    let what = format!("manifest {digest} of {name}");
    let manifest: ImageManifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| bad_json(&what, e))?;
    let cfg_digest =
        Digest::parse(manifest.config().digest().as_ref()).map_err(|e| bad_json(&what, e))?;
    let cfg_bytes = read(&cfg_digest, &format!("config of {name}"))?;
    let config: ImageConfiguration = serde_json::from_slice(&cfg_bytes)
        .map_err(|e| bad_json(format!("config {cfg_digest} of {name}"), e))?;
    let mut layers = Vec::new();
    for l in manifest.layers() {
        let mt = l.media_type().to_string();
        LayerMediaType::compression(&mt).map_err(|_| StoreError::Unsupported {
            what: format!("layer {} of {name}", l.digest()),
            message: format!("media type {mt:?} is not an image layer"),
        })?;
        layers.push(Digest::parse(l.digest().as_ref()).map_err(|e| bad_json(&what, e))?);
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_json(format!("config {cfg_digest} of {name}"), e))?;
    if diff_ids.len() != layers.len() {
        return Err(StoreError::Unsupported {
            what: format!("image {name}"),
            message: format!(
                "{} layers but {} diff ids in its config",
                layers.len(),
                diff_ids.len()
            ),
        }
        .into());
    }
    Ok(Image {
        name: name.to_string(),
        digest: digest.clone(),
        manifest,
        config,
        layers,
        diff_ids,
    })
}

impl Store {
    /// Every named image, sorted by name.
    pub fn list(&self) -> crate::Result<Vec<ImageInfo>> {
        let idx = index::read(self)?;
        let mut out: Vec<ImageInfo> = idx
            .manifests
            .iter()
            .filter_map(|m| {
                Some(ImageInfo {
                    name: m.name()?.to_string(),
                    digest: m.digest.clone(),
                    media_type: m.media_type.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) fn entry(&self, name: &str) -> crate::Result<IndexEntry> {
        let n = normalize_name(name).map_err(StoreError::from)?;
        let idx = index::read(self)?;
        idx.manifests
            .into_iter()
            .find(|m| m.name() == Some(n.as_str()) || m.name() == Some(name))
            .ok_or_else(|| StoreError::NotFound(name.to_string()).into())
    }

    /// Reads a blob from the store.
    pub fn read_blob(&self, d: &Digest) -> crate::Result<Vec<u8>> {
        let p = self.blob_path(d);
        if !p.exists() {
            return Err(StoreError::MissingBlob {
                digest: d.to_string(),
                what: "store".into(),
            }
            .into());
        }
        Ok(std::fs::read(&p).at("read", &p)?)
    }

    /// The image called `name` (`:latest` is implied), manifest and config parsed.
    pub fn image(&self, name: &str) -> crate::Result<Image> {
        let e = self.entry(name)?;
        let n = e.name().unwrap_or(name).to_string();
        let bytes = self.read_blob(&e.digest)?;
        let read = |d: &Digest, what: &str| -> crate::Result<Vec<u8>> {
            self.read_blob(d).map_err(|_| {
                StoreError::MissingBlob {
                    digest: d.to_string(),
                    what: what.to_string(),
                }
                .into()
            })
        };
        parse_image(&n, &e.digest, &bytes, &read)
    }

    /// Gives the image `src` the additional name `dst`.
    pub fn tag(&self, src: &str, dst: &str) -> crate::Result<()> {
        let e = self.entry(src)?;
        let dst = normalize_name(dst).map_err(StoreError::from)?;
        let _w = self.writer_lock()?;
        index::update(self, |idx| {
            idx.set(&dst, e);
            Ok(())
        })
    }

    /// Removes the name `name`; the blobs stay until [`Store::gc`].
    pub fn remove(&self, name: &str) -> crate::Result<()> {
        let n = normalize_name(name).map_err(StoreError::from)?;
        index::update(self, |idx| {
            let before = idx.manifests.len();
            idx.manifests
                .retain(|m| m.name() != Some(n.as_str()) && m.name() != Some(name));
            if idx.manifests.len() == before {
                return Err(StoreError::NotFound(name.to_string()).into());
            }
            Ok(())
        })
    }

    /// Unpacks every layer of `name` into the layer cache (if not already there) and
    /// returns the layer directories, bottom first.
    pub fn unpack(&self, name: &str) -> crate::Result<Vec<LayerDir>> {
        Ok(self.unpack_with_stats(name)?.0)
    }

    /// As [`Store::unpack`], plus the stats of layers that had to be unpacked now.
    pub fn unpack_with_stats(
        &self,
        name: &str,
    ) -> crate::Result<(Vec<LayerDir>, Vec<UnpackStats>)> {
        let _w = self.writer_lock()?;
        let img = self.image(name)?;
        let cache = self.layer_cache();
        let mut dirs = Vec::new();
        let mut stats = Vec::new();
        for (blob, diff) in img.layers.iter().zip(&img.diff_ids) {
            let (d, s) = cache.ensure(diff, &self.blob_path(blob))?;
            dirs.push(d);
            stats.extend(s);
        }
        Ok((dirs, stats))
    }
}
